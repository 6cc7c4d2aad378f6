# Developer entry points. `make test` works from a clean clone with only
# python3 and access to PyPI: it creates .venv and installs the project into it.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
ARGS ?=
LINT_PATHS := $(wildcard reactive connectors samples benchmarks tests)

.PHONY: install test lint format typecheck demo bench clean

install: $(VENV)/.installed

# Re-installs whenever pyproject.toml changes (new dependency, new extra).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PY) -m pip install -e ".[dev,bench]"
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

format: $(VENV)/.installed
	$(PY) -m ruff check --fix $(LINT_PATHS)
	$(PY) -m ruff format $(LINT_PATHS)

typecheck: $(VENV)/.installed
	$(PY) -m mypy

demo: $(VENV)/.installed
	@if [ -f samples/model_serving/demo.py ]; then \
		echo "$(PY) -m samples.model_serving.demo $(ARGS)"; \
		$(PY) -m samples.model_serving.demo $(ARGS); \
	else \
		echo "$(PY) -m samples.factorials $(ARGS)"; \
		$(PY) -m samples.factorials $(ARGS); \
	fi

bench: $(VENV)/.installed-bench
	$(PY) -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
