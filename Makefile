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

.PHONY: setup run test lint bench clean notebook screenshot

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

# The HTML report is written even when a cell fails, so the page shows how far the run got and the error.
# `make run N_JOBS=1` runs the independent fits in one process (default: every core); results are the same.
run: setup
	@mkdir -p $(OUTPUT_DIR)
	$(PY) -m papermill moe_with_bootstrap.ipynb $(EXECUTED) -p OUTPUT_DIR $(OUTPUT_DIR) --cwd . --log-output; \
		status=$$?; $(PY) -m wordle_moe.html_report $(EXECUTED) $(HTML) || status=1; exit $$status
	@echo "Outputs: $(OUTPUT_DIR)/  (report: $(HTML), executed notebook: $(EXECUTED))"

# Look at the report as a reader would: headless Chromium (Debian package `chromium`) takes a screenshot.
screenshot:
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --user-data-dir=$$(mktemp -d) --window-size=1280,4000 \
		--screenshot=$(OUTPUT_DIR)/moe_with_bootstrap.screenshot.png file://$(abspath $(HTML))

lint: setup
	$(PY) -m ruff check .

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
	$(PY) benchmarks/cli.py  # needs the models `make run` saves; skipped without them

# The notebook is kept as a jupytext pair: moe_with_bootstrap.py (percent format, diff-friendly) and the .ipynb.
# JupyterLab (with jupytext installed in .venv) saves both; after editing either file by hand, sync them:
notebook: setup
	$(PY) -m jupytext --sync moe_with_bootstrap.ipynb

clean:
	rm -rf $(OUTPUT_DIR) .pytest_cache
