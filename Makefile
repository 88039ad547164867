# The README's commands. Each target sets up .venv from the registries first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: test lint demo tensorboard bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalled whenever the metadata changes.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,examples]"
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -n 2 --durations=15 tests

# Both examples in --quick mode (a few minutes on 2 cores), then what they wrote.
demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py --logdir runs --out artifacts

# Serves the demo's logs (loss curves and gates) on http://127.0.0.1:6006.
tensorboard: $(VENV)/.installed
	@test -d runs || { echo "make tensorboard: no runs/ yet; run make demo first" >&2; exit 1; }
	$(BIN)/tensorboard --logdir runs --host 127.0.0.1

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_layers.py --quick

clean:
	rm -rf $(VENV) build *.egg-info runs artifacts
