# mvig2_mm: one-command set-up, tests and demo.
#   make test   set up the environment (idempotent) and run the test suite
#   make demo   set up and run the end-to-end demo
#   make lint   flake8 and isort (configured in setup.cfg), as CI runs them
# Variables: VENV (default .venv), PYTHON (default python3),
#            MVIG2_MM_CACHE (mmcv wheel cache, default ~/.cache/mvig2_mm),
#            MARK (a pytest marker expression, e.g. MARK="not slow"),
#            PYTEST_ARGS (extra pytest arguments),
#            PYTEST_WORKERS (parallel test processes, default: the cores, at
#            most 4; 0 runs the tests in this process).
# The tests of one xdist_group (e.g. those of a model trained first) run in
# one worker (--dist loadgroup).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
MARK ?=
# pytest-xdist workers: one per core, at most 4 (memory: a worker needs up to
# ~4 GB); each test then runs on cores / workers threads
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
PYTEST := $(PY) -m pytest tests -n $(PYTEST_WORKERS) --dist loadgroup
LINT_PATHS := mvig2_mm tools tests configs setup.py
export VENV PYTHON

.PHONY: setup test test-fast lint demo env clean

setup:
	@echo "==> make setup: environment in $(VENV)"
	@bash tools/setup_env.sh

test: setup
	@echo "==> make test: running the test suite"
	$(PYTEST) $(if $(MARK),-m "$(MARK)") $(PYTEST_ARGS)

# one -m (pytest keeps only the last one it is given): MARK joined to it
test-fast: setup
	$(PYTEST) -m "not slow$(if $(MARK), and ($(MARK)))" $(PYTEST_ARGS)

lint: setup
	@echo "==> make lint: flake8 and isort"
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)

demo: setup
	@echo "==> make demo: end-to-end demo"
	$(PY) tools/demo.py

env: setup
	$(PY) -m mvig2_mm.utils.collect_env

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
