# The README's commands. Each target sets up .venv from the registries first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: test test-floors test-torch lint demo study tensorboard bench clean

# The tests of the cells, layers and gate inspection, and the docstring
# examples, which also run on JAX and PyTorch.
CORE_TESTS := tests/test_equations.py tests/test_layers.py tests/test_errors.py \
	tests/test_serialization.py tests/test_inspection.py tests/test_variants.py \
	tests/test_depth_gated.py tests/test_clockwork.py \
	tests/test_gru.py tests/test_keras_cells.py \
	--doctest-modules keras_lstm_variants

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
	$(BIN)/python -m pytest -n 2 --durations=15 tests \
		--doctest-modules keras_lstm_variants
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n 2 $(CORE_TESTS)

# The core tests on TensorFlow and on JAX, in a separate .venv-floors that holds
# exactly the lowest versions setup.cfg declares (tools/floor_constraints.py pins
# each `>=` of install_requires and of the test extra to `==`).
FLOORS_VENV := .venv-floors

$(FLOORS_VENV)/.installed: setup.cfg pyproject.toml tools/floor_constraints.py
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) tools/floor_constraints.py --extras test > $(FLOORS_VENV)/constraints.txt
	$(FLOORS_VENV)/bin/python -m pip install --quiet \
		--constraint $(FLOORS_VENV)/constraints.txt -e ".[test]"
	touch $@

test-floors: $(FLOORS_VENV)/.installed
	$(FLOORS_VENV)/bin/python -m pip list 2>/dev/null | \
		grep -iE '^(keras|tensorflow|tensorboard|jax|jaxlib|numpy|ml.dtypes) '
	KERAS_BACKEND=tensorflow $(FLOORS_VENV)/bin/python -m pytest -n 2 $(CORE_TESTS)
	KERAS_BACKEND=jax $(FLOORS_VENV)/bin/python -m pytest -n 2 $(CORE_TESTS)

# The core tests on PyTorch. torch is not in the test extra: from PyPI alone,
# torch==2.13.0 is the CUDA build (about 2.6 GB in 29 wheels). The CPU build
# (183 MiB) comes from PyTorch's CPU wheel index: set TORCH_INDEX_URL to it, or
# leave it empty where pip's own configuration already finds a CPU wheel.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX_URL ?=
test-torch: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet \
		$(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) torch==$(TORCH_VERSION)
	$(BIN)/python -c "import torch; print('torch', torch.__version__)"
	KERAS_BACKEND=torch $(BIN)/python -m pytest -n 2 $(CORE_TESTS)

# Both examples in --quick mode (about 3 min on 2 cores, as the README says), then what they wrote.
demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py --logdir runs --out artifacts

# The long-lag study in quick mode (examples/study.py; the README gives its time).
study: $(VENV)/.installed
	$(BIN)/python examples/study.py --quick --logdir runs --out artifacts

# Serves the demo's logs (loss curves and gates) on http://127.0.0.1:6006.
tensorboard: $(VENV)/.installed
	@test -d runs || { echo "make tensorboard: no runs/ yet; run make demo first" >&2; exit 1; }
	$(BIN)/tensorboard --logdir runs --host 127.0.0.1

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_layers.py --quick

clean:
	rm -rf $(VENV) $(FLOORS_VENV) build *.egg-info runs artifacts
