"""Bad input gets a clear error naming the argument, the value and what was
expected, raised early."""

import keras
import numpy as np
import pytest

import keras_lstm_variants as klv
from conftest import CELL_CLASSES
from conftest import LAYER_CLASSES

VARIANTS = ["standard", "peephole", "coupled"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "units, error, pattern",
    [
        (0, ValueError, r"`units`.*positive integer.*units=0"),
        (-3, ValueError, r"`units`.*units=-3"),
        (2.5, TypeError, r"`units`.*units=2.5.*float"),
        ("8", TypeError, r"`units`.*units='8'.*str"),
        (True, TypeError, r"`units`.*units=True"),
        (None, TypeError, r"`units`.*units=None"),
    ],
)
def test_units_must_be_a_positive_int(variant, units, error, pattern):
    for cls in (CELL_CLASSES[variant], LAYER_CLASSES[variant]):
        with pytest.raises(error, match=pattern):
            cls(units)


def test_numpy_integer_units_are_accepted():
    assert klv.StandardLSTMCell(np.int64(4)).units == 4


@pytest.mark.parametrize("cls", [klv.PeepholeLSTMCell, klv.PeepholeLSTM])
@pytest.mark.parametrize(
    "gates, error, pattern",
    [
        (
            ("input", "gate"),
            ValueError,
            r"unknown gate 'gate'.*\('input', 'forget', 'output'\)",
        ),
        (("cell",), ValueError, r"unknown gate 'cell'"),
        (("forget", "forget"), ValueError, r"names 'forget' more than once"),
        ("input", TypeError, r"list or tuple.*peephole_gates='input'"),
        (None, TypeError, r"list or tuple.*peephole_gates=None"),
    ],
)
def test_peephole_gates_are_checked(cls, gates, error, pattern):
    with pytest.raises(error, match=pattern):
        cls(4, peephole_gates=gates)


@pytest.mark.parametrize("cls", [klv.CoupledLSTMCell, klv.CoupledLSTM])
def test_coupled_cell_rejects_an_input_peephole(cls):
    with pytest.raises(ValueError, match=r"may not hold 'input'.*1 - forget_gate"):
        cls(4, peephole_gates=("input", "forget"))


@pytest.mark.parametrize("cls", [klv.StandardLSTMCell, klv.StandardLSTM])
@pytest.mark.parametrize(
    "name, value",
    [
        ("peephole_gates", ("forget",)),
        ("peephole_initializer", "zeros"),
        ("peephole_regularizer", "l2"),
        ("peephole_constraint", "non_neg"),
    ],
)
def test_standard_cell_and_layer_refuse_peephole_arguments_alike(cls, name, value):
    # Issue 10.8: the cell used to accept and drop `peephole_initializer`.
    with pytest.raises(TypeError, match=rf"takes no argument `{name}`.*PeepholeLSTM"):
        cls(4, **{name: value})


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize(
    "value, error",
    [(-0.1, ValueError), (1.0, ValueError), (1.5, ValueError), ("0.2", TypeError)],
)
def test_dropout_rates_must_lie_in_unit_interval(variant, name, value, error):
    for cls in (CELL_CLASSES[variant], LAYER_CLASSES[variant]):
        with pytest.raises(error, match=rf"`{name}`.*\[0, 1\).*{name}="):
            cls(4, **{name: value})


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", [(5, 3), (2, 5, 3, 1), (3,)])
def test_layer_input_must_have_rank_3(variant, shape):
    layer = LAYER_CLASSES[variant](4)
    with pytest.raises(ValueError, match=r"expected ndim=3|rank 3"):
        layer(np.zeros(shape, "float32"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_input_must_keep_its_feature_size(variant):
    layer = LAYER_CLASSES[variant](4)
    layer(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(
        ValueError, match=r"built for inputs with 3 features.*\(2, 5, 6\).*6"
    ):
        layer(np.zeros((2, 5, 6), "float32"))


def test_symbolic_input_with_wrong_rank_fails_when_the_model_is_built():
    with pytest.raises(ValueError, match=r"expected ndim=3|rank 3"):
        klv.CoupledLSTM(4)(keras.Input((5,)))


@pytest.mark.parametrize("variant", VARIANTS)
def test_cell_input_must_have_rank_2_and_its_feature_size(variant):
    cell = CELL_CLASSES[variant](4)
    with pytest.raises(ValueError, match=r"rank 2.*\(batch, features\).*\(2, 5, 3\)"):
        cell.build((2, 5, 3))
    states = [np.zeros((2, 4), "float32")] * 2
    cell(np.zeros((2, 3), "float32"), states)
    with pytest.raises(ValueError, match=r"built for inputs with 3 features.*\(2, 7\)"):
        cell(np.zeros((2, 7), "float32"), states)
    with pytest.raises(ValueError, match=r"rank 2.*\(2, 1, 3\)"):
        cell(np.zeros((2, 1, 3), "float32"), states)


def test_rnn_over_our_cell_rejects_a_changed_feature_size():
    rnn = keras.layers.RNN(klv.PeepholeLSTMCell(4))
    rnn(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"built for inputs with 3 features"):
        rnn(np.zeros((2, 5, 2), "float32"))


# Issue 10.15: a named error, raised before any backend op, for each bad call.


@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_length_sequences(variant):
    layer = LAYER_CLASSES[variant](4)
    with pytest.raises(ValueError, match=r"at least one time step.*\(2, 0, 3\)"):
        layer(np.zeros((2, 0, 3), "float32"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_string_inputs(variant):
    layer = LAYER_CLASSES[variant](4)
    strings = keras.ops.convert_to_tensor(np.zeros((2, 5, 3)), "float32")
    with pytest.raises(TypeError, match=r"numeric inputs.*dtype string"):
        layer.call(_as_strings(strings))


def _as_strings(tensor):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("only TensorFlow has string tensors")
    import tensorflow as tf

    return tf.strings.as_string(tensor)


@pytest.mark.parametrize("variant", VARIANTS)
def test_mask_of_the_wrong_shape(variant):
    layer = LAYER_CLASSES[variant](4)
    x = np.zeros((2, 5, 3), "float32")
    for mask in (np.ones((2, 4), bool), np.ones((3, 5), bool), np.ones((2,), bool)):
        with pytest.raises(ValueError, match=r"mask of shape \(batch, timesteps\)"):
            layer(x, mask=mask)


@pytest.mark.parametrize("variant", VARIANTS)
def test_initial_state_of_the_wrong_width_or_count(variant):
    layer = LAYER_CLASSES[variant](4)
    x = np.zeros((2, 5, 3), "float32")
    h = np.zeros((2, 4), "float32")
    with pytest.raises(ValueError, match=r"expects 2 initial state\(s\).*received 1"):
        layer(x, initial_state=[h])
    with pytest.raises(ValueError, match=r"initial state 1 of shape \(batch, 4\)"):
        layer(x, initial_state=[h, np.zeros((2, 5), "float32")])
    with pytest.raises(ValueError, match=r"batch size 2"):
        layer(x, initial_state=[h, np.zeros((3, 4), "float32")])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8"])
def test_integer_inputs_are_cast_like_keras_lstm(variant, dtype):
    # Issue 10.5: the fast path's raw matmul refused integer inputs.
    x = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 0]]], dtype)
    ours = LAYER_CLASSES[variant](3, use_fast_path=False)
    expected = keras.ops.convert_to_numpy(ours(x.astype("float32")))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), expected, atol=1e-6)
    if keras.backend.backend() == "tensorflow":
        fast = LAYER_CLASSES[variant](3, use_fast_path=True)
        fast.build(x.shape)
        fast.set_weights(ours.get_weights())
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(fast(x)), expected, atol=1e-6
        )
        model = keras.Sequential([keras.Input((5, 3), dtype="int32"), fast_copy(fast)])
        assert model(np.ones((1, 5, 3), "int32")).shape == (1, 3)


def fast_copy(layer):
    return type(layer).from_config({**layer.get_config(), "name": "copy"})
