# dudao: two commands on a fresh machine — `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist). Many integration tests wait on something real (an outage, a consumer group
# joining, a process restarting with backoff), so more workers than the 2 cores keep the cores busy meanwhile.
TEST_WORKERS ?= 4

.PHONY: run test lint bench venv clean unit

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/dudao run --demo-drill

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy

# lint runs beside the tests, niced, its report printed after theirs; either failing fails the target. On a fresh
# clone mypy has no cache and takes over a minute of one core, while the tests spend much of theirs waiting on
# outages, restarts and brokers.
test: $(STAMP)
	sh tests/browser/ensure_chromium.sh  # the browser tests need Debian's chromium: installed as root, else a clear stop
	@nice -n 10 $(MAKE) --no-print-directory lint > $(VENV)/lint.log 2>&1 & linting=$$!; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope; tested=$$?; \
	wait $$linting; linted=$$?; echo "--- make lint (run beside the tests):"; cat $(VENV)/lint.log; \
	[ $$linted -eq 0 ] || echo "make lint failed" >&2; [ $$tested -eq 0 ] && [ $$linted -eq 0 ]

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) var
