"""Numbers: every cell against the float64 NumPy reference, Keras's own LSTM and
finite differences."""

import keras
import numpy as np
import pytest
from autodiff import gradients
from numpy_reference import assert_allclose
from numpy_reference import assert_array_equal
from numpy_reference import cell_weights
from numpy_reference import lstm_sequence
from numpy_reference import to_numpy

import keras_lstm_variants as klv
from conftest import ALL_CONFIGS
from conftest import CELL_CLASSES
from conftest import LAYER_CLASSES
from conftest import cell_kwargs
from conftest import config_id
from conftest import randomize_weights

SHAPES = [(1, 1, 1, 1), (3, 5, 4, 6), (8, 12, 7, 16)]  # batch, time, features, units


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_cell_matches_numpy_reference(config, use_bias, shape):
    variant, gates = config
    batch, time, features, units = shape
    cell = CELL_CLASSES[variant](
        units, use_bias=use_bias, **cell_kwargs(variant, gates)
    )
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    x = np.random.default_rng(1).standard_normal((batch, time, features))
    x = x.astype("float32")
    layer(x)
    randomize_weights(layer, seed=2)
    outputs, h, c = layer(x)

    weights = cell_weights(cell)
    for gate in ("input", "forget", "output"):
        assert (weights[gate] is not None) == (gate in gates)
    ref_outputs, ref_h, ref_c = lstm_sequence(x, weights, coupled=variant == "coupled")
    assert_allclose(outputs, ref_outputs, atol=1e-5, rtol=1e-5)
    assert_allclose(h, ref_h, atol=1e-5, rtol=1e-5)
    assert_allclose(c, ref_c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["standard", "peephole", "coupled"])
def test_layer_matches_numpy_reference_with_initial_state(variant):
    x = np.random.default_rng(3).standard_normal((4, 9, 5)).astype("float32")
    h0 = np.random.default_rng(4).standard_normal((4, 6)).astype("float32")
    c0 = np.random.default_rng(5).standard_normal((4, 6)).astype("float32")
    layer = LAYER_CLASSES[variant](6, return_sequences=True, return_state=True)
    layer(x)
    randomize_weights(layer, seed=6)
    outputs, h, c = layer(x, initial_state=[h0, c0])
    ref = lstm_sequence(
        x, cell_weights(layer.cell), coupled=variant == "coupled", h0=h0, c0=c0
    )
    for got, want in zip((outputs, h, c), ref, strict=True):
        assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_weight_shapes_and_names():
    x = np.zeros((2, 3, 5), "float32")
    expected = {
        "standard": ({"kernel": (5, 28), "recurrent_kernel": (7, 28), "bias": (28,)}),
        "peephole": {
            "kernel": (5, 28),
            "recurrent_kernel": (7, 28),
            "bias": (28,),
            "input_gate_peephole_weights": (7,),
            "forget_gate_peephole_weights": (7,),
            "output_gate_peephole_weights": (7,),
        },
        "coupled": {"kernel": (5, 21), "recurrent_kernel": (7, 21), "bias": (21,)},
    }
    for variant, shapes in expected.items():
        cell = CELL_CLASSES[variant](7)
        keras.layers.RNN(cell)(x)
        assert {w.name: tuple(w.shape) for w in cell.weights} == shapes
        for name, shape in shapes.items():
            assert tuple(getattr(cell, name).shape) == shape
    coupled = klv.CoupledLSTMCell(7, peephole_gates=("output",))
    keras.layers.RNN(coupled)(x)
    assert coupled.input_gate_peephole_weights is None
    assert coupled.forget_gate_peephole_weights is None
    assert tuple(coupled.output_gate_peephole_weights.shape) == (7,)


@pytest.mark.parametrize("variant", ["standard", "coupled"])
def test_unit_forget_bias_starts_forget_block_at_one(variant):
    cell = CELL_CLASSES[variant](3, bias_initializer="zeros")
    keras.layers.RNN(cell)(np.zeros((1, 2, 2), "float32"))
    bias = to_numpy(cell.bias)
    forget_block = 1 if variant == "standard" else 0
    expected = np.zeros_like(bias)
    expected[forget_block * 3 : (forget_block + 1) * 3] = 1.0
    assert_array_equal(bias, expected)
    cell = CELL_CLASSES[variant](3, unit_forget_bias=False)
    keras.layers.RNN(cell)(np.zeros((1, 2, 2), "float32"))
    assert_array_equal(to_numpy(cell.bias), 0.0)


@pytest.mark.parametrize("direction", ["ours_to_keras", "keras_to_ours"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_standard_cell_equals_keras_lstm_cell(direction, use_bias):
    x = np.random.default_rng(7).standard_normal((5, 8, 4)).astype("float32")
    ours = keras.layers.RNN(
        klv.StandardLSTMCell(6, use_bias=use_bias), return_sequences=True
    )
    theirs = keras.layers.RNN(
        keras.layers.LSTMCell(6, use_bias=use_bias), return_sequences=True
    )
    ours(x), theirs(x)
    source, target = (ours, theirs) if direction == "ours_to_keras" else (theirs, ours)
    randomize_weights(source, seed=8)
    target.set_weights(source.get_weights())
    assert_allclose(ours(x), theirs(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("direction", ["ours_to_keras", "keras_to_ours"])
def test_standard_layer_equals_keras_lstm(direction):
    x = np.random.default_rng(9).standard_normal((5, 8, 4)).astype("float32")
    ours = klv.StandardLSTM(6, return_sequences=True, return_state=True)
    theirs = keras.layers.LSTM(6, return_sequences=True, return_state=True)
    ours(x), theirs(x)
    source, target = (ours, theirs) if direction == "ours_to_keras" else (theirs, ours)
    randomize_weights(source, seed=10)
    target.set_weights(source.get_weights())
    for got, want in zip(ours(x), theirs(x), strict=True):
        assert_allclose(got, want, atol=1e-6, rtol=1e-6)


def test_peephole_with_zero_peepholes_equals_standard():
    x = np.random.default_rng(11).standard_normal((4, 10, 3)).astype("float32")
    peephole = klv.PeepholeLSTM(5, return_sequences=True, peephole_initializer="zeros")
    standard = klv.StandardLSTM(5, return_sequences=True)
    peephole(x), standard(x)
    randomize_weights(standard, seed=12)
    peephole.cell.kernel.assign(standard.cell.kernel)
    peephole.cell.recurrent_kernel.assign(standard.cell.recurrent_kernel)
    peephole.cell.bias.assign(standard.cell.bias)
    for gate in ("input", "forget", "output"):
        assert_array_equal(
            getattr(peephole.cell, f"{gate}_gate_peephole_weights"), 0.0
        )
    assert_allclose(peephole(x), standard(x), atol=1e-7)


def _finite_difference(f, value, eps=1e-6):
    grad = np.zeros_like(value)
    flat, grad_flat = value.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        plus = f()
        flat[k] = saved - eps
        minus = f()
        flat[k] = saved
        grad_flat[k] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="Keras's JAX backend computes ops.tanh of float64 tensors in float32 "
    "(its result_type('float64', float) is float32), so float64 gradients "
    "cannot be checked there",
)
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_gradients_match_finite_differences(config):
    """Autodiff of the layer (float64) against central differences of the
    NumPy reference, for every weight and the input."""
    variant, gates = config
    coupled = variant == "coupled"
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 4, 3))
    projection = rng.standard_normal((2, 4, 2))
    cell = CELL_CLASSES[variant](2, dtype="float64", **cell_kwargs(variant, gates))
    layer = keras.layers.RNN(cell, return_sequences=True, dtype="float64")
    layer(x)
    randomize_weights(layer, seed=14)

    variables = list(layer.trainable_variables)
    grads = gradients(layer, x, projection)

    weights = cell_weights(cell)
    # "input_gate_peephole_weights" -> "input"; kernels and bias keep their name.
    names = [None] + [v.name.split("_gate_peephole")[0] for v in variables]

    def reference_loss():
        outputs, _, _ = lstm_sequence(x, weights, coupled=coupled)
        return float(np.sum(outputs * projection))

    for name, grad in zip(names, grads, strict=True):
        target = x if name is None else weights[name]
        expected = _finite_difference(reference_loss, target)
        assert_allclose(
            to_numpy(grad), expected, atol=1e-7, rtol=1e-6, err_msg=str(name)
        )
