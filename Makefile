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

.PHONY: setup run test bench clean notebook

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

run: setup
	@mkdir -p $(OUTPUT_DIR)
	$(PY) -m papermill moe_with_bootstrap.ipynb $(OUTPUT_DIR)/moe_with_bootstrap.executed.ipynb \
		-p OUTPUT_DIR $(OUTPUT_DIR) --cwd . --log-output
	@echo "Outputs: $(OUTPUT_DIR)/  (executed notebook: $(OUTPUT_DIR)/moe_with_bootstrap.executed.ipynb)"

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/features.py
	$(PY) benchmarks/bootstrap.py --seq-replicas 200 --threads 2
	$(PY) benchmarks/accuracy.py --grid

# The notebook is kept as a jupytext pair: moe_with_bootstrap.py (percent format, diff-friendly) and the .ipynb.
# JupyterLab (with jupytext installed in .venv) saves both; after editing either file by hand, sync them:
notebook: setup
	$(PY) -m jupytext --sync moe_with_bootstrap.ipynb

clean:
	rm -rf $(OUTPUT_DIR) .pytest_cache
