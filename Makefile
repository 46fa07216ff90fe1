# `make run` and `make test` set themselves up: a .venv with the pinned requirements.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: run test cli lint chromium screenshots

$(READY): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(READY)

run: $(READY)
	$(PY) -m bot.devserver

# Most tests wait on real time (WeChat's windows, gunicorn starting, streams written piece by piece),
# so three processes share the 2 cores well; a file's tests stay together (their servers start once).
PYTEST_ARGS ?= -n 3 --dist loadfile

test: $(READY) chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The portal's browser tests drive Debian's chromium through Playwright (never `playwright install`,
# which downloads a browser from the internet). A machine without it gets it from apt, with a Chinese
# font for readable screenshots, or is told the command to run.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium is missing: installing it with apt-get (the browser tests need it)"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei; \
	  fi; \
	  command -v chromium >/dev/null 2>&1 || { \
	    echo "could not install chromium; run: sudo apt-get install -y chromium fonts-wqy-zenhei" >&2; exit 1; }; }

# Each portal and console page at 1280x800 and 375x812, written to var/screenshots/.
screenshots: $(READY) chromium
	$(PY) -m tests.web.screenshots var/screenshots

# make cli ARGS="keys issue oTestOpenid" — flask CLI against the Redis that `make run` started.
cli: $(READY)
	$(PY) -m bot.devserver cli $(ARGS)

lint: $(READY)
	$(PY) -m ruff check bot config tests bench wsgi.py
