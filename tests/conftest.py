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
