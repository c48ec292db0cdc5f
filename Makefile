# Two commands for a fresh machine with Python 3.11:  make demo  and  make test.
# GPU users: make demo TF_EXTRA=gpu  (installs tensorflow[and-cuda] instead of tensorflow-cpu).
PYTHON   ?= python3
VENV     ?= .venv
TF_EXTRA ?= cpu
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed-$(TF_EXTRA)
PYTEST_ARGS ?=

.PHONY: install demo test test-fast browser-deps postgres-deps bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(TF_EXTRA),test]"
	@touch $@

install: $(STAMP)

demo: install
	$(BIN)/automnist demo

# Debian's Chromium for the report's browser test (never a downloaded browser).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "note: /usr/bin/chromium missing and cannot apt-get install it; the browser test will be skipped"; fi

# Debian's PostgreSQL for the store tests (tests/pg_server.py starts a throw-away server
# with initdb + pg_ctl on 127.0.0.1; the PostgreSQL tests are skipped without it).
postgres-deps:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian postgresql for the store tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "note: PostgreSQL (initdb) missing and cannot apt-get install it; the PostgreSQL store tests will be skipped"; fi

# Two passes: most tests in two processes (pytest-xdist, grouped by file: a trial's fixed costs
# are single-threaded, so one process keeps only ~1.1 of 2 cores busy), then the `serial` ones
# alone (wall-clock budgets, or worker processes of their own).
test: install browser-deps postgres-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not serial" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

bench: install
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
