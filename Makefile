# `make run` and `make test` set themselves up: a .venv with the pinned requirements.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: run test cli lint

$(READY): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(READY)

run: $(READY)
	$(PY) -m bot.devserver

test: $(READY)
	$(PY) -m pytest $(PYTEST_ARGS)

# make cli ARGS="keys issue oTestOpenid" — flask CLI against the Redis that `make run` started.
cli: $(READY)
	$(PY) -m bot.devserver cli $(ARGS)

lint: $(READY)
	$(PY) -m ruff check bot config tests bench wsgi.py
