# Two entry points for a fresh machine; both create .venv when it is missing and are idempotent.
#   make demo   install, then train/predict/evaluate on generated data (writes demo-output/)
#   make demo-bg  install, then cut out sample photos with the bundled background-removal model
#   make test   install, then run the test suite (slow tests excluded; `make test-slow` runs them)
#   make lint   ruff: lint and format check (line length 100)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo demo-bg test test-slow lint
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,onnx,serve,matting,browser,instances,heic,video]'
	touch $@

demo: install
	$(BIN)/pixelwise demo --out demo-output

demo-bg: install
	$(BIN)/pixelwise demo --remove-bg --out demo-bg-output

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check src tests benchmarks recipes
	$(BIN)/ruff format --check src tests benchmarks recipes
