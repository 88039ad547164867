"""The Depth-Gated LSTM against a float64 NumPy reference written from
REFERENCE.md ("Other variations"): outputs, states and every level's values,
gradients by finite differences, masks, go_backwards, Bidirectional,
stateful chunks, `.keras` files, dropout and clear errors."""

import keras
import numpy as np
import pytest
from numpy_reference import to_numpy

import keras_lstm_variants as klv
from conftest import randomize_weights

UNITS = 3
LEVEL_NAMES = (
    "input_gate",
    "forget_gate",
    "candidate",
    "depth_gate",
    "cell_state",
    "output_gate",
    "hidden_state",
)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference_step(x, states, levels):
    """One step of REFERENCE.md's equations, float64. `states`: list of
    (h, c) per level; `levels`: list of weight dicts. Returns (values per
    level as dicts, new states)."""
    below_h, below_c = x, None
    values, new_states = [], []
    for k, w in enumerate(levels):
        h, c = states[k]
        u = h.shape[-1]
        z = below_h @ w["kernel"] + h @ w["recurrent_kernel"]
        if w.get("bias") is not None:
            z = z + w["bias"]
        i = sigmoid(z[:, :u])
        f = sigmoid(z[:, u : 2 * u])
        g = np.tanh(z[:, 2 * u : 3 * u])
        o = sigmoid(z[:, 3 * u :])
        c_new = f * c + i * g
        v = {"input_gate": i, "forget_gate": f, "candidate": g}
        if k > 0:
            pre = below_h @ w["depth_kernel"]
            if w.get("depth_bias") is not None:
                pre = pre + w["depth_bias"]
            pre = pre + w["depth_cell_peephole"] * c
            pre = pre + w["depth_lower_peephole"] * below_c
            d = sigmoid(pre)
            c_new = c_new + d * below_c
            v["depth_gate"] = d
        h_new = o * np.tanh(c_new)
        v.update(cell_state=c_new, output_gate=o, hidden_state=h_new)
        values.append(v)
        new_states.append((h_new, c_new))
        below_h, below_c = h_new, c_new
    return values, new_states


def reference_sequence(x, levels, mask=None, go_backwards=False, initial=None):
    """The whole sequence; masked steps keep the states and repeat the
    previous output and values (as keras.layers.RNN does). Returns (values
    `{level<l>_<name>: (batch, time, units)}` in processing order, final
    states as a flat list from the top level down: h^{L-1}, c^{L-1}, ...,
    h^0, c^0, the order of the layer's states). `initial` is in that order
    too."""
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    u = levels[0]["recurrent_kernel"].shape[0]
    if initial is None:
        states = [(np.zeros((batch, u)), np.zeros((batch, u))) for _ in levels]
    else:
        top = len(levels) - 1
        states = [
            (initial[2 * (top - k)], initial[2 * (top - k) + 1])
            for k in range(len(levels))
        ]
    order = range(time - 1, -1, -1) if go_backwards else range(time)
    previous = None
    steps = []
    for t in order:
        values, new_states = reference_step(x[:, t], states, levels)
        flat = {
            f"level{k}_{n}": a for k, v in enumerate(values) for n, a in v.items()
        }
        if mask is not None:
            keep = np.asarray(mask[:, t], bool)[:, None]
            if previous is None:
                previous = {n: np.zeros_like(a) for n, a in flat.items()}
            flat = {n: np.where(keep, a, previous[n]) for n, a in flat.items()}
            new_states = [
                (np.where(keep, h1, h0), np.where(keep, c1, c0))
                for (h1, c1), (h0, c0) in zip(new_states, states, strict=True)
            ]
        states, previous = new_states, flat
        steps.append(flat)
    stacked = {n: np.stack([s[n] for s in steps], axis=1) for n in steps[0]}
    return stacked, [a for hc in reversed(states) for a in hc]


def level_weights(cell):
    """Each level's weights as float64 arrays, by REFERENCE.md's names."""
    names = (
        "kernel",
        "recurrent_kernel",
        "bias",
        "depth_kernel",
        "depth_bias",
        "depth_cell_peephole",
        "depth_lower_peephole",
    )
    return [
        {
            n: None
            if getattr(level, n) is None
            else to_numpy(getattr(level, n)).astype(np.float64)
            for n in names
        }
        for level in cell.levels
    ]


def _inputs(seed=0, batch=3, time=6, features=4):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (batch, time, features)).astype("float32")


def _layer(x, seed=1, **kwargs):
    layer = klv.DepthGatedLSTM(UNITS, **kwargs)
    layer.build(x.shape)
    randomize_weights(layer, seed=seed, scale=0.6)
    return layer


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("use_bias", [True, False])
def test_layer_matches_the_reference(depth, use_bias):
    x = _inputs()
    layer = _layer(
        x, depth=depth, use_bias=use_bias, return_sequences=True, return_state=True
    )
    outputs, *states = layer(x)
    values, final = reference_sequence(x, level_weights(layer.cell))
    top = f"level{depth - 1}_hidden_state"
    np.testing.assert_allclose(to_numpy(outputs), values[top], atol=1e-5)
    assert len(states) == 2 * depth
    for got, expected in zip(states, final, strict=True):
        np.testing.assert_allclose(to_numpy(got), expected, atol=1e-5)


def test_step_values_follow_the_protocol():
    """`gate_values` gives every value of the reference step, `call` is
    `output_of` and `next_states` of it, and the names are as documented."""
    cell = klv.DepthGatedLSTMCell(UNITS, depth=3)
    cell.build((None, 4))
    randomize_weights(cell, seed=2, scale=0.6)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4)).astype("float32")
    states = [rng.normal(size=(2, UNITS)).astype("float32") for _ in range(6)]
    values = cell.gate_values(
        keras.ops.convert_to_tensor(x), [keras.ops.convert_to_tensor(s) for s in states]
    )
    # Top level first: states[0:2] are level 2's h and c.
    expected, new_states = reference_step(
        x.astype(np.float64),
        [(states[4 - 2 * k], states[5 - 2 * k]) for k in range(3)],
        level_weights(cell),
    )
    names = [
        f"level{k}_{n}" for k in range(3) for n in LEVEL_NAMES if k or n != "depth_gate"
    ]
    assert cell.value_names == tuple(names)
    assert cell.gate_names == tuple(
        n for n in names if n.split("_", 1)[1] in
        ("input_gate", "forget_gate", "depth_gate", "output_gate")
    )
    assert cell.state_names == (
        "level2_hidden_state", "level2_cell_state", "level1_hidden_state",
        "level1_cell_state", "level0_hidden_state", "level0_cell_state",
    )
    for k, level in enumerate(expected):
        for n, array in level.items():
            got = getattr(values, f"level{k}_{n}")
            np.testing.assert_allclose(to_numpy(got), array, atol=1e-5, err_msg=n)
            assert cell.value_size(f"level{k}_{n}") == array.shape[-1]
    output, next_states = cell(
        keras.ops.convert_to_tensor(x), [keras.ops.convert_to_tensor(s) for s in states]
    )
    np.testing.assert_allclose(to_numpy(output), new_states[-1][0], atol=1e-5)
    flat = [a for hc in reversed(new_states) for a in hc]
    for got, want in zip(next_states, flat, strict=True):
        np.testing.assert_allclose(to_numpy(got), want, atol=1e-5)
    np.testing.assert_array_equal(
        to_numpy(cell.output_of(values)), to_numpy(output)
    )


def test_depth_one_is_keras_lstm():
    x = _inputs(4)
    ours = _layer(x, depth=1, return_sequences=True)
    theirs = keras.layers.LSTM(UNITS, return_sequences=True)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(theirs(x)), atol=1e-6)


def test_weights_names_shapes_and_initial_values():
    cell = klv.DepthGatedLSTMCell(UNITS, depth=3, recurrent_initializer="orthogonal")
    layer = keras.layers.RNN(cell, name="rnn")
    layer.build((None, None, 5))
    assert len(cell.levels) == 3
    for k, level in enumerate(cell.levels):
        assert tuple(level.kernel.shape) == ((5 if k == 0 else UNITS), 4 * UNITS)
        assert tuple(level.recurrent_kernel.shape) == (UNITS, 4 * UNITS)
        bias = to_numpy(level.bias)
        np.testing.assert_array_equal(bias[UNITS : 2 * UNITS], 1.0)  # forget block
        np.testing.assert_array_equal(np.delete(bias, np.s_[UNITS : 2 * UNITS]), 0.0)
        if k == 0:
            for name in ("depth_kernel", "depth_bias", "depth_cell_peephole",
                         "depth_lower_peephole"):
                assert getattr(level, name) is None
        else:
            assert tuple(level.depth_kernel.shape) == (UNITS, UNITS)
            for name in ("depth_bias", "depth_cell_peephole", "depth_lower_peephole"):
                assert tuple(getattr(level, name).shape) == (UNITS,)
            assert level.depth_kernel.path == f"rnn/{cell.name}/level_{k}/depth_kernel"
            # The two peephole vectors are separate draws.
            assert not np.array_equal(
                to_numpy(level.depth_cell_peephole),
                to_numpy(level.depth_lower_peephole),
            )
    # Each level's recurrent kernel is its own draw.
    r = [to_numpy(level.recurrent_kernel) for level in cell.levels]
    assert not np.array_equal(r[0], r[1]) and not np.array_equal(r[1], r[2])
    without = klv.DepthGatedLSTMCell(UNITS, use_bias=False)
    without.build((None, 5))
    assert without.levels[1].bias is None and without.levels[1].depth_bias is None
    assert len(without.weights) == 2 + 5


def test_finite_differences():
    """Autodiff of the layer (float64) against central differences of the
    NumPy reference, for the input and entries of every weight."""
    if keras.backend.backend() == "jax":
        pytest.skip("Keras's JAX backend computes float64 activations in float32")
    if keras.backend.backend() == "torch":
        # keras.src.backend.common.dtypes.result_type("float64", "float64") is
        # "float32" there, so ops.matmul of float64 tensors returns float32.
        pytest.skip("Keras's PyTorch backend computes float64 matmul in float32")
    from autodiff import gradients

    x = _inputs(8, batch=2, time=4, features=3).astype("float64")
    layer = klv.DepthGatedLSTM(2, depth=3, return_sequences=True, dtype="float64")
    layer.build(x.shape)
    randomize_weights(layer, seed=9, scale=0.5)
    projection = np.random.default_rng(10).normal(size=(2, 4, 2))
    analytic = gradients(layer, x, projection)
    levels = level_weights(layer.cell)

    def loss():
        values, _ = reference_sequence(x, levels)
        return float(np.sum(values["level2_hidden_state"] * projection))

    def numeric(array, index, eps=1e-6):
        saved = array[index]
        array[index] = saved + eps
        plus = loss()
        array[index] = saved - eps
        minus = loss()
        array[index] = saved
        return (plus - minus) / (2 * eps)

    targets = [x]
    for variable in layer.trainable_variables:
        *_, level, name = variable.path.split("/")
        targets.append(levels[int(level.split("_")[1])][name])
    assert len(targets) == 1 + 3 + 2 * 7
    rng = np.random.default_rng(11)
    for k, (target, grad) in enumerate(zip(targets, analytic, strict=True)):
        for flat in rng.choice(target.size, size=min(3, target.size), replace=False):
            index = np.unravel_index(flat, target.shape)
            np.testing.assert_allclose(
                grad[index], numeric(target, index), atol=1e-7, rtol=1e-6,
                err_msg=f"array {k}",
            )


@pytest.mark.parametrize("go_backwards", [False, True])
def test_mask_and_go_backwards(go_backwards):
    x = _inputs(5, batch=3, time=6)
    mask = np.ones((3, 6), bool)
    mask[0, 4:] = False
    mask[1, :2] = False
    layer = _layer(
        x, seed=6, depth=2, return_sequences=True, return_state=True,
        go_backwards=go_backwards,
    )
    outputs, *states = layer(x, mask=mask)
    values, final = reference_sequence(
        x, level_weights(layer.cell), mask=mask, go_backwards=go_backwards
    )
    np.testing.assert_allclose(
        to_numpy(outputs), values["level1_hidden_state"], atol=1e-5
    )
    for got, expected in zip(states, final, strict=True):
        np.testing.assert_allclose(to_numpy(got), expected, atol=1e-5)


def test_bidirectional_and_initial_state():
    x = _inputs(7, batch=2, time=5)
    inner = klv.DepthGatedLSTM(UNITS, depth=2, return_sequences=True)
    wrapper = keras.layers.Bidirectional(inner, merge_mode="concat")
    wrapper.build(x.shape)
    randomize_weights(wrapper, seed=8, scale=0.6)
    forward, _ = reference_sequence(x, level_weights(wrapper.forward_layer.cell))
    backward, _ = reference_sequence(
        x, level_weights(wrapper.backward_layer.cell), go_backwards=True
    )
    expected = np.concatenate(
        [forward["level1_hidden_state"], backward["level1_hidden_state"][:, ::-1]],
        axis=-1,
    )
    np.testing.assert_allclose(to_numpy(wrapper(x)), expected, atol=1e-5)

    layer = _layer(x, seed=12, return_sequences=True)
    initial = [np.random.default_rng(k).normal(size=(2, UNITS)) for k in range(4)]
    got = layer(x, initial_state=[s.astype("float32") for s in initial])
    values, _ = reference_sequence(x, level_weights(layer.cell), initial=initial)
    np.testing.assert_allclose(to_numpy(got), values["level1_hidden_state"], atol=1e-5)


def test_stateful_chunks_equal_the_whole_sequence():
    x = _inputs(13, batch=2, time=7)
    whole = _layer(x, seed=14, return_sequences=True)
    chunked = klv.DepthGatedLSTM(UNITS, return_sequences=True, stateful=True)
    chunked.build(x.shape)
    chunked.set_weights(whole.get_weights())
    parts = [to_numpy(chunked(x[:, :3])), to_numpy(chunked(x[:, 3:]))]
    np.testing.assert_allclose(
        np.concatenate(parts, axis=1), to_numpy(whole(x)), atol=1e-6
    )
    chunked.reset_state()
    np.testing.assert_allclose(
        to_numpy(chunked(x[:, :3])), to_numpy(whole(x[:, :3])), atol=1e-6
    )


def test_keras_file_round_trip_without_custom_objects(tmp_path):
    x = _inputs(15, batch=2, time=5)
    inputs = keras.Input((None, 4))
    y = keras.layers.Masking()(inputs)
    y = keras.layers.Bidirectional(
        klv.DepthGatedLSTM(UNITS, depth=2, return_sequences=True)
    )(y)
    y = keras.layers.RNN(klv.DepthGatedLSTMCell(2, depth=3))(y)
    model = keras.Model(inputs, y)
    randomize_weights(model, seed=16)
    expected = to_numpy(model(x))
    model.save(tmp_path / "dg.keras")
    reloaded = keras.saving.load_model(tmp_path / "dg.keras")
    np.testing.assert_array_equal(to_numpy(reloaded(x)), expected)
    cell = reloaded.layers[-1].cell
    assert type(cell) is klv.DepthGatedLSTMCell and cell.depth == 3
    np.testing.assert_array_equal(
        to_numpy(cell.levels[2].depth_lower_peephole),
        to_numpy(model.layers[-1].cell.levels[2].depth_lower_peephole),
    )


def test_configs_round_trip():
    kwargs = dict(
        depth=3, activation="relu", recurrent_activation="hard_sigmoid",
        use_bias=False, unit_forget_bias=False, kernel_regularizer="l2",
        peephole_initializer="ones", peephole_constraint="non_neg",
        dropout=0.25, recurrent_dropout=0.125, seed=7,
    )
    cell = klv.DepthGatedLSTMCell(5, **kwargs)
    assert klv.DepthGatedLSTMCell.from_config(cell.get_config()).get_config() == (
        cell.get_config()
    )
    layer = klv.DepthGatedLSTM(5, return_sequences=True, **kwargs)
    config = layer.get_config()
    assert "cell" not in config and "use_fast_path" not in config
    assert config["depth"] == 3 and config["seed"] == 7
    clone = klv.DepthGatedLSTM.from_config(config)
    assert clone.get_config() == config
    assert clone.depth == 3 and clone.recurrent_dropout == 0.125
    assert clone.peephole_constraint is clone.cell.peephole_constraint
    with pytest.raises(AttributeError):
        clone.depth = 2  # the layer's cell arguments are read-only
    assert "generic" in clone.fast_path_fallback_reason()


def test_dropout_applies_in_training_only():
    x = _inputs(17, batch=4, time=5)
    layer = klv.DepthGatedLSTM(
        UNITS, depth=2, dropout=0.5, recurrent_dropout=0.5, seed=3,
        return_sequences=True,
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=18, scale=0.6)
    values, _ = reference_sequence(x, level_weights(layer.cell))
    inference = to_numpy(layer(x, training=False))
    np.testing.assert_allclose(inference, values["level1_hidden_state"], atol=1e-5)
    trained = to_numpy(layer(x, training=True))
    assert np.all(np.isfinite(trained))
    assert not np.allclose(trained, inference, atol=1e-3)
    # One independent recurrent mask per level, drawn together.
    mask = to_numpy(layer.cell.get_recurrent_dropout_mask(np.ones((4, UNITS))))
    layer.cell.reset_recurrent_dropout_mask()
    assert mask.shape == (4, 2 * UNITS)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"depth": 0}, ValueError, r"`depth`.*depth=0"),
        ({"depth": -1}, ValueError, r"`depth`.*depth=-1"),
        ({"depth": 2.0}, TypeError, r"`depth`.*depth=2.0"),
        ({"depth": True}, TypeError, r"`depth`.*depth=True"),
        ({"units": 0}, ValueError, r"`units`.*units=0"),
        ({"dropout": 1.0}, ValueError, r"`dropout`.*dropout=1.0"),
        ({"use_bias": "yes"}, TypeError, r"`use_bias`.*use_bias='yes'"),
    ],
)
def test_bad_arguments(kwargs, error, pattern):
    kwargs = {"units": UNITS, **kwargs}
    for cls in (klv.DepthGatedLSTMCell, klv.DepthGatedLSTM):
        with pytest.raises(error, match=pattern):
            cls(**kwargs)


def test_layer_refuses_what_it_does_not_have():
    with pytest.raises(TypeError, match=r"use_fast_path.*no fast path"):
        klv.DepthGatedLSTM(UNITS, use_fast_path=True)
    with pytest.raises(TypeError, match=r"peephole_gates.*DepthGatedLSTMCell"):
        klv.DepthGatedLSTM(UNITS, peephole_gates=("forget",))
    layer = klv.DepthGatedLSTM(UNITS)
    layer(_inputs(19))
    with pytest.raises(ValueError, match=r"built for inputs with 4 features"):
        layer(_inputs(19, features=5))
    with pytest.raises(ValueError, match=r"expects 4 initial state"):
        layer(_inputs(19), initial_state=[np.zeros((3, UNITS), "float32")] * 2)


def test_gate_activations_return_every_levels_values():
    x = _inputs(22, batch=3, time=6)
    mask = np.ones((3, 6), bool)
    mask[0, 4:] = False
    x[~mask] = 0.0
    inputs = keras.Input((None, 4))
    masked = keras.layers.Masking(0.0)(inputs)
    layer = klv.DepthGatedLSTM(UNITS, depth=3, return_sequences=True, name="dg")
    model = keras.Model(inputs, layer(masked))
    randomize_weights(model, seed=23, scale=0.6)
    gates = klv.gate_activations(model, x)["dg"]
    values, _ = reference_sequence(x, level_weights(layer.cell), mask=mask)
    assert tuple(gates) == layer.cell.value_names
    assert set(gates) == set(values)
    for name, expected in values.items():
        np.testing.assert_allclose(gates[name], expected, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(
        gates["level2_hidden_state"], to_numpy(model(x)), atol=1e-6
    )


def test_export_serves_outputs_and_gates_without_the_package(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModels need TensorFlow")
    from serving import serve_without_package

    x = _inputs(20, batch=2, time=6)
    inputs = keras.Input((None, 4), name="x")
    layer = klv.DepthGatedLSTM(UNITS, depth=3, return_sequences=True, name="dg")
    model = keras.Model(inputs, layer(inputs))
    randomize_weights(model, seed=21)
    path = klv.export_saved_model(model, str(tmp_path / "saved"))
    served = serve_without_package(
        path, {"x": x}, tmp_path, signatures=("serving_default", "gates")
    )
    values, _ = reference_sequence(x, level_weights(layer.cell))
    np.testing.assert_allclose(
        served["serving_default/output_0"], values["level2_hidden_state"], atol=1e-5
    )
    assert {k for k in served if k.startswith("gates/")} == {
        f"gates/dg__{name}" for name in layer.cell.value_names
    }
    for name, expected in values.items():
        np.testing.assert_allclose(
            served[f"gates/dg__{name}"], expected, atol=1e-5, err_msg=name
        )


def test_callback_writes_each_levels_gates(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the callback's TensorBoard logs need TensorFlow")
    from tensorboard.backend.event_processing import event_accumulator

    x = _inputs(24, batch=2, time=5)
    layer = klv.DepthGatedLSTM(UNITS, depth=2, name="dg")
    model = keras.Sequential([keras.Input((5, 4)), layer])
    model.compile("sgd", "mse")
    callback = klv.GateHistograms(x, str(tmp_path / "logs"))
    model.fit(x, np.zeros((2, UNITS)), epochs=1, verbose=0, callbacks=[callback])
    events = event_accumulator.EventAccumulator(
        str(tmp_path / "logs" / "gates"), size_guidance={"tensors": 0}
    )
    events.Reload()
    tags = set(events.Tags()["tensors"])
    for position, name in enumerate(layer.cell.value_names, start=1):
        assert f"gates.dg/{position}_{name}" in tags
    assert "gates.dg/0_heatmap" in tags
    assert "gates.dg/10_level1_depth_gate/mean" in tags
