"""ONNX export: the native `LSTM`/`GRU` nodes, the generic loops, masks,
stateful layers, and a run where TensorFlow and this package cannot load.

Every exported file runs in ONNX Runtime and is compared with the Keras model
(within 1e-5) at batch sizes and lengths the export never saw; the classic
layers and Greff's variants are also compared with the float64 NumPy
reference of `numpy_reference.py`.
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras.tree import flatten as tree_flatten
from numpy_reference import GREFF
from numpy_reference import cell_weights
from numpy_reference import lstm_sequence
from numpy_reference import variant_sequence
from numpy_reference import variant_weights

import keras_lstm_variants as klv
from conftest import ALL_CONFIGS
from conftest import LAYER_CLASSES
from conftest import cell_kwargs
from conftest import config_id
from keras_lstm_variants import onnx_export

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="export_onnx traces the model with TensorFlow",
)

FEATURES = 3
UNITS = 4
#: (batch, time) pairs fed after export: none is seen at export time.
SHAPES = [(1, 1), (1, 9), (5, 4), (7, 13)]
TOLERANCE = 1e-5


def _randomized(model, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(0.5 * rng.standard_normal(weight.shape).astype("float32"))
    return model


def _model(layer, tokens=False):
    if tokens:
        inputs = keras.Input((None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(10, FEATURES, mask_zero=True)(inputs)
    else:
        inputs = keras.Input((None, FEATURES), name="x")
        x = inputs
    return _randomized(keras.Model(inputs, layer(x)), seed=7)


def _feed(batch, time, seed, tokens=False, left_padding=False):
    rng = np.random.default_rng(seed)
    if not tokens:
        return rng.standard_normal((batch, time, FEATURES)).astype("float32")
    ids = rng.integers(1, 10, (batch, time)).astype("int32")
    for row, length in enumerate(rng.integers(1, time + 1, batch)):
        if left_padding:
            ids[row, : time - length] = 0
        else:
            ids[row, length:] = 0  # right padding: a prefix of every row counts
    return ids


def _export(model, tmp_path, name="model"):
    path = klv.export_onnx(model, tmp_path / f"{name}.onnx")
    return onnx.load(path), ort.InferenceSession(path)


def _op_types(model_proto):
    return [node.op_type for node in model_proto.graph.node]


def _run(session, **feeds):
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def _run_chunks(session, model, chunks, states):
    """Feeds `chunks` through the file with its states fed back, each chunk's
    output against the stateful Keras `model` on the same chunk; returns the
    final states (`states` maps the file's state inputs to their values)."""
    for chunk in chunks:
        got = _run(session, x=chunk, **states)
        np.testing.assert_allclose(
            got["output_0"], model.predict_on_batch(chunk), atol=TOLERANCE
        )
        states = {k: got[k + "__final"] for k in states}
    return states


def _keras_outputs(model, x):
    # Named as export_saved_model names them: output_0, ... over the flat list.
    y = tree_flatten(model.predict_on_batch(x))
    return {f"output_{k}": np.asarray(v) for k, v in enumerate(y)}


def _assert_matches_keras(model, session, tokens=False, shapes=SHAPES):
    for k, (batch, time) in enumerate(shapes):
        x = _feed(batch, time, seed=k, tokens=tokens)
        got = _run(session, **{model.inputs[0].name: x})
        expected = _keras_outputs(model, x)
        assert set(got) == set(expected)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, atol=TOLERANCE, rtol=0)


# ---------------------------------------------------------------------------
# Our classic layers: one native LSTM node each.


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_classic_layers_are_one_native_lstm(config, tmp_path):
    variant, gates = config
    layer = LAYER_CLASSES[variant](
        UNITS, return_sequences=True, return_state=True, **cell_kwargs(variant, gates)
    )
    model = _model(layer)
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert ops.count("LSTM") == 1 and "Loop" not in ops and "Scan" not in ops
    (node,) = [n for n in model_proto.graph.node if n.op_type == "LSTM"]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attributes.get("input_forget", 0) == (variant == "coupled")
    _assert_matches_keras(model, session)
    # And the float64 NumPy reference, written from REFERENCE.md.
    x = _feed(5, 11, seed=3)
    y, h, c = _run(session, x=x).values()
    ref_y, ref_h, ref_c = lstm_sequence(
        x, cell_weights(layer.cell), coupled=variant == "coupled"
    )
    for got, ref in ((y, ref_y), (h, ref_h), (c, ref_c)):
        np.testing.assert_allclose(got, ref, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_go_backwards_is_the_reverse_direction(return_sequences, tmp_path):
    layer = klv.PeepholeLSTM(
        UNITS, go_backwards=True, return_sequences=return_sequences, return_state=True
    )
    model = _model(layer)
    model_proto, session = _export(model, tmp_path)
    (node,) = [n for n in model_proto.graph.node if n.op_type == "LSTM"]
    direction = [a for a in node.attribute if a.name == "direction"][0]
    assert direction.s == b"reverse"
    _assert_matches_keras(model, session)
    x = _feed(3, 6, seed=1)
    ref_y, ref_h, _ = lstm_sequence(x, cell_weights(layer.cell), go_backwards=True)
    y, h, _ = _run(session, x=x).values()
    np.testing.assert_allclose(
        y, ref_y if return_sequences else ref_y[:, -1], atol=TOLERANCE
    )
    np.testing.assert_allclose(h, ref_h, atol=TOLERANCE)


def test_bidirectional_is_one_bidirectional_node(tmp_path):
    layer = keras.layers.Bidirectional(
        klv.CoupledLSTM(
            UNITS, peephole_gates=("forget", "output"), return_sequences=True
        )
    )
    model = _model(layer)
    model_proto, session = _export(model, tmp_path)
    directions = sorted(
        a.s
        for n in model_proto.graph.node
        if n.op_type == "LSTM"
        for a in n.attribute
        if a.name == "direction"
    )
    assert directions == [b"bidirectional"]
    assert "Loop" not in _op_types(model_proto)
    _assert_matches_keras(model, session)


def test_initial_state_from_the_model_is_the_operators(tmp_path):
    x_in = keras.Input((None, FEATURES), name="x")
    h0 = keras.Input((UNITS,), name="h0")
    c0 = keras.Input((UNITS,), name="c0")
    y = klv.PeepholeLSTM(UNITS, return_sequences=True)(x_in, initial_state=[h0, c0])
    model = _randomized(keras.Model([x_in, h0, c0], y), seed=2)
    model_proto, session = _export(model, tmp_path)
    assert _op_types(model_proto).count("LSTM") == 1
    rng = np.random.default_rng(0)
    x = _feed(4, 7, seed=0)
    h, c = (rng.standard_normal((4, UNITS)).astype("float32") for _ in range(2))
    got = _run(session, x=x, h0=h, c0=c)["output_0"]
    np.testing.assert_allclose(
        got, model.predict_on_batch([x, h, c]), atol=TOLERANCE, rtol=0
    )


def test_more_layer_options_map_natively(tmp_path):
    inputs = keras.Input((6, FEATURES), name="x")  # a fixed time axis
    x = klv.PeepholeLSTM(UNITS, unroll=True, return_sequences=True)(inputs)
    x = klv.StandardLSTM(UNITS, use_bias=False, return_sequences=True)(x)
    x = keras.layers.RNN(
        klv.LSTMVariantCell(UNITS, variant="NOG", dropout=0.3), return_sequences=True
    )(x)
    y = keras.layers.RNN(klv.CoupledLSTMCell(2, recurrent_dropout=0.2))(x)
    model = _randomized(keras.Model(inputs, y), seed=9)
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert ops.count("LSTM") == 4 and "Loop" not in ops
    (given,) = model_proto.graph.input
    assert [d.dim_value for d in given.type.tensor_type.shape.dim][1:] == [6, 3]
    _assert_matches_keras(model, session, shapes=[(1, 6), (4, 6), (9, 6)])


# ---------------------------------------------------------------------------
# The variant space: what maps natively, what runs as a loop.

NATIVE_VARIANTS = ["vanilla", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG"]


@pytest.mark.parametrize("variant", NATIVE_VARIANTS)
def test_greff_variants_map_natively(variant, tmp_path):
    layer = klv.LSTMVariant(UNITS, variant=variant, return_sequences=True)
    model = _model(layer)
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert ops.count("LSTM") == 1 and "Loop" not in ops
    _assert_matches_keras(model, session)
    x = _feed(5, 11, seed=4)
    options = {k: v for k, v in GREFF[variant].items() if k != "peepholes"}
    values, _, _ = variant_sequence(
        x, variant_weights(layer.cell), options, UNITS, UNITS
    )
    np.testing.assert_allclose(
        _run(session, x=x)["output_0"], values["hidden_state"], atol=TOLERANCE
    )


@pytest.mark.parametrize(
    "switches",
    [
        {"recurrent_activation": "hard_sigmoid"},
        {
            "activation": "relu",
            "recurrent_activation": "hard_sigmoid",
            "variant": "CIFG",
        },
        {"activation": "softsign", "variant": "NIG"},
        {"activation": "linear", "recurrent_activation": "sigmoid"},
    ],
    ids=["hard_sigmoid", "relu-cifg", "softsign-nig", "linear"],
)
def test_activations_map_onto_onnx_activations(switches, tmp_path):
    model = _model(klv.LSTMVariant(UNITS, return_sequences=True, **switches))
    model_proto, session = _export(model, tmp_path)
    assert "LSTM" in _op_types(model_proto)
    _assert_matches_keras(model, session)


@pytest.mark.parametrize(
    "switches, reason",
    [
        ({"layer_norm": True}, "layer normalization"),
        ({"variant": "FGR"}, "full gate recurrence"),
        ({"projection_units": 3}, "a projection"),
        ({"cell_clip": 0.3}, "cell_clip"),
        ({"recurrent_activation": "relu", "variant": "CIFG"}, "a missing or coupled"),
        ({"activation": "elu"}, "its activation 'elu' has no ONNX"),
    ],
    ids=["layer_norm", "FGR", "projection", "cell_clip", "relu-cifg", "elu"],
)
def test_variants_onnx_cannot_express_export_as_a_loop(switches, reason, tmp_path):
    layer = klv.LSTMVariant(UNITS, return_sequences=True, name="variant", **switches)
    model = _model(layer)
    mapping = onnx_export.onnx_mapping(model)
    assert mapping["variant"].startswith(f"layer 'variant': {reason}")
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert "Loop" in ops and "LSTM" not in ops
    _assert_matches_keras(model, session, shapes=SHAPES[1:3])


@pytest.mark.parametrize("go_backwards", [False, True])
def test_stacked_cells_are_a_chain_of_native_nodes(go_backwards, tmp_path):
    layer = keras.layers.RNN(
        [
            klv.StandardLSTMCell(UNITS, name="low"),
            klv.PeepholeLSTMCell(2, name="mid"),
            keras.layers.GRUCell(3, name="high"),
        ],
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        name="stack",
    )
    model = _model(layer, tokens=True)
    assert onnx_export.onnx_mapping(model)["stack"] == "LSTM+LSTM+GRU"
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert (ops.count("LSTM"), ops.count("GRU")) == (2, 1) and "Loop" not in ops
    _assert_matches_keras(model, session, tokens=True)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: klv.DepthGatedLSTM(UNITS, depth=2, return_sequences=True), "depth"),
        (lambda: klv.ClockworkRNN(6, periods=(1, 2, 4), return_state=True), "clock"),
    ],
    ids=["depth-gated", "clockwork"],
)
def test_the_other_cells_export_as_a_loop(make, reason, tmp_path):
    model = _model(make())
    (why,) = onnx_export.onnx_mapping(model).values()
    assert "has no native ONNX mapping" in why and reason in why
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert "Loop" in ops and "LSTM" not in ops
    _assert_matches_keras(model, session)


def test_a_stateful_clockwork_carries_its_clock(tmp_path):
    inputs = keras.Input((None, FEATURES), batch_size=2, name="x")
    layer = klv.ClockworkRNN(6, periods=(1, 3), stateful=True, return_sequences=True)
    model = _randomized(keras.Model(inputs, layer(inputs)), seed=10)
    _, session = _export(model, tmp_path)
    specs = {i.name: i for i in session.get_inputs() if i.name != "x"}
    assert len(specs) == len(layer.cell.state_size)
    states = {
        name: np.zeros((2, size), np.float32)
        for name, size in zip(specs, layer.cell.state_size, strict=True)
    }
    layer.reset_state()
    # 5 steps then 4: the second chunk starts at t = 5.
    _run_chunks(session, model, [_feed(2, 5, seed=1), _feed(2, 4, seed=2)], states)


def test_a_stack_with_a_cell_that_does_not_map_is_a_loop(tmp_path):
    layer = keras.layers.RNN(
        [klv.StandardLSTMCell(UNITS), klv.LSTMVariantCell(2, layer_norm=True)],
        return_sequences=True,
        name="stack",
    )
    model = _model(layer)
    assert "layer normalization" in onnx_export.onnx_mapping(model)["stack"]
    model_proto, session = _export(model, tmp_path)
    assert "Loop" in _op_types(model_proto)
    _assert_matches_keras(model, session, shapes=SHAPES[1:3])


# ---------------------------------------------------------------------------
# Keras's own LSTM and GRU.


@pytest.mark.parametrize(
    "layer",
    [
        lambda: keras.layers.LSTM(UNITS, return_sequences=True, return_state=True),
        lambda: keras.layers.GRU(UNITS, return_sequences=True, return_state=True),
        lambda: keras.layers.GRU(UNITS, reset_after=False, return_sequences=True),
        lambda: keras.layers.GRU(UNITS, go_backwards=True, use_bias=False),
    ],
    ids=["lstm", "gru", "gru-reset-before", "gru-backwards-nobias"],
)
def test_keras_lstm_and_gru_map_natively(layer, tmp_path):
    model = _model(layer())
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert ops.count("LSTM") + ops.count("GRU") == 1 and "Loop" not in ops
    _assert_matches_keras(model, session)


# ---------------------------------------------------------------------------
# Masks.


@pytest.mark.parametrize(
    "make",
    [
        lambda: klv.StandardLSTM(UNITS, return_sequences=True),
        lambda: klv.PeepholeLSTM(
            UNITS, return_sequences=True, zero_output_for_mask=True
        ),
        lambda: klv.CoupledLSTM(UNITS, return_sequences=True, go_backwards=True),
        lambda: klv.PeepholeLSTM(UNITS, return_state=True),
        lambda: klv.PeepholeLSTM(UNITS, zero_output_for_mask=True),
        lambda: keras.layers.Bidirectional(
            klv.PeepholeLSTM(UNITS, return_sequences=True)
        ),
        lambda: keras.layers.Bidirectional(klv.CoupledLSTM(UNITS)),
        lambda: keras.layers.GRU(UNITS, return_sequences=True),
        lambda: keras.layers.Bidirectional(keras.layers.GRU(UNITS), merge_mode="sum"),
    ],
    ids=[
        "sequences",
        "zero-output",
        "backwards",
        "last-with-state",
        "last-zero-output",
        "bidirectional",
        "bidirectional-last",
        "keras-gru",
        "bidirectional-gru",
    ],
)
def test_right_padded_masks_match_keras_at_every_step(make, tmp_path):
    # Masked steps included: Keras repeats the last unmasked output there
    # (zeros with zero_output_for_mask or go_backwards), ONNX writes zeros
    # after `sequence_lens`; the export rebuilds Keras's values.
    model = _model(make(), tokens=True)
    model_proto, session = _export(model, tmp_path)
    assert "Loop" not in _op_types(model_proto)
    x = _feed(6, 9, seed=5, tokens=True)
    assert (x == 0).any()
    _assert_matches_keras(model, session, tokens=True)


def test_masked_steps_repeat_the_last_output_as_in_keras(tmp_path):
    model = _model(klv.StandardLSTM(UNITS, return_sequences=True), tokens=True)
    _, session = _export(model, tmp_path)
    x = np.array([[3, 4, 5, 0, 0], [1, 2, 0, 0, 0]], np.int32)
    y = _run(session, tokens=x)["output_0"]
    np.testing.assert_array_equal(y[0, 3], y[0, 2])
    np.testing.assert_array_equal(y[1, 2:], np.broadcast_to(y[1, 1], (3, UNITS)))
    assert np.abs(y[0, 3]).min() > 0  # not ONNX's zeros


def test_left_padded_masks_do_not_export(tmp_path):
    # sequence_lens counts the unmasked steps and runs the first ones: a mask
    # that is not a prefix (left padding) gives other values than Keras.
    model = _model(klv.StandardLSTM(UNITS), tokens=True)
    _, session = _export(model, tmp_path)
    x = _feed(6, 9, seed=5, tokens=True, left_padding=True)
    padded = (x == 0).any(axis=1)
    got = _run(session, tokens=x)["output_0"]
    expected = model.predict_on_batch(x)
    np.testing.assert_allclose(got[~padded], expected[~padded], atol=TOLERANCE)
    assert np.abs(got[padded] - expected[padded]).max() > 1e-3


# ---------------------------------------------------------------------------
# Stateful layers, the rest of the model, the file itself.


def test_stateful_layers_get_explicit_states(tmp_path):
    inputs = keras.Input((None, FEATURES), batch_size=2, name="x")
    x = klv.PeepholeLSTM(UNITS, stateful=True, return_sequences=True, name="first")(
        inputs
    )
    outputs = klv.LSTMVariant(3, layer_norm=True, stateful=True, name="second")(x)
    model = _randomized(keras.Model(inputs, outputs), seed=3)
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert "LSTM" in ops and "Loop" in ops
    keys = {
        name: klv.signature_key(layer, state)
        for layer in ("first", "second")
        for name, state in (
            (f"{layer}_h", "hidden_state"),
            (f"{layer}_c", "cell_state"),
        )
    }
    inputs_of = {i.name: i for i in session.get_inputs()}
    assert set(inputs_of) == {"x", *keys.values()}
    # Two chunks through the file, states fed back, against the stateful
    # Keras model run on the same chunks; any batch size works in ONNX.
    chunks = [_feed(2, 5, seed=1), _feed(2, 3, seed=2)]
    states = {
        k: np.zeros((2, UNITS if "first" in k else 3), np.float32)
        for k in keys.values()
    }
    for layer in model.layers[1:]:
        layer.reset_state()
    states = _run_chunks(session, model, chunks, states)
    first = model.get_layer("first")
    np.testing.assert_allclose(
        states[keys["first_c"]], first.states[1].numpy(), atol=TOLERANCE
    )
    larger = _run(
        session,
        x=_feed(5, 4, seed=3),
        **{k: np.zeros((5, v.shape[1]), np.float32) for k, v in states.items()},
    )
    assert larger["output_0"].shape == (5, 3)


def test_a_stateful_stack_gets_explicit_states_per_cell(tmp_path):
    inputs = keras.Input((None, FEATURES), batch_size=2, name="x")
    layer = keras.layers.RNN(
        [klv.StandardLSTMCell(3, name="low"), klv.CoupledLSTMCell(2, name="high")],
        stateful=True,
        return_sequences=True,
        name="stack",
    )
    model = _randomized(keras.Model(inputs, layer(inputs)), seed=8)
    model_proto, session = _export(model, tmp_path)
    assert _op_types(model_proto).count("LSTM") == 2
    keys = [
        klv.signature_key(f"stack/{cell}", state)
        for cell in ("low", "high")
        for state in ("hidden_state", "cell_state")
    ]
    assert {i.name for i in session.get_inputs()} == {"x", *keys}
    sizes = dict(zip(keys, (3, 3, 2, 2), strict=True))
    states = {k: np.zeros((2, sizes[k]), np.float32) for k in keys}
    for variable in tree_flatten(layer.states):  # reset_state fails for stacks
        variable.assign(np.zeros(variable.shape, np.float32))
    chunks = [_feed(2, 4, seed=seed) for seed in (1, 2)]
    states = _run_chunks(session, model, chunks, states)
    for k, variable in zip(keys, tree_flatten(layer.states), strict=True):
        np.testing.assert_allclose(states[k], variable.numpy(), atol=TOLERANCE)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_stateful_keras_layers_get_explicit_states(kind, tmp_path):
    inputs = keras.Input((None, FEATURES), batch_size=3, name="x")
    layer = getattr(keras.layers, kind)(UNITS, stateful=True, name="keras_rnn")
    model = _randomized(keras.Model(inputs, layer(inputs)), seed=4)
    model_proto, session = _export(model, tmp_path)
    assert kind in _op_types(model_proto)
    names = ["hidden_state", "cell_state"][: 2 if kind == "LSTM" else 1]
    keys = [klv.signature_key("keras_rnn", name) for name in names]
    states = {k: np.zeros((3, UNITS), np.float32) for k in keys}
    layer.reset_state()
    chunks = [_feed(3, 4, seed=seed) for seed in (1, 2)]
    states = _run_chunks(session, model, chunks, states)
    for k, variable in zip(keys, layer.states, strict=True):
        np.testing.assert_allclose(states[k], variable.numpy(), atol=TOLERANCE)


def test_the_rest_of_the_model_converts(tmp_path):
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(10, 6, mask_zero=True)(tokens)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Dense(FEATURES, activation="relu")(x)
    a = klv.PeepholeLSTM(UNITS, return_sequences=True)(x)
    b = keras.layers.GRU(UNITS, return_sequences=True, go_backwards=True)(x)
    x = keras.layers.Concatenate()([a, b])
    norm = keras.layers.BatchNormalization()
    x = norm(x)
    last = klv.CoupledLSTM(UNITS)(x)
    y = keras.layers.Dense(2, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Reshape((2, 2))(last))
    )
    model = _randomized(keras.Model(tokens, y), seed=5)
    norm.moving_variance.assign(np.abs(norm.moving_variance.numpy()) + 0.5)
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert ops.count("LSTM") == 2 and ops.count("GRU") == 1
    assert "Loop" not in ops
    _assert_matches_keras(model, session, tokens=True, shapes=SHAPES[1:])


def test_time_distributed_runs_its_layer_on_merged_axes(tmp_path):
    # Keras 3.15's TimeDistributed over a dynamic time axis maps over
    # `range(batch size)` instead of time (right only when both are equal);
    # the export computes the layer on every step.
    inputs = keras.Input((None, FEATURES), name="x")
    dense = keras.layers.Dense(2, activation="tanh")
    y = keras.layers.TimeDistributed(dense)(
        klv.StandardLSTM(UNITS, return_sequences=True)(inputs)
    )
    model = _randomized(keras.Model(inputs, y), seed=6)
    model_proto, session = _export(model, tmp_path)
    assert "Loop" not in _op_types(model_proto)
    _assert_matches_keras(model, session, shapes=[(1, 1), (5, 5)])
    kernel, bias = (w.numpy() for w in dense.weights)
    for batch, time in [(2, 7), (6, 3)]:
        x = _feed(batch, time, seed=batch)
        hidden = model.layers[1](x).numpy()
        np.testing.assert_allclose(
            _run(session, x=x)["output_0"],
            np.tanh(hidden @ kernel + bias),
            atol=TOLERANCE,
        )


def test_the_axes_are_dynamic_and_named_as_the_models(tmp_path):
    model = _model(klv.PeepholeLSTM(UNITS))
    model_proto, _ = _export(model, tmp_path)
    (given,) = model_proto.graph.input
    dims = given.type.tensor_type.shape.dim
    assert given.name == "x"
    assert [d.HasField("dim_value") for d in dims] == [False, False, True]
    assert [o.name for o in model_proto.graph.output] == ["output_0"]


BLOCKED_RUNNER = textwrap.dedent(
    """
    import json
    import sys

    BLOCKED = ("tensorflow", "keras", "keras_lstm_variants", "tf2onnx")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this process")

    sys.meta_path.insert(0, Blocker())
    import numpy as np
    import onnxruntime as ort

    work = sys.argv[1]
    plan = json.load(open(work + "/plan.json"))
    results = {}
    for name, feed in plan.items():
        session = ort.InferenceSession(f"{work}/{name}.onnx")
        inputs = dict(np.load(f"{work}/{feed}.npz"))
        for k, value in enumerate(session.run(None, inputs)):
            results[f"{name}/{k}"] = value
    np.savez(work + "/results.npz", **results)
    loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
    print(json.dumps({"loaded": loaded}))
    """
)


def test_the_files_run_where_tensorflow_and_this_package_cannot_load(tmp_path):
    models = {
        "native": _model(
            keras.layers.Bidirectional(klv.PeepholeLSTM(UNITS, return_sequences=True)),
            tokens=True,
        ),
        "loop": _model(klv.LSTMVariant(UNITS, layer_norm=True)),
    }
    feeds = {
        "native": {"tokens": _feed(3, 8, seed=0, tokens=True)},
        "loop": {"x": _feed(2, 5, seed=1)},
    }
    for name, model in models.items():
        klv.export_onnx(model, tmp_path / f"{name}.onnx")
        np.savez(tmp_path / f"{name}_feed.npz", **feeds[name])
    (tmp_path / "plan.json").write_text(
        json.dumps({name: f"{name}_feed" for name in models})
    )
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"loaded": []}
    results = np.load(tmp_path / "results.npz")
    for name, model in models.items():
        (x,) = feeds[name].values()
        np.testing.assert_allclose(
            results[f"{name}/0"], model.predict_on_batch(x), atol=TOLERANCE
        )


# ---------------------------------------------------------------------------
# Bad arguments.


def test_bad_arguments_are_refused_early(tmp_path):
    model = _model(klv.PeepholeLSTM(UNITS))
    with pytest.raises(ValueError, match=r"ending in '\.onnx'.*model\.tflite"):
        klv.export_onnx(model, tmp_path / "model.tflite")
    with pytest.raises(ValueError, match="opset=13"):
        klv.export_onnx(model, tmp_path / "model.onnx", opset=13)
    with pytest.raises(TypeError, match="overwrite"):
        klv.export_onnx(model, tmp_path / "model.onnx", overwrite="yes")
    with pytest.raises(TypeError, match="keras.Model"):
        klv.export_onnx(model.layers[1], tmp_path / "model.onnx")
    klv.export_onnx(model, tmp_path / "model.onnx")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        klv.export_onnx(model, tmp_path / "model.onnx")
    klv.export_onnx(model, tmp_path / "model.onnx", overwrite=True)


def test_a_loop_tf2onnx_cannot_convert_fails_naming_the_layer(tmp_path):
    model = _model(klv.LSTMVariant(UNITS, activation="gelu", name="variant"))
    with pytest.raises(
        RuntimeError, match=r"(?s)Erfc.*layer 'variant': its activation 'gelu'"
    ):
        klv.export_onnx(model, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_a_stateful_foreign_loop_is_refused(tmp_path):
    inputs = keras.Input((None, FEATURES), batch_size=2)
    outputs = keras.layers.SimpleRNN(UNITS, stateful=True, name="simple")(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="stateful RNN layer 'simple'.*SimpleRNNCell"):
        klv.export_onnx(model, tmp_path / "model.onnx")


# ---------------------------------------------------------------------------
# Our GRU (weights as keras.layers.GRU's).


@pytest.mark.parametrize(
    "options",
    [
        {"return_sequences": True, "return_state": True},
        {"reset_after": False, "return_sequences": True},
        {"go_backwards": True, "return_state": True},
        {"activation": "softsign", "recurrent_activation": "hard_sigmoid"},
    ],
    ids=["sequences-state", "reset-before", "backwards", "activations"],
)
def test_our_gru_is_one_native_gru(options, tmp_path):
    layer = klv.GRU(UNITS, **options)
    model = _model(layer)
    model_proto, session = _export(model, tmp_path)
    ops = _op_types(model_proto)
    assert ops.count("GRU") == 1 and "Loop" not in ops
    _assert_matches_keras(model, session)
    # Keras's own GRU with the same weights, an independent reference.
    twin = keras.layers.GRU(UNITS, **options)
    reference = _model(twin)
    twin.set_weights(layer.get_weights())
    x = _feed(5, 11, seed=6)
    got = _run(session, x=x)
    for k, value in enumerate(tree_flatten(reference.predict_on_batch(x))):
        np.testing.assert_allclose(got[f"output_{k}"], value, atol=TOLERANCE)


def test_our_gru_with_masks_bidirectional_and_state(tmp_path):
    model = _model(
        keras.layers.Bidirectional(klv.GRU(UNITS, return_sequences=True)), tokens=True
    )
    model_proto, session = _export(model, tmp_path)
    assert _op_types(model_proto).count("GRU") == 1
    _assert_matches_keras(model, session, tokens=True)
    inputs = keras.Input((None, FEATURES), batch_size=2, name="x")
    layer = klv.GRU(UNITS, stateful=True, name="gru")
    model = _randomized(keras.Model(inputs, layer(inputs)), seed=11)
    _, session = _export(model, tmp_path, name="stateful")
    key = klv.signature_key("gru", "hidden_state")
    states = {key: np.zeros((2, UNITS), np.float32)}
    layer.reset_state()
    _run_chunks(session, model, [_feed(2, 4, seed=seed) for seed in (1, 2)], states)
