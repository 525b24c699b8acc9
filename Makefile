# mvig2_mm: one-command set-up, tests and demo.
#   make test   set up the environment (idempotent) and run the test suite
#   make demo   set up and run the end-to-end demo
#   make lint   flake8 and isort (configured in setup.cfg), as CI runs them
# Variables: VENV (default .venv), PYTHON (default python3),
#            MVIG2_MM_CACHE (mmcv wheel cache, default ~/.cache/mvig2_mm),
#            MARK (a pytest marker expression added to the target's own,
#            e.g. MARK="not slow"), PYTEST_ARGS (extra pytest arguments),
#            PYTEST_WORKERS (parallel test processes, default: the cores, at
#            most 4; 0 runs the tests in this process).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
MARK ?=
# the target's marker expression, and MARK's if given (one -m: pytest keeps
# only the last one it is given)
marks = -m "$(1)$(if $(MARK), and ($(MARK)))"
# pytest-xdist workers: one per core, at most 4 (memory: a worker needs up to
# ~4 GB); each test then runs on cores / workers threads
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
LINT_PATHS := mvig2_mm tools tests configs setup.py
export VENV PYTHON

.PHONY: setup test test-fast test-long lint demo env clean

setup:
	@echo "==> make setup: environment in $(VENV)"
	@bash tools/setup_env.sh

test: setup
	@echo "==> make test: running the test suite"
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) $(call marks,not long) $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) $(call marks,not slow and not long) $(PYTEST_ARGS)

# the checks that take minutes each (pytest.ini: long), not run by CI
test-long: setup
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) $(call marks,long) $(PYTEST_ARGS)

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
