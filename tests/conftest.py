"""Shared test set-up: single-threaded torch (2-core CI machine), offline embeddings, a headless backend.

The project itself is installed (``pip install -e .``, done by ``make setup``), so no sys.path patching.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# pytest-xdist already runs a worker per core: the engine's own worker pools stay at one process per test
# (the notebook kernels inherit it); tests/test_parallel.py asks for two workers explicitly
os.environ.setdefault("N_JOBS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # torch-free modules can still be tested
    pass


# Longest first (the suite runs on two pytest-xdist workers, which take tests in this order): each notebook
# execution starts at once on its own worker, the other long tests fill the other worker meanwhile, and the tests
# that only read a shared notebook run come last, when it is done, instead of waiting on its file lock.
LONGEST_FIRST = (
    "tests/test_notebook.py::test_same_seed_gives_byte_identical_csvs_and_pngs_with_two_workers",
    "tests/test_notebook.py::test_quick_run_writes_every_fixed_output",
    "tests/test_search.py::test_dask_cluster_gives_the_same_table_as_local_backend",
    "tests/test_notebook.py::test_unknown_parameter_stops_the_run_naming_it",
    "tests/test_parallel.py::",
    "tests/test_cli.py::",
    "tests/test_runfolder.py::",
)
READ_A_SHARED_RUN = ("tests/test_notebook.py::test_quick_run", "tests/test_notebook.py::test_failure",
                     "tests/test_notebook.py::test_injected", "tests/test_notebook.py::test_html_report")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        first = [i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)]
        if first:
            return first[0]
        return len(LONGEST_FIRST) + 1 if item.nodeid.startswith(READ_A_SHARED_RUN) else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: collection order within each rank
