# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install chromium wrk run test bench lint

$(VENV)/.installed: pyproject.toml package.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	# The pages' NL Design System CSS (Utrecht components), served as static files.
	npm ci --no-audit --no-fund --silent
	touch $@

# The browser tests drive Debian's chromium (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the browser tests"; \
	    exit 1; fi; }

# The webhook benchmark's load generator (Debian's wrk); bench/webhooks.py says so when missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "install Debian's wrk (sudo apt-get install wrk) for bench/webhooks.py"; \
	    exit 1; fi; }

install: $(VENV)/.installed

run: install
	$(PY) -m callrouter.devserver

test: install chromium
	$(PY) -m pytest

bench: install wrk
	$(PY) bench/run.py

LINTED := callrouter tests bench app.py worker.py

lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
