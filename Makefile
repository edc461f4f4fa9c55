# `make test` runs the test suite, `make demo` the pipeline on the demo preset. Both first create or update the
# virtual environment $(VENV) from the lock of the stack that $(PYTHON) runs (stacks/__init__.py):
# Python 3.11 -> TFX 1.16, Python 3.13 on glibc >= 2.39 -> TFX 1.21. PYTHON=... overrides the choice of interpreter.
#
# `make test-py313` / `make demo-py313` run the same targets on Python 3.13 inside a Debian trixie root (for machines
# whose glibc is older than TFX 1.21 needs; tools/py313-root.sh), `make colab-test` runs the notebook as Colab would.

PYTHON ?= $(shell command -v python3.11 || command -v python3.13 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
ARGS ?=
# Where the Python 3.13 root keeps its own environment (inside the root's file system, not in this checkout).
PY313_VENV := /opt/bert-imdb-venv

STACK := $(shell $(PYTHON) -m stacks name 2>/dev/null)
ifeq ($(STACK),)
ifeq ($(filter clean help venv-py313 test-py313 demo-py313 lock-py313,$(MAKECMDGOALS)),)
$(error $(shell $(PYTHON) -m stacks name 2>&1 || echo "$(PYTHON) cannot run: set PYTHON=/path/to/python3.11 or python3.13"))
endif
endif
STAMP := $(VENV)/.installed-$(STACK)
LOCKS := $(wildcard stacks/locks/*.txt stacks/locks/*.in)

export PYTHONUNBUFFERED := 1

.PHONY: demo test smoke lint format typecheck venv lock wheel venv-py313 test-py313 demo-py313 lock-py313 colab-test colab-runtime \
	clean help

help:
	@echo "make test | demo | smoke | lint | venv | lock | wheel | venv-py313 | test-py313 | demo-py313 | lock-py313 | colab-test"
	@echo "stack for $(PYTHON): $(STACK)"

$(STAMP): $(LOCKS) pyproject.toml
	$(PYTHON) -m stacks install --venv $(VENV) --project . --editable
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/bert-imdb-pipeline --preset demo $(ARGS)

smoke: $(STAMP)
	$(BIN)/bert-imdb-pipeline --preset smoke $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy

typecheck: $(STAMP)
	$(BIN)/python -m mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Rewrites stacks/locks/<stack>-py<XY>.txt from the stack's inputs, in a fresh environment ($(PYTHON)'s stack).
lock:
	rm -rf .stacks/lock-venv && $(PYTHON) -m venv .stacks/lock-venv
	$(PYTHON) -m stacks lock --python .stacks/lock-venv/bin/python
	rm -rf .stacks/lock-venv

# The project as a wheel (dist/), e.g. to upload to Colab: see README "Python versions and Colab".
wheel: $(STAMP)
	rm -rf build dist/*.whl
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w dist .
	@ls dist/*.whl

venv-py313:
	tools/py313-root.sh build
	tools/py313-root.sh run make venv PYTHON=python3 VENV=$(PY313_VENV)

test-py313:
	tools/py313-root.sh build
	tools/py313-root.sh run make test PYTHON=python3 VENV=$(PY313_VENV) PYTEST_ARGS="$(PYTEST_ARGS)"

demo-py313:
	tools/py313-root.sh build
	tools/py313-root.sh run make demo PYTHON=python3 VENV=$(PY313_VENV) ARGS="$(ARGS)"

lock-py313:
	tools/py313-root.sh build
	tools/py313-root.sh run make lock PYTHON=python3

# The notebook from its first cell as a Colab user runs it (tools/colab_emulation.py): Colab's 2025.07 runtime
# (Python 3.11) here, its default runtime (Python 3.13) in the trixie root.
colab-test:
	$(MAKE) colab-runtime RUNTIME=2025.07
	tools/py313-root.sh build
	tools/py313-root.sh run make colab-runtime RUNTIME=latest PYTHON=python3 VENV=$(PY313_VENV)

colab-runtime: $(STAMP)
	$(BIN)/python tools/colab_emulation.py --runtime $(RUNTIME) --python $(PYTHON)

clean:
	rm -rf pipelines build dist
