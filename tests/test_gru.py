"""The GRU: numbers against the float64 NumPy reference of REFERENCE.md's
equations (tests/numpy_gru.py) and against `keras.layers.GRU` with copied
weights, configs and `.keras` files, errors, finite differences, and (on
TensorFlow) the fast path against the generic loop.

The tests above the "TensorFlow only" line run on every backend (the Makefile
runs this file on JAX and PyTorch too).
"""

import contextlib
import warnings

import keras
import numpy as np
import pytest
from numpy_gru import gru_sequence
from numpy_gru import gru_step
from numpy_gru import gru_weights
from numpy_reference import assert_allclose
from numpy_reference import to_numpy

import keras_lstm_variants as klv
from conftest import randomize_weights
from conftest import spy_calls

BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5
TOL = {"rtol": 1e-5, "atol": 1e-5}
BIAS_SETTINGS = [
    pytest.param(True, True, id="reset_after-bias"),
    pytest.param(True, False, id="reset_after-no_bias"),
    pytest.param(False, True, id="reset_before-bias"),
    pytest.param(False, False, id="reset_before-no_bias"),
]


def inputs(seed=1, batch=BATCH, time=TIME):
    return (
        np.random.default_rng(seed)
        .standard_normal((batch, time, FEATURES))
        .astype("float32")
    )


def right_padded_mask(batch=BATCH):
    lengths = np.array([TIME, TIME - 2, 1, TIME - 1][:batch])
    return np.arange(TIME)[None, :] < lengths[:, None]


def values_only():
    """A context for direct cell calls whose values the test reads: on
    PyTorch, without autograd (a tensor that requires grad has no NumPy
    view)."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def make_gru(reset_after=True, use_bias=True, weight_seed=0, **kwargs):
    kwargs.setdefault("return_sequences", True)
    kwargs.setdefault("return_state", True)
    layer = klv.GRU(UNITS, reset_after=reset_after, use_bias=use_bias, **kwargs)
    layer.build((None, TIME, FEATURES))
    randomize_weights(layer, weight_seed)
    return layer


# Weights and one step.


@pytest.mark.parametrize("reset_after, use_bias", BIAS_SETTINGS)
def test_weights_have_keras_names_and_shapes(reset_after, use_bias):
    ours = klv.GRUCell(UNITS, reset_after=reset_after, use_bias=use_bias)
    theirs = keras.layers.GRUCell(UNITS, reset_after=reset_after, use_bias=use_bias)
    ours.build((None, FEATURES))
    theirs.build((None, FEATURES))
    assert [(w.name, tuple(w.shape)) for w in ours.weights] == [
        (w.name, tuple(w.shape)) for w in theirs.weights
    ]
    assert tuple(ours.kernel.shape) == (FEATURES, 3 * UNITS)
    assert tuple(ours.recurrent_kernel.shape) == (UNITS, 3 * UNITS)
    if use_bias:
        expected = (2, 3 * UNITS) if reset_after else (3 * UNITS,)
        assert tuple(ours.bias.shape) == expected
    else:
        assert ours.bias is None


@pytest.mark.parametrize("reset_after, use_bias", BIAS_SETTINGS)
def test_one_step_values_match_the_reference(reset_after, use_bias):
    cell = klv.GRUCell(UNITS, reset_after=reset_after, use_bias=use_bias)
    cell.build((None, FEATURES))
    randomize_weights(cell, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((BATCH, FEATURES)).astype("float32")
    h = rng.standard_normal((BATCH, UNITS)).astype("float32")
    with values_only():
        values = cell.gate_values(x, [h])
        output, states = cell(x, [h])
    want = gru_step(x, h, gru_weights(cell), reset_after)
    for name in cell.value_names:
        assert_allclose(getattr(values, name), want[name], **TOL)
    assert_allclose(output, want["hidden_state"], **TOL)
    assert len(states) == 1
    assert_allclose(states[0], want["hidden_state"], **TOL)


def test_the_step_reads_a_keras_cell_from_its_weights():
    """`gru_step` is a pure function of tensors: it gives the values of
    Keras's own `GRUCell` from that cell's weights."""
    from keras_lstm_variants.gru import gru_step as package_step
    from keras_lstm_variants.gru import split_bias

    for reset_after in (True, False):
        theirs = keras.layers.GRUCell(UNITS, reset_after=reset_after)
        theirs.build((None, FEATURES))
        randomize_weights(theirs, seed=5)
        x = inputs(6)[:, 0]
        h = np.random.default_rng(7).standard_normal((BATCH, UNITS)).astype("float32")
        input_bias, recurrent_bias = split_bias(theirs.bias, reset_after)
        with values_only():
            values = package_step(
                keras.ops.matmul(x, theirs.kernel) + input_bias,
                h,
                theirs.recurrent_kernel,
                recurrent_bias,
                reset_after,
                theirs.activation,
                theirs.recurrent_activation,
            )
            output, _ = theirs(x, [h])
        assert_allclose(values.hidden_state, output, **TOL)
        want = gru_step(x, h, gru_weights(theirs), reset_after)
        assert_allclose(values.update_gate, want["update_gate"], **TOL)
        assert_allclose(values.reset_gate, want["reset_gate"], **TOL)


# Layers: the reference and Keras's GRU.


@pytest.mark.parametrize("reset_after, use_bias", BIAS_SETTINGS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
def test_layer_matches_the_reference_with_mask_and_initial_state(
    reset_after, use_bias, go_backwards
):
    layer = make_gru(reset_after, use_bias, go_backwards=go_backwards)
    x, mask = inputs(2), right_padded_mask()
    h0 = np.random.default_rng(3).standard_normal((BATCH, UNITS)).astype("float32")
    # Masked steps before the first unmasked one (go_backwards over right
    # padding) output zeros, except on JAX, whose Keras loop outputs the
    # initial state there.
    first_output = h0 if keras.backend.backend() == "jax" else None
    want_outputs, want_h, _ = gru_sequence(
        x,
        gru_weights(layer.cell),
        reset_after,
        h0,
        mask,
        go_backwards,
        first_output=first_output,
    )
    for fast in ("auto", False):
        layer.use_fast_path = fast
        outputs, h = layer(x, mask=mask, initial_state=[h0])
        assert_allclose(outputs, want_outputs, **TOL)
        assert_allclose(h, want_h, **TOL)


@pytest.mark.parametrize("reset_after, use_bias", BIAS_SETTINGS)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"go_backwards": True}, {"zero_output_for_mask": True}],
    ids=["forward", "backward", "zero_output"],
)
def test_weights_copy_both_ways_with_keras_gru(reset_after, use_bias, kwargs):
    x, mask = inputs(8), right_padded_mask()
    settings = dict(
        reset_after=reset_after,
        use_bias=use_bias,
        return_sequences=True,
        return_state=True,
        **kwargs,
    )
    ours = klv.GRU(UNITS, **settings)
    theirs = keras.layers.GRU(UNITS, **settings)
    ours.build(x.shape)
    theirs.build(x.shape)
    # Ours to theirs.
    randomize_weights(ours, seed=9)
    theirs.set_weights(ours.get_weights())
    for a, b in zip(ours(x, mask=mask), theirs(x, mask=mask), strict=True):
        assert_allclose(a, b, **TOL)
    # Theirs to ours.
    randomize_weights(theirs, seed=10)
    ours.set_weights(theirs.get_weights())
    for a, b in zip(ours(x, mask=mask), theirs(x, mask=mask), strict=True):
        assert_allclose(a, b, **TOL)
    want = gru_sequence(
        x, gru_weights(theirs.cell), reset_after, mask=mask, **kwargs
    )
    assert_allclose(ours(x, mask=mask)[0], want[0], **TOL)


def test_our_cell_in_keras_rnn_equals_keras_cell():
    x = inputs(11)
    ours = keras.layers.RNN(klv.GRUCell(UNITS), return_sequences=True)
    theirs = keras.layers.RNN(keras.layers.GRUCell(UNITS), return_sequences=True)
    ours.build(x.shape)
    theirs.build(x.shape)
    randomize_weights(ours, seed=12)
    theirs.set_weights(ours.get_weights())
    assert_allclose(ours(x), theirs(x), **TOL)


def test_bidirectional_and_stateful_match_the_reference():
    x = inputs(13, batch=2)
    bidi = keras.layers.Bidirectional(klv.GRU(UNITS, return_sequences=True))
    outputs = bidi(x)
    randomize_weights(bidi, seed=14)
    outputs = to_numpy(bidi(x))
    forward = gru_sequence(x, gru_weights(bidi.forward_layer.cell))[0]
    backward_cell = bidi.backward_layer.cell
    backward = gru_sequence(x, gru_weights(backward_cell), go_backwards=True)[0]
    assert_allclose(outputs[..., :UNITS], forward, **TOL)
    assert_allclose(outputs[..., UNITS:], backward[:, ::-1], **TOL)

    layer = klv.GRU(UNITS, stateful=True, return_state=True)
    layer.build((2, TIME, FEATURES))
    randomize_weights(layer, seed=15)
    layer(x[:, :3])
    _, h = layer(x[:, 3:])
    assert_allclose(h, gru_sequence(x, gru_weights(layer.cell))[1], **TOL)


def test_dropout_is_identity_at_inference_and_seeded_in_training():
    x = inputs(16)
    layer = klv.GRU(UNITS, dropout=0.3, recurrent_dropout=0.4, seed=3)
    layer.build(x.shape)
    randomize_weights(layer, seed=17)
    want = gru_sequence(x, gru_weights(layer.cell))[1]
    assert_allclose(layer(x), want, **TOL)
    trained = to_numpy(layer(x, training=True))
    assert np.abs(trained - want).max() > 1e-3


def test_layer_learns_a_small_task():
    rng = np.random.default_rng(18)
    x = rng.standard_normal((64, 8, 2)).astype("float32")
    y = x[:, :, :1].sum(axis=1)
    model = keras.Sequential([keras.Input((8, 2)), klv.GRU(8), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.03), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.3 * before


@pytest.mark.parametrize("reset_after", [True, False])
def test_finite_differences_of_the_generic_cell(reset_after):
    """Autodiff of the layer (float64, generic loop) against central
    differences of the NumPy reference, for the input and entries of every
    weight."""
    if keras.backend.backend() == "jax":
        pytest.skip("Keras's JAX backend computes float64 activations in float32")
    from autodiff import gradients

    x = inputs(19, batch=2, time=4).astype("float64")
    layer = klv.GRU(
        3,
        reset_after=reset_after,
        return_sequences=True,
        dtype="float64",
        use_fast_path=False,
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=20, scale=0.6)
    projection = np.random.default_rng(21).normal(size=(2, 4, 3))
    analytic = gradients(layer, x, projection)
    weights = gru_weights(layer.cell)
    arrays = [x, weights["kernel"], weights["recurrent_kernel"], weights["bias"]]
    assert len(analytic) == len(arrays)

    def loss():
        outputs = gru_sequence(x, weights, reset_after)[0]
        return float(np.sum(outputs * projection))

    rng = np.random.default_rng(22)
    for array, grad in zip(arrays, analytic, strict=True):
        for _ in range(6):
            index = tuple(rng.integers(0, n) for n in array.shape)
            saved = array[index]
            array[index] = saved + 1e-6
            plus = loss()
            array[index] = saved - 1e-6
            minus = loss()
            array[index] = saved
            numeric = (plus - minus) / 2e-6
            # The tolerances of the variants' finite-difference test.
            np.testing.assert_allclose(grad[index], numeric, rtol=1e-6, atol=1e-7)


# Gate inspection (the `InspectableCell` protocol).


def reference_values(x, cell, mask=None, go_backwards=False):
    """Each step's four values, float64, in processing order; a masked step
    repeats the last unmasked step's values (`gate_activations`' rule)."""
    reset_after = cell.reset_after
    _, _, values = gru_sequence(x, gru_weights(cell), reset_after)
    if mask is None and not go_backwards:
        return values
    x = np.asarray(x, np.float64)
    weights = gru_weights(cell)
    h = np.zeros((x.shape[0], cell.units))
    previous = {name: np.zeros_like(h) for name in cell.value_names}
    steps = []
    times = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in times:
        step = gru_step(x[:, t], h, weights, reset_after)
        if mask is not None:
            keep = np.asarray(mask[:, t], bool)[:, None]
            step = {k: np.where(keep, v, previous[k]) for k, v in step.items()}
        h, previous = step["hidden_state"], step
        steps.append(step)
    return {k: np.stack([s[k] for s in steps], axis=1) for k in steps[0]}


def test_the_cell_offers_the_inspection_protocol():
    from keras_lstm_variants.keras_cell_views import inspectable
    from keras_lstm_variants.value_cells import InspectableCell

    cell = klv.GRUCell(UNITS)
    assert isinstance(cell, InspectableCell) and inspectable(cell) is cell
    assert cell.value_names == (
        "update_gate",
        "reset_gate",
        "candidate",
        "hidden_state",
    )
    assert cell.gate_names == ("update_gate", "reset_gate")
    assert cell.state_names == ("hidden_state",)
    assert len(cell.state_names) == len(keras.tree.flatten(cell.state_size))
    assert [cell.value_size(n) for n in cell.value_names] == [UNITS] * 4
    assert [cell.tag_position(n) for n in cell.value_names] == [1, 2, 3, 4]
    cell.build((None, FEATURES))
    randomize_weights(cell, seed=40)
    x = inputs(41)[:, 0]
    h = np.random.default_rng(42).standard_normal((BATCH, UNITS)).astype("float32")
    with values_only():
        values = cell.gate_values(x, [h])
        output, states = cell(x, [h])
    assert_allclose(cell.output_of(values), output, rtol=0, atol=0)
    assert_allclose(cell.next_states(values)[0], states[0], rtol=0, atol=0)


def test_gate_activations_match_the_reference():
    x, mask = inputs(43), right_padded_mask()
    model_inputs = keras.Input((TIME, FEATURES))
    masked = keras.layers.Masking()(model_inputs)
    a = klv.GRU(UNITS, return_sequences=True, name="low")(masked)
    b = keras.layers.Bidirectional(klv.GRU(3, reset_after=False), name="bi")(a)
    model = keras.Model(model_inputs, b)
    randomize_weights(model, seed=44)
    padded = np.where(mask[..., None], x, 0.0).astype("float32")
    gates = klv.gate_activations(model, padded)
    low = model.get_layer("low")
    bidi = model.get_layer("bi")
    assert sorted(gates) == sorted(
        ["low", f"bi/{bidi.forward_layer.name}", f"bi/{bidi.backward_layer.name}"]
    )
    want = reference_values(padded, low.cell, mask)
    assert list(gates["low"]) == list(low.cell.value_names)
    for name, value in want.items():
        np.testing.assert_allclose(gates["low"][name], value, atol=1e-5, err_msg=name)
    for name in low.cell.gate_names:
        assert 0.0 <= gates["low"][name].min() <= gates["low"][name].max() <= 1.0
    # The layer's own output sequence is the hidden state where unmasked.
    outputs = to_numpy(low(padded, mask=mask))
    np.testing.assert_allclose(
        gates["low"]["hidden_state"][mask], outputs[mask], atol=1e-5
    )
    # The forward layer of the Bidirectional reads the first layer's outputs.
    forward = bidi.forward_layer
    want = reference_values(outputs, forward.cell, mask)
    got = gates[f"bi/{forward.name}"]
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, atol=1e-5, err_msg=name)


# Configs and files.


def test_cell_and_layer_configs_round_trip():
    kwargs = dict(
        activation="relu",
        recurrent_activation="hard_sigmoid",
        use_bias=False,
        kernel_regularizer="l2",
        recurrent_constraint="non_neg",
        dropout=0.25,
        recurrent_dropout=0.125,
        reset_after=False,
        seed=7,
    )
    cell = klv.GRUCell(UNITS, **kwargs)
    clone = klv.GRUCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()

    layer = klv.GRU(
        UNITS,
        return_sequences=True,
        go_backwards=True,
        activity_regularizer="l1",
        **kwargs,
    )
    config = layer.get_config()
    assert config["activity_regularizer"]["class_name"] == "L1"
    assert "cell" not in config
    assert config["use_fast_path"] == "auto"
    # Keras's GRU config keys, and ours: the same, but `use_cudnn`.
    theirs = keras.layers.GRU(UNITS).get_config()
    assert set(config) - {"use_fast_path"} == set(theirs) - {"use_cudnn"}
    for name in ("dropout", "recurrent_dropout", "seed", "use_bias", "reset_after"):
        assert getattr(layer, name) == kwargs[name]
    clone = klv.GRU.from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is klv.GRU and revived.get_config() == config
    with pytest.raises(AttributeError):
        layer.units = 4


def test_keras_file_round_trip_without_custom_objects(tmp_path):
    x = inputs(23)
    model_inputs = keras.Input((None, FEATURES))
    a = klv.GRU(UNITS, return_sequences=True, reset_after=False)(model_inputs)
    b = keras.layers.Bidirectional(klv.GRU(3, return_sequences=True))(a)
    c = keras.layers.RNN(klv.GRUCell(2), go_backwards=True)(b)
    model = keras.Model(model_inputs, c)
    for layer in model.layers:
        randomize_weights(layer, seed=24)
    expected = to_numpy(model(x))
    model.save(tmp_path / "gru.keras")
    reloaded = keras.saving.load_model(tmp_path / "gru.keras")
    assert_allclose(reloaded(x), expected, rtol=0, atol=0)
    assert isinstance(reloaded.layers[1], klv.GRU)
    assert reloaded.layers[1].reset_after is False


# Errors.


@pytest.mark.parametrize("cls", [klv.GRUCell, klv.GRU])
@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"units": 0}, ValueError, r"`units`.*positive integer.*units=0"),
        ({"units": 2.5}, TypeError, r"`units`.*units=2.5.*float"),
        ({"units": "8"}, TypeError, r"`units`.*units='8'"),
        ({"units": None}, TypeError, r"`units`.*units=None"),
        ({"units": 4, "dropout": 1.0}, ValueError, r"`dropout`.*\[0, 1\).*=1.0"),
        ({"units": 4, "dropout": -0.1}, ValueError, r"`dropout`.*\[0, 1\)"),
        (
            {"units": 4, "recurrent_dropout": "0.2"},
            TypeError,
            r"`recurrent_dropout`.*\[0, 1\).*'0.2'",
        ),
        ({"units": 4, "reset_after": "yes"}, TypeError, r"`reset_after`.*boolean"),
    ],
)
def test_bad_arguments(cls, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        cls(**kwargs)


def test_bad_use_fast_path_and_bad_calls():
    with pytest.raises(ValueError, match="use_fast_path"):
        klv.GRU(4, use_fast_path="yes")
    layer = klv.GRU(4)
    with pytest.raises(ValueError, match=r"expected ndim=3|rank 3"):
        layer(np.zeros((2, 3), "float32"))
    layer(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"built for inputs with 3 features"):
        layer(np.zeros((2, 5, 6), "float32"))
    x, h = np.zeros((2, 5, 3), "float32"), np.zeros((2, 4), "float32")
    with pytest.raises(ValueError, match=r"expects 1 initial state\(s\).*received 2"):
        layer(x, initial_state=[h, h])
    with pytest.raises(ValueError, match=r"initial state 0 of shape \(batch, 4\)"):
        layer(x, initial_state=[np.zeros((2, 5), "float32")])
    with pytest.raises(ValueError, match=r"mask of shape \(batch, timesteps\)"):
        layer(x, mask=np.ones((2, 4), bool))
    cell = klv.GRUCell(4)
    with pytest.raises(ValueError, match=r"rank 2.*\(batch, features\)"):
        cell.build((2, 5, 3))


# TensorFlow only: the fast path against the generic loop.


def _tensorflow():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fast path runs on the TensorFlow backend only")
    import tensorflow as tf

    return tf


def run_with_gradients(layer, x, fast, training=False, **call_kwargs):
    """Outputs, states and d(loss)/d(input, every weight) on one path."""
    tf = _tensorflow()
    layer.use_fast_path = fast
    x = tf.constant(x)
    rng = np.random.default_rng(7)
    with tf.GradientTape() as tape:
        tape.watch(x)
        results = layer(x, training=training, **call_kwargs)
        results = results if isinstance(results, (list, tuple)) else [results]
        # Random cotangents, so every output and state feeds the gradient.
        loss = sum(
            tf.reduce_sum(r * rng.standard_normal(r.shape).astype(r.dtype.name))
            for r in results
        )
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    assert all(g is not None for g in grads)
    return [np.asarray(r) for r in results], [np.asarray(g) for g in grads]


def assert_paths_agree(layer, x, training=False, **call_kwargs):
    fast = run_with_gradients(layer, x, True, training, **call_kwargs)
    generic = run_with_gradients(layer, x, False, training, **call_kwargs)
    for a, b in zip(fast[0] + fast[1], generic[0] + generic[1], strict=True):
        assert_allclose(a, b, **TOL)
    return fast


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of the TensorFlow whole-sequence GRU kernel."""
    _tensorflow()
    from keras_lstm_variants import _tf_gru_sequence

    return spy_calls(monkeypatch, _tf_gru_sequence, "gru_sequence")


@pytest.mark.parametrize("reset_after, use_bias", BIAS_SETTINGS)
@pytest.mark.parametrize(
    "kwargs, masked",
    [
        ({}, False),
        ({"go_backwards": True}, True),
        ({"zero_output_for_mask": True}, True),
        ({"return_sequences": False}, True),
        ({"return_sequences": False}, False),
    ],
    ids=["plain", "masked_backward", "zero_output", "last_masked", "last"],
)
def test_fast_path_equals_generic_loop(reset_after, use_bias, kwargs, masked):
    tf = _tensorflow()
    layer = make_gru(reset_after, use_bias, **kwargs)
    assert layer.fast_path_fallback_reason() is None
    h0 = np.random.default_rng(3).standard_normal((BATCH, UNITS)).astype("float32")
    call_kwargs = {"initial_state": [tf.constant(h0)]}
    if masked:
        call_kwargs["mask"] = tf.constant(right_padded_mask())
    assert_paths_agree(layer, inputs(4), **call_kwargs)


@pytest.mark.parametrize("reset_after", [True, False])
def test_fast_path_dropout_in_training(reset_after):
    """Same seed, same masks: both paths drop the same units."""
    _tensorflow()
    results = []
    for fast in (True, False):
        layer = make_gru(reset_after, dropout=0.3, recurrent_dropout=0.4, seed=11)
        results.append(run_with_gradients(layer, inputs(6), fast, training=True))
    (fast_out, fast_grads), (generic_out, generic_grads) = results
    for a, b in zip(fast_out + fast_grads, generic_out + generic_grads, strict=True):
        assert_allclose(a, b, **TOL)


def test_fast_path_taken_by_default_and_falls_back(kernel_calls):
    layer = klv.GRU(UNITS)
    assert layer.use_fast_path == "auto"
    layer(inputs())
    assert len(kernel_calls) == 1
    for kwargs, reason in (
        ({"use_fast_path": False}, "use_fast_path=False"),
        ({"unroll": True}, "unroll=True"),
        ({"dtype": "mixed_float16"}, "float16"),
    ):
        layer = klv.GRU(UNITS, **kwargs)
        layer(inputs())
        assert reason in layer.fast_path_fallback_reason()
    assert len(kernel_calls) == 1
    with pytest.raises(ValueError, match="use_fast_path=True.*unroll=True"):
        klv.GRU(UNITS, unroll=True, use_fast_path=True)


def test_falls_back_for_a_cell_that_overrides_its_step(kernel_calls):
    class Custom(klv.GRUCell):
        def gate_values(self, inputs, states, training=False):
            return super().gate_values(inputs, states, training)

    class CustomGRU(klv.GRU):
        cell_class = Custom

    layer = CustomGRU(UNITS)
    layer(inputs())
    assert not kernel_calls
    assert "overrides its step" in layer.fast_path_fallback_reason()


def test_mixed_precision_runs_the_generic_loop_with_keras_numbers():
    _tensorflow()
    keras.config.set_dtype_policy("mixed_float16")
    x = inputs(25)
    ours, theirs = klv.GRU(UNITS), keras.layers.GRU(UNITS)
    ours.build(x.shape)
    theirs.build(x.shape)
    randomize_weights(ours, seed=26)
    theirs.set_weights(ours.get_weights())
    assert "float16" in ours.fast_path_fallback_reason()
    assert_allclose(ours(x), theirs(x), rtol=0, atol=0)


def test_stateful_bidirectional_and_compiled_training_step():
    tf = _tensorflow()
    x = inputs(27, batch=2)
    finals = []
    for fast in (True, False):
        layer = klv.GRU(UNITS, stateful=True, return_state=True, use_fast_path=fast)
        layer.build((2, TIME, FEATURES))
        randomize_weights(layer, 28)
        layer(x[:, :3])
        finals.append(np.asarray(layer(x[:, 3:])[1]))
    assert_allclose(finals[0], finals[1], **TOL)

    bidi = keras.layers.Bidirectional(klv.GRU(UNITS, return_sequences=True))
    bidi.build(x.shape)
    randomize_weights(bidi, 29)
    xt = tf.constant(x)

    @tf.function
    def loss_and_grads(fast):
        bidi.forward_layer.use_fast_path = fast
        bidi.backward_layer.use_fast_path = fast
        with tf.GradientTape() as tape:
            out = bidi(xt, training=True)
            loss = tf.reduce_sum(out * tf.sin(out))
        return loss, tape.gradient(loss, bidi.trainable_weights)

    fast, generic = loss_and_grads(True), loss_and_grads(False)
    for a, b in zip(tf.nest.flatten(fast), tf.nest.flatten(generic), strict=True):
        assert_allclose(np.asarray(a), np.asarray(b), **TOL)


def test_an_xla_compiled_caller_runs_the_generic_loop(kernel_calls):
    tf = _tensorflow()
    layer = make_gru(use_fast_path=True)
    x = tf.constant(inputs(30))

    @tf.function(jit_compile=True)
    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            outputs, h = layer(x)
            loss = tf.reduce_sum(outputs) + tf.reduce_sum(h)
        return loss, tape.gradient(loss, layer.trainable_weights)

    loss, grads = loss_and_grads(x)
    assert not kernel_calls
    with tf.GradientTape() as tape:
        outputs, h = layer(x)
        eager_loss = tf.reduce_sum(outputs) + tf.reduce_sum(h)
    eager_grads = tape.gradient(eager_loss, layer.trainable_weights)
    assert kernel_calls
    assert_allclose(loss, eager_loss, **TOL)
    for a, b in zip(grads, eager_grads, strict=True):
        assert_allclose(a, b, **TOL)


def test_backward_chunks_meet_at_their_boundaries(monkeypatch):
    _tensorflow()
    from keras_lstm_variants import _tf_gru_sequence
    from keras_lstm_variants import _tf_loops

    monkeypatch.setattr(_tf_loops, "CHUNK_ROWS", 2 * BATCH)
    monkeypatch.setattr(_tf_gru_sequence, "_KERNELS", {})
    for reset_after in (True, False):
        layer = make_gru(reset_after)
        assert_paths_agree(layer, inputs(31), mask=right_padded_mask())
        layer = make_gru(reset_after, return_sequences=False)
        assert_paths_agree(layer, inputs(32))


def test_float64_fast_path_and_inference_without_tape():
    tf = _tensorflow()
    x = inputs(33).astype("float64")
    layer = make_gru(False, dtype="float64", go_backwards=True)
    mask = right_padded_mask()
    want = gru_sequence(
        x, gru_weights(layer.cell), False, mask=mask, go_backwards=True
    )
    results = []
    for fast in (True, False):
        layer.use_fast_path = fast
        results.append(layer(tf.constant(x), mask=tf.constant(mask)))
    for got in results:
        assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
        assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)


def test_saved_model_export_round_trip(tmp_path):
    tf = _tensorflow()
    model = keras.Sequential([keras.Input((TIME, FEATURES)), klv.GRU(UNITS)])
    x = inputs(34)
    expected = model.predict_on_batch(x)
    model.export(str(tmp_path / "exported"), verbose=False)
    restored = tf.saved_model.load(str(tmp_path / "exported"))
    assert_allclose(restored.serve(tf.constant(x)), expected, **TOL)


def test_export_saved_model_serves_outputs_gates_and_explicit_states(tmp_path):
    tf = _tensorflow()
    x = inputs(45)
    model = keras.Sequential(
        [keras.Input((None, FEATURES)), klv.GRU(UNITS, name="gru", reset_after=False)]
    )
    randomize_weights(model, seed=46)
    path = klv.export_saved_model(model, tmp_path / "gru")
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](tf.constant(x))
    assert_allclose(served["output_0"], model(x), **TOL)
    gates = loaded.signatures["gates"](tf.constant(x))
    cell = model.layers[0].cell
    want = reference_values(x, cell)
    assert sorted(gates) == sorted(f"gru__{name}" for name in cell.value_names)
    for name, value in want.items():
        assert_allclose(gates[f"gru__{name}"], value, **TOL)

    stateful = keras.Sequential(
        [keras.Input((3, FEATURES), batch_size=BATCH), klv.GRU(UNITS, stateful=True)]
    )
    randomize_weights(stateful, seed=47)
    key = klv.signature_key(stateful.layers[0].name, "hidden_state")
    serve = tf.saved_model.load(
        klv.export_saved_model(stateful, tmp_path / "stateful")
    ).signatures["serving_default"]
    (input_key,) = set(serve.structured_input_signature[1]) - {key}
    h = np.zeros((BATCH, UNITS), "float32")
    for chunk in (x[:, :3], x[:, 3:]):
        result = serve(**{input_key: tf.constant(chunk), key: tf.constant(h)})
        h = result[key].numpy()
    want = gru_sequence(x, gru_weights(stateful.layers[0].cell))[1]
    assert_allclose(h, want, **TOL)
    assert_allclose(result["output_0"], want, **TOL)


def test_export_tflite_converts_the_fast_path(tmp_path):
    tf = _tensorflow()
    x = inputs(48)
    model = keras.Sequential(
        [
            keras.Input((TIME, FEATURES)),
            keras.layers.Bidirectional(klv.GRU(UNITS, return_sequences=True)),
            klv.GRU(3, reset_after=False),
        ]
    )
    randomize_weights(model, seed=49)
    path = klv.export_tflite(
        model, tmp_path / "gru.tflite", sequence_length=TIME, batch_size=BATCH
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation
        interpreter = tf.lite.Interpreter(model_path=path)
    runner = interpreter.get_signature_runner()
    (output,) = runner(**{runner.get_input_details().popitem()[0]: x}).values()
    assert_allclose(output, model(x), **TOL)


def test_gate_histograms_write_the_gru_tags(tmp_path):
    _tensorflow()
    from tensorboard.backend.event_processing import event_accumulator

    from keras_lstm_variants.sites import summary_tag

    rng = np.random.default_rng(50)
    x = rng.uniform(-1, 1, (16, TIME, FEATURES)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((TIME, FEATURES)),
            klv.GRU(UNITS, name="gru"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    callback = klv.GateHistograms(x[:2], str(tmp_path), heatmap_scale=2)
    model.fit(x, x.sum(axis=(1, 2))[:, None], epochs=1, callbacks=[callback], verbose=0)
    events = event_accumulator.EventAccumulator(
        str(tmp_path / "gates"), size_guidance={event_accumulator.TENSORS: 0}
    )
    events.Reload()
    cell = model.layers[0].cell
    expected = {summary_tag("gru", "heatmap")}
    for name in cell.value_names:
        expected.add(summary_tag("gru", name, cell=cell))
    for name in cell.gate_names:
        for statistic in ("mean", "saturated_fraction"):
            expected.add(summary_tag("gru", name, statistic, cell))
    assert sorted(events.Tags()["tensors"]) == sorted(expected)
    assert "gates.gru/1_update_gate" in expected
    assert "gates.gru/4_hidden_state" in expected
    gates = klv.gate_activations(model, x[:2])["gru"]
    (mean,) = events.Tensors("gates.gru/2_reset_gate/mean")
    np.testing.assert_allclose(
        tf_value(mean), gates["reset_gate"].astype(np.float64).mean(), atol=1e-5
    )


def tf_value(event):
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(event.tensor_proto)


def test_benchmark_script_runs_on_toy_shapes(monkeypatch):
    _tensorflow()
    import importlib.util
    import pathlib
    import sys

    folder = pathlib.Path(__file__).parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location("bench_gru", folder / "bench_gru.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gru", bench)
    spec.loader.exec_module(bench)
    monkeypatch.setitem(bench.SHAPES, "S1", (2, 3, 4, 5))
    names = ("keras.layers.GRU(reset_after=True)", "GRU(reset_after=True)")
    rows = bench.measure(["S1"], rounds=1, warmup=1, names=names)
    assert [r["contender"] for r in rows] == list(names)
    assert rows[0]["train_ratio"] == 1.0
    assert "| S1 | GRU(reset_after=True) |" in bench.format_table(rows)
