# `make demo` runs the pipeline on the demo preset; `make test` runs the test suite.
# Both first create or update the virtual environment .venv when it is missing or older than the pins.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PINS := constraints.txt requirements.txt requirements-extra.txt requirements-kubeflow.txt requirements-nodeps.txt
PYTEST_ARGS ?=
ARGS ?=

export TF_USE_LEGACY_KERAS := 1
export PYTHONPATH := $(CURDIR)
export PYTHONUNBUFFERED := 1

.PHONY: demo test smoke lint format venv clean

$(STAMP): $(PINS)
	@if ! $(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then \
		echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv --clear $(VENV); fi
	$(BIN)/python -m pip install -q -c constraints.txt --upgrade pip setuptools wheel
	$(BIN)/pip install -q --ignore-requires-python -c constraints.txt -r requirements.txt
	$(BIN)/pip install -q -c constraints.txt -r requirements-extra.txt
	$(BIN)/pip install -q -c constraints.txt -r requirements-kubeflow.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pipeline_modules.local_runner --preset demo $(ARGS)

smoke: $(STAMP)
	$(BIN)/python -m pipeline_modules.local_runner --preset smoke $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf pipelines
