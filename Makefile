# Two commands do everything on a fresh machine: `make run` and `make test`.
# Each creates .venv if missing and installs the pinned requirements first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
OUTPUT_DIR ?= moe_bootstrap_output
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
# Bytecode cache on, kept in .venv/pycache (never in the work tree): pip installs --no-compile, and where the
# environment sets PYTHONDONTWRITEBYTECODE every process (notebook kernel, worker processes, test workers, CLI) would
# compile torch, pandas, scikit-learn, ... from source again: ~7.6 s of imports instead of ~3 s each.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache

.PHONY: setup run test lint bench clean notebook screenshot docs

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

EXECUTED := $(OUTPUT_DIR)/moe_with_bootstrap.executed.ipynb
HTML := $(OUTPUT_DIR)/moe_with_bootstrap.html

# One complete run per folder (wordle_moe/runfolder.py): the notebook writes into $(OUTPUT_DIR).staging/, which
# replaces $(OUTPUT_DIR)/ only when the run is complete. A failed or interrupted run (Ctrl-C, SIGTERM) is kept in
# $(OUTPUT_DIR).failed/ (manifest, HTML report of how far it got, error.txt) and the previous run stays untouched.
# $(OUTPUT_DIR).lock names the PID of the run in progress: a second `make run` into the same folder is refused.
# `make run N_JOBS=1` runs the independent fits in one process (default: every core); results are the same.
# wordle_moe.papermill_engine: papermill's command line, started ~1 s faster; with --engine wordle_moe the kernel stops
# as soon as the last cell has run (plain `papermill` gives the same notebook, ~3.5 s later).
run: setup
	$(PY) -m wordle_moe.runfolder $(OUTPUT_DIR) --html $(notdir $(EXECUTED)) $(notdir $(HTML)) -- \
		$(PY) -m wordle_moe.papermill_engine moe_with_bootstrap.ipynb {staging}/$(notdir $(EXECUTED)) \
		-p OUTPUT_DIR {staging} --engine wordle_moe --cwd . --log-output $(RUN_ARGS)
	@echo "Outputs: $(OUTPUT_DIR)/  (report: $(HTML), executed notebook: $(EXECUTED))"

# Look at the report as a reader would: headless Chromium (Debian package `chromium`) takes a screenshot.
screenshot:
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --user-data-dir=$$(mktemp -d) --window-size=1280,4000 \
		--screenshot=$(OUTPUT_DIR)/moe_with_bootstrap.screenshot.png file://$(abspath $(HTML))

# ruff, and the import layers of pyproject.toml (import-linter): no module imports a later stage of the data flow
lint: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

# pytest-xdist: one test worker per core. --dist loadgroup keeps a shared notebook run's tests on one worker once
# xdist applies groups under pytest 9.2 (3.8.0 does not: same as --dist load; a file lock shares each run)
test: setup lint
	$(PY) -m pytest -q -n auto --dist loadgroup

bench: setup
	$(PY) benchmarks/features.py
	$(PY) benchmarks/bootstrap.py --seq-replicas 200 --threads 2
	$(PY) benchmarks/stability.py --resamples 50 --seeds 5 --folds 5 --b-cv 20
	$(PY) benchmarks/engine_defaults.py
	$(PY) benchmarks/tuned_gate_lr.py
	$(PY) benchmarks/accuracy.py --grid
	$(PY) benchmarks/accuracy.py --default-config
	$(PY) benchmarks/accuracy.py --nested --n-bootstrap 20
	$(PY) benchmarks/forecast.py
	$(PY) benchmarks/robust_aggregate.py --replicas 30
	$(PY) benchmarks/cli.py  # needs the models `make run` saves; skipped without them

# The notebook is kept as a jupytext pair: moe_with_bootstrap.py (percent format, diff-friendly) and the .ipynb.
# JupyterLab (with jupytext installed in .venv) saves both; after editing either file by hand, sync them:
notebook: setup
	$(PY) -m jupytext --sync moe_with_bootstrap.ipynb

clean:
	rm -rf $(OUTPUT_DIR) $(OUTPUT_DIR).staging $(OUTPUT_DIR).failed $(OUTPUT_DIR).previous $(OUTPUT_DIR).lock \
		.pytest_cache

# The knob table of docs/configuration.md is generated from MoEConfig's field metadata (a test keeps it current).
docs: setup
	$(PY) -c "import pathlib, moe_booststrap as mb; from wordle_moe.parameters import with_knob_table; \
		p = pathlib.Path('docs/configuration.md'); p.write_text(with_knob_table(p.read_text(), mb))"
