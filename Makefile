# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
MODEL_DIR := index/model-e5-small

.PHONY: run test install model index eval clean browser services

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

model: install
	$(PY) -m bot export-model --if-missing

index: model
	$(PY) -m bot build

run: index
	$(PY) -m bot serve

# Debian's chromium and a Japanese font, for the web widget's browser test (idempotent).
browser:
	bash scripts/install-browser.sh

# Debian's PostgreSQL and Redis for the store tests; the tests start their own servers (idempotent).
services:
	bash scripts/install-services.sh

test: model browser services
	$(PY) -m pytest -n 2 --dist loadfile

eval: index
	$(PY) -m bot eval

clean:
	rm -rf $(VENV) index/faq index/model-e5-small
