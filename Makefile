# wattledger: two commands get you going.
#   make demo   set up .venv, build a demo warehouse and start the product
#   make test   set up .venv with dev extras, start PostgreSQL if needed, run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
FUZZ_STAMP := $(VENV)/.installed-fuzz
ATHERIS_RUNS ?= 300000
DEMO_DIR ?= .demo
export WATTLEDGER_TEST_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test soak fuzz lint format pg-start chromium clean wheel help

help:
	@echo "make demo   - install into $(VENV), simulate 14 days of a fleet, open the dashboard"
	@echo "              (DEMO_ARGS=--no-dashboard to only build; data in $(DEMO_DIR)/)"
	@echo "make test   - install dev extras, start PostgreSQL if installed but down, run all tests"
	@echo "make fuzz   - long fuzzing: hypothesis x50 examples, then atheris (docs/security.md)"
	@echo "make lint   - ruff format check and ruff lint"
	@echo "make wheel  - build the wheel and sdist into dist/"
	@echo "make soak   - serve (ingest + scheduler) fed at 60% of the benchmarked rate for"
	@echo "              SOAK_SECONDS (600); SOAK_ARGS='--backend postgres' for PostgreSQL"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dashboard,sim]'
	touch $@

$(DEV_STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

demo: $(STAMP)
	WATTLEDGER_DATA_DIR=$(DEMO_DIR) $(BIN)/wattledger demo $(DEMO_ARGS)

# The browser test drives Debian's Chromium (no browser is ever downloaded).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the dashboard browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

pg-start:
	@if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then \
	  pg_isready -q -h 127.0.0.1 -p 5432 || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start || true; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(DEV_STAMP) pg-start chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Slow: not part of `make test` (tests/deploy/test_soak_smoke.py runs it for 12 s there).
SOAK_SECONDS ?= 600
soak: $(DEV_STAMP) pg-start
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

$(FUZZ_STAMP): $(DEV_STAMP)
	$(BIN)/pip install --quiet -e '.[dev,fuzz]'
	touch $@

# The fuzz tests run in `make test` with few examples; here with 50x more, then
# coverage-guided (atheris/libFuzzer) on the OTLP decoders. See docs/security.md.
fuzz: $(FUZZ_STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest tests/fuzz -q -p no:cacheprovider \
	  --hypothesis-show-statistics --durations=0
	$(BIN)/python tests/fuzz/atheris_otlp.py -runs=$(ATHERIS_RUNS) -max_total_time=900

wheel: $(DEV_STAMP)
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache $(DEMO_DIR)
