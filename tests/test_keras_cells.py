"""Gate inspection of Keras's own recurrent layers, against the NumPy references.

`keras.layers.LSTM`, `keras.layers.GRU` and `keras.layers.RNN` over their
cells (also stacked and inside `Bidirectional`) are read through the views of
`keras_cell_views`; the references run `numpy_reference.lstm_step` and
`numpy_gru.gru_sequence` on the Keras cell's weights.
Reading never changes the model: the weights, the states of a stateful layer
and the layer's methods are as they were.
"""

import keras
import numpy as np
import pytest
from numpy_gru import gru_sequence
from numpy_gru import gru_weights
from numpy_reference import cell_weights
from numpy_reference import lstm_step
from numpy_reference import to_numpy
from tensorboard.backend.event_processing import event_accumulator

import keras_lstm_variants as klv
from conftest import randomize_weights
from keras_lstm_variants import GATE_NAMES
from keras_lstm_variants import gate_activations
from keras_lstm_variants.keras_cell_views import inspectable
from keras_lstm_variants.sites import summary_tag

ATOL = 1e-5
TIME, FEATURES = 6, 4


def inputs(seed, batch=3, time=TIME, features=FEATURES):
    return np.random.default_rng(seed).standard_normal((batch, time, features))


def reference(x, cell, mask=None, go_backwards=False, h0=None, c0=None):
    """`{value: (batch, time, units)}` of an LSTM cell in float64, output order."""
    weights = cell_weights(cell)
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    h = np.zeros((batch, cell.units)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((batch, cell.units)) if c0 is None else np.asarray(c0, np.float64)
    previous, steps = np.zeros((6, batch, cell.units)), []
    for t in range(time - 1, -1, -1) if go_backwards else range(time):
        values = np.stack(lstm_step(x[:, t], h, c, weights, False))
        if mask is not None:
            keep = np.asarray(mask[:, t], bool)[:, None]
            values = np.where(keep[None], values, previous)
        h, c = values[5], values[4]
        previous = values
        steps.append(values)
    return dict(zip(GATE_NAMES, np.stack(steps, axis=2), strict=True))


def assert_values_close(actual, expected):
    assert set(actual) == set(GATE_NAMES)
    for name in GATE_NAMES:
        np.testing.assert_allclose(
            actual[name], expected[name], atol=ATOL, rtol=0, err_msg=name
        )


def test_keras_lstm_layer_is_read_from_its_weights():
    x = inputs(1)
    layer = keras.layers.LSTM(5, return_sequences=True, name="keras_lstm")
    model = keras.Sequential([keras.Input((None, FEATURES)), layer])
    randomize_weights(model, seed=2)
    before = [w.copy() for w in model.get_weights()]

    values = gate_activations(model, x)

    assert list(values) == ["keras_lstm"]
    assert_values_close(values["keras_lstm"], reference(x, layer.cell))
    np.testing.assert_allclose(
        values["keras_lstm"]["hidden_state"], to_numpy(model(x)), atol=ATOL
    )
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert "call" not in vars(layer)


def test_cells_in_rnn_stacked_with_ours_and_masked():
    x = inputs(3, batch=4)
    x[1, 4:] = 0.0
    x[3, 2:] = 0.0
    mask = np.any(x != 0.0, axis=-1)
    keras_cell, our_cell = keras.layers.LSTMCell(3), klv.StandardLSTMCell(2)
    model = keras.Sequential(
        [
            keras.Input((TIME, FEATURES)),
            keras.layers.Masking(0.0),
            keras.layers.RNN([keras_cell, our_cell], return_sequences=True, name="rnn"),
        ]
    )
    randomize_weights(model, seed=4)

    values = gate_activations(model, x)

    assert list(values) == [f"rnn/{keras_cell.name}", f"rnn/{our_cell.name}"]
    low = reference(x, keras_cell, mask=mask)
    assert_values_close(values[f"rnn/{keras_cell.name}"], low)
    high = reference(low["hidden_state"], our_cell, mask=mask)
    assert_values_close(values[f"rnn/{our_cell.name}"], high)


def test_bidirectional_keras_lstm_in_input_order():
    x = inputs(5)
    wrapper = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True), name="bidi"
    )
    model = keras.Sequential([keras.Input((TIME, FEATURES)), wrapper])
    randomize_weights(model, seed=6)

    values = gate_activations(model, x)

    forward, backward = wrapper.forward_layer, wrapper.backward_layer
    assert_values_close(
        values[f"bidi/{forward.name}"], reference(x, forward.cell)
    )
    expected = reference(x, backward.cell, go_backwards=True)
    assert_values_close(
        values[f"bidi/{backward.name}"],
        {k: v[:, ::-1] for k, v in expected.items()},
    )


def test_stateful_keras_lstm_is_read_not_advanced():
    x = inputs(7, batch=2)
    layer = keras.layers.LSTM(3, stateful=True, return_sequences=True, name="s")
    model = keras.Sequential([keras.Input((TIME, FEATURES), batch_size=2), layer])
    randomize_weights(model, seed=8)
    model(x)  # the layer now holds the states after x
    h0, c0 = (to_numpy(s) for s in layer.states)

    values = gate_activations(model, x)

    assert_values_close(values["s"], reference(x, layer.cell, h0=h0, c0=c0))
    np.testing.assert_array_equal(to_numpy(layer.states[0]), h0)
    np.testing.assert_array_equal(to_numpy(layer.states[1]), c0)


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru_layer_is_read_from_its_weights(reset_after):
    x = inputs(11, batch=4)
    x[2, 3:] = 0.0
    mask = np.any(x != 0.0, axis=-1)
    layer = keras.layers.GRU(
        5, reset_after=reset_after, return_sequences=True, name="keras_gru"
    )
    model = keras.Sequential(
        [keras.Input((TIME, FEATURES)), keras.layers.Masking(0.0), layer]
    )
    randomize_weights(model, seed=12)
    before = [w.copy() for w in model.get_weights()]

    values = gate_activations(model, x)["keras_gru"]

    outputs, _, steps = gru_sequence(
        x, gru_weights(layer.cell), reset_after=reset_after, mask=mask
    )
    assert list(values) == ["update_gate", "reset_gate", "candidate", "hidden_state"]
    np.testing.assert_allclose(values["hidden_state"], outputs, atol=ATOL)
    np.testing.assert_allclose(values["hidden_state"], to_numpy(model(x)), atol=ATOL)
    keep = mask[..., None]  # masked steps repeat the last value: compare the others
    for name in ("update_gate", "reset_gate", "candidate"):
        np.testing.assert_allclose(
            np.where(keep, values[name], 0.0),
            np.where(keep, steps[name], 0.0),
            atol=ATOL,
            err_msg=name,
        )
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_bidirectional_keras_gru_and_our_gru_read_alike():
    x = inputs(13)
    keras_layer = keras.layers.Bidirectional(
        keras.layers.GRU(3, return_sequences=True), name="bidi"
    )
    ours = keras.layers.Bidirectional(klv.GRU(3, return_sequences=True), name="ours")
    for layer in (keras_layer, ours):
        keras.Sequential([keras.Input((TIME, FEATURES)), layer])
    randomize_weights(keras_layer, seed=14)
    ours.set_weights(keras_layer.get_weights())  # the same weight layout

    theirs = gate_activations(keras_layer, x)
    mine = gate_activations(ours, x)

    for direction in ("forward", "backward"):
        a = theirs[f"bidi/{getattr(keras_layer, direction + '_layer').name}"]
        b = mine[f"ours/{getattr(ours, direction + '_layer').name}"]
        for name in b:
            np.testing.assert_allclose(a[name], b[name], atol=ATOL, err_msg=name)


class _ShiftedLSTMCell(keras.layers.LSTMCell):
    """A subclass that changes the step: its values cannot be read from weights."""

    def call(self, inputs, states, training=False):
        return super().call(inputs + 1.0, states, training)


def test_only_keras_own_cells_are_read():
    assert inspectable(_ShiftedLSTMCell(2)) is None
    assert inspectable(keras.layers.SimpleRNNCell(2)) is None
    assert inspectable(type("MyGRUCell", (keras.layers.GRUCell,), {})(2)) is None
    model = keras.Sequential(
        [keras.Input((TIME, FEATURES)), keras.layers.RNN(_ShiftedLSTMCell(2))]
    )
    with pytest.raises(ValueError, match="no RNN layer whose gates can be read"):
        gate_activations(model, inputs(9))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorBoard")
def test_gate_histograms_log_a_keras_lstm(tmp_path):
    x = inputs(10, batch=8).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((TIME, FEATURES)),
            keras.layers.LSTM(3, name="keras_lstm"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    callback = klv.GateHistograms(x[:2], str(tmp_path))
    model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0, callbacks=[callback])

    run = next(p for p in tmp_path.rglob("events.out.*")).parent
    accumulator = event_accumulator.EventAccumulator(
        str(run), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    tags = set(accumulator.Tags()["tensors"])
    for name in GATE_NAMES:
        assert summary_tag("keras_lstm", name) in tags
    assert summary_tag("keras_lstm", "heatmap") in tags
    assert summary_tag("keras_lstm", "forget_gate", "mean") in tags


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorBoard")
def test_gate_histograms_log_a_keras_gru_in_its_own_vocabulary(tmp_path):
    x = inputs(15, batch=8).astype("float32")
    layer = keras.layers.GRU(3, name="keras_gru")
    model = keras.Sequential(
        [keras.Input((TIME, FEATURES)), layer, keras.layers.Dense(1)]
    )
    model.compile("sgd", "mse")
    callback = klv.GateHistograms(x[:2], str(tmp_path))
    model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0, callbacks=[callback])

    run = next(p for p in tmp_path.rglob("events.out.*")).parent
    accumulator = event_accumulator.EventAccumulator(
        str(run), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    tags = set(accumulator.Tags()["tensors"])
    view = inspectable(layer.cell)
    expected = {
        "gates.keras_gru/0_heatmap",
        "gates.keras_gru/1_update_gate",
        "gates.keras_gru/2_reset_gate",
        "gates.keras_gru/3_candidate",
        "gates.keras_gru/4_hidden_state",
        "gates.keras_gru/1_update_gate/mean",
        "gates.keras_gru/2_reset_gate/saturated_fraction",
    }
    assert expected <= tags
    assert {summary_tag("keras_gru", v, cell=view) for v in view.value_names} <= tags
    assert not any("forget_gate" in tag or "cell_state" in tag for tag in tags)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel")
def test_gates_signature_of_keras_lstm_and_gru_layers(tmp_path):
    import tensorflow as tf

    x = inputs(16).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            keras.layers.LSTM(3, return_sequences=True, name="keras_lstm"),
            keras.layers.GRU(2, name="keras_gru"),
        ]
    )
    randomize_weights(model, seed=17)
    expected = gate_activations(model, x)
    klv.export_saved_model(model, tmp_path / "m")

    loaded = tf.saved_model.load(str(tmp_path / "m"))
    gates = loaded.signatures["gates"](tf.constant(x))
    keys = {f"keras_lstm__{name}" for name in GATE_NAMES}
    keys |= {f"keras_gru__{name}" for name in expected["keras_gru"]}
    assert set(gates) == keys
    for layer, values in expected.items():
        for name, value in values.items():
            np.testing.assert_allclose(
                gates[f"{layer}__{name}"].numpy(), value, atol=ATOL, err_msg=name
            )
    (served,) = loaded.signatures["serving_default"](tf.constant(x)).values()
    np.testing.assert_allclose(served.numpy(), to_numpy(model(x)), atol=ATOL)
