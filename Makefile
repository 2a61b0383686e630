# troth: `make demo` tells the story, `make test` runs every check, `make bench` the benchmarks.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench lint docs softhsm postgres clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[mcp,postgres]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,hsm,bench,postgres,mcp]'
	touch $@ $(VENV)/.installed

# chapter 5's database scenes need PostgreSQL's binaries (installed when root, like make test)
demo: $(VENV)/.installed postgres
	$(BIN)/troth demo

# SoftHSM2 backs the PKCS#11 vault tests: installed from Debian when missing and we are root.
softhsm:
	@if command -v softhsm2-util >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make test: installing softhsm2 (Debian)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q softhsm2 >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q softhsm2 >/dev/null; }; \
	else \
		echo "make test: softhsm2 is missing and we are not root: the PKCS#11 tests will be SKIPPED."; \
		echo "           install it with: sudo apt-get install softhsm2"; \
	fi

# PostgreSQL backs the postgres lease-engine tests and the demo's database scenes (both start their own server from these
# binaries): installed from Debian when missing and we are root.
postgres:
	@if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "troth: installing postgresql (Debian)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null; }; \
	else \
		echo "troth: PostgreSQL is missing and we are not root: the postgres lease tests and demo scenes will be SKIPPED."; \
		echo "           install it with: sudo apt-get install postgresql"; \
	fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests examples docs/api
	$(BIN)/ruff format --check src tests examples docs/api
	$(BIN)/mypy --strict src tests examples docs/api

# The API reference (docs/api, HTML) from the docstrings of `troth` (pdoc); committed, and
# tests/test_api_docs.py fails when it is not current.
docs: $(VENV)/.installed-dev
	$(BIN)/python docs/api/generate.py

# Two pytest-xdist workers (TEST_WORKERS=N to change), a file's tests in one worker; then the
# hostile-load tests alone, serially: they hold a legitimate peer to an answer within 1 s.
TEST_WORKERS ?= 2
TEST_ENV = TROTH_REQUIRE_HSM=$$(command -v softhsm2-util >/dev/null 2>&1 && echo 1 || echo 0) \
	TROTH_REQUIRE_PG=$$(ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && echo 1 || echo 0)

test: $(VENV)/.installed-dev softhsm postgres lint
	$(TEST_ENV) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m 'not slow and not load'
	$(TEST_ENV) $(BIN)/python -m pytest -m 'load and not slow'

bench: $(VENV)/.installed-dev
	$(BIN)/troth bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
