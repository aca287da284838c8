# mallocmuzero: one command each; `make test` and `make train` set everything up first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pytest-xdist workers for `make test`: the tests that start Ray runtimes run on one,
# the others beside them (tests/harness.py REAL_RUNS).
TEST_WORKERS ?= 2
export RAY_AUTH_MODE ?= disabled
export JAX_PLATFORMS ?= cpu
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test lint bench workloads train tensorboard clean help

help:
	@echo "make install   create $(VENV) (Python 3.11, Linux x86_64) with the pinned lock and the project"
	@echo "make test      run the test suite (installs first)"
	@echo "make lint      ruff over the project"
	@echo "make workloads build the built-in workload suite into workloads/"
	@echo "make bench     run the benchmarks and rewrite BENCHMARKS.md"
	@echo "make train     train the agent with configs/default.py into runs/default (30 min, local Ray)"
	@echo "make tensorboard  serve runs/ on http://127.0.0.1:6006"

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys, platform; v = sys.version_info[:2]; m = platform.machine(); s = platform.system(); \
	  ok = v == (3, 11) and s == "Linux" and m == "x86_64"; \
	  ok or sys.exit(f"make install: needs CPython 3.11 on Linux x86_64 (dm-reverb 0.14 wheels exist only there); found Python {v[0]}.{v[1]} on {s} {m}. Set PYTHON=/path/to/python3.11.")' \
	  || exit 1
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" wheel "setuptools>=68,<81"
	$(PY) -m pip install --quiet --no-compile -r requirements.lock  # bytecode on first import
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "installed: $(VENV) (run commands with $(VENV)/bin/mallocmuzero)"

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=12

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

workloads: workloads/builtin/.built

workloads/builtin/.built: $(STAMP) env/suite.py env/importers/xla_dump.py env/importers/hlo_text.py
	$(VENV)/bin/mallocmuzero workloads build --out workloads/builtin
	@touch $@

bench: install workloads
	$(PY) -m pip install --quiet "omnimalloc==1.0.0"  # the bench extra: external yardsticks
	$(PY) -m mallocmuzero.benchmarks.run_all --workloads workloads/builtin --out BENCHMARKS.md

train: install workloads
	$(VENV)/bin/mallocmuzero train --config configs/default.py --run-dir runs/default --max-minutes 30

tensorboard: install
	$(VENV)/bin/tensorboard --logdir runs --host 127.0.0.1 --port 6006 --load_fast false

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
