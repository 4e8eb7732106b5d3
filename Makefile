# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Each creates or refreshes the local virtualenv .venv and installs what it needs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export POCL_AFFINITY ?= 1

.PHONY: demo test venv system-deps lint bench wheel clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: venv
	$(VENV)/bin/mao-lab demo

test: venv system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check .

bench: venv
	$(PY) benchmarks/gemm.py

wheel: venv
	$(PY) -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) dist build .pytest_cache .ruff_cache
