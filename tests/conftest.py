"""Shared test set-up: TensorFlow backend unless told otherwise, quiet logs."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_lstm_variants as klv  # noqa: E402

CELL_CLASSES = {
    "standard": klv.StandardLSTMCell,
    "peephole": klv.PeepholeLSTMCell,
    "coupled": klv.CoupledLSTMCell,
}
LAYER_CLASSES = {
    "standard": klv.StandardLSTM,
    "peephole": klv.PeepholeLSTM,
    "coupled": klv.CoupledLSTM,
}

#: Every (variant, peephole_gates) combination the package supports.
PEEPHOLE_SUBSETS = {
    "standard": [()],
    "peephole": [
        (),
        ("input",),
        ("forget",),
        ("output",),
        ("input", "forget"),
        ("input", "output"),
        ("forget", "output"),
        ("input", "forget", "output"),
    ],
    "coupled": [(), ("forget",), ("output",), ("forget", "output")],
}
ALL_CONFIGS = [
    (variant, gates)
    for variant, subsets in PEEPHOLE_SUBSETS.items()
    for gates in subsets
]


def config_id(config):
    variant, gates = config
    return f"{variant}-{'+'.join(gates) or 'none'}"


def cell_kwargs(variant, gates):
    return {} if variant == "standard" else {"peephole_gates": gates}


def randomize_weights(layer, seed, scale=0.5):
    """Sets every weight of `layer` to seeded normal values (peepholes too)."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            scale * rng.standard_normal(w.shape).astype(w.dtype)
            for w in layer.get_weights()
        ]
    )


def spy_calls(monkeypatch, module, name):
    """Replaces `module.name` with a spy that records each call's keyword
    arguments in the list it returns, then calls the original."""
    calls = []
    original = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.fixture
def kernel_calls(monkeypatch):
    """The calls of the TensorFlow whole-sequence LSTM kernel (TensorFlow
    only: the kernel module imports it)."""
    from keras_lstm_variants import _tf_sequence

    return spy_calls(monkeypatch, _tf_sequence, "lstm_sequence")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts with float32 and a clean name scope."""
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session()
    yield
    keras.config.set_dtype_policy("float32")
