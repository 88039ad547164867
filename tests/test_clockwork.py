"""The Clockwork RNN against a float64 NumPy reference written from
REFERENCE.md ("Other variations"): outputs, the module schedule, the
block-triangular recurrent kernel (masked in the step, kept through
training), the clock state (stateful batches, masks, go_backwards),
gradients by finite differences, `.keras` files and clear errors."""

import math

import keras
import numpy as np
import pytest
from numpy_reference import to_numpy

import keras_lstm_variants as klv
from conftest import randomize_weights


def allowed_blocks(periods, units):
    """1 where `recurrent_kernel[r, c]` may be non-zero: the row's module is
    at least as slow as the column's (REFERENCE.md)."""
    size = units // len(periods)
    module = np.arange(units) // size
    p = np.asarray(periods)[module]
    return (p[:, None] >= p[None, :]).astype(np.float64)


def reference_sequence(x, w, periods, mask=None, go_backwards=False, h0=None, t0=None):
    """The whole sequence in float64. A masked step keeps `h` and the step
    count and repeats the previous output. Returns (outputs, active values,
    both `(batch, time, units)` in processing order, final `h`, final step
    count per sequence)."""
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    kernel = np.asarray(w["kernel"], np.float64)
    recurrent = np.asarray(w["recurrent_kernel"], np.float64)
    units = recurrent.shape[0]
    recurrent = recurrent * allowed_blocks(periods, units)
    bias = 0.0 if w.get("bias") is None else np.asarray(w["bias"], np.float64)
    unit_period = np.repeat(periods, units // len(periods))
    h = np.zeros((batch, units)) if h0 is None else np.asarray(h0, np.float64)
    t = np.zeros(batch, int) if t0 is None else np.asarray(t0, int).copy()
    order = range(time - 1, -1, -1) if go_backwards else range(time)
    outputs, actives = [], []
    previous = np.zeros((batch, units))
    previous_active = np.zeros((batch, units))
    for s in order:
        active = (t[:, None] % unit_period[None, :]) == 0
        candidate = np.tanh(x[:, s] @ kernel + h @ recurrent + bias)
        h_new = np.where(active, candidate, h)
        active = active.astype(np.float64)
        if mask is None:
            keep = np.ones((batch, 1), bool)
        else:
            keep = np.asarray(mask[:, s], bool)[:, None]
        h = np.where(keep, h_new, h)
        previous = np.where(keep, h_new, previous)
        previous_active = np.where(keep, active, previous_active)
        t = t + keep[:, 0]
        outputs.append(previous)
        actives.append(previous_active)
    return np.stack(outputs, 1), np.stack(actives, 1), h, t


def weights(cell):
    return {
        "kernel": to_numpy(cell.kernel),
        "recurrent_kernel": to_numpy(cell.recurrent_kernel),
        "bias": None if cell.bias is None else to_numpy(cell.bias),
    }


def _inputs(seed=0, batch=3, time=11, features=4):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (batch, time, features)).astype("float32")


def _layer(x, units=8, seed=1, **kwargs):
    layer = klv.ClockworkRNN(units, **kwargs)
    layer.build(x.shape)
    randomize_weights(layer, seed=seed, scale=0.6)
    return layer


@pytest.mark.parametrize(
    "units, periods, use_bias",
    [
        (8, (1, 2, 4, 8), True),
        (6, (1, 3, 5), True),
        (4, (2, 3), False),
        (3, (1,), True),
    ],
)
def test_layer_matches_the_reference(units, periods, use_bias):
    x = _inputs()
    layer = _layer(
        x, units, periods=periods, use_bias=use_bias, return_sequences=True,
        return_state=True,
    )
    outputs, h, clock = layer(x)
    expected, _, h_ref, t = reference_sequence(x, weights(layer.cell), periods)
    np.testing.assert_allclose(to_numpy(outputs), expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), h_ref, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(clock)[:, 0], t % math.lcm(*periods))


def test_module_schedule_by_hand():
    """Periods (1, 2, 4), two units per module: at step t module m is active
    when t mod periods[m] == 0; inactive modules keep their value."""
    cell = klv.ClockworkRNNCell(6, periods=(1, 2, 4))
    cell.build((None, 2))
    randomize_weights(cell, seed=2)
    expected_active = [
        [1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0],
        [1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1],
    ]
    rng = np.random.default_rng(3)
    h = np.zeros((1, 6), "float32")
    clock = np.zeros((1, 1), "float32")
    for t, modules in enumerate(expected_active):
        x = rng.normal(size=(1, 2)).astype("float32")
        states = [keras.ops.convert_to_tensor(a) for a in (h, clock)]
        x = keras.ops.convert_to_tensor(x)
        values = cell.gate_values(x, states)
        active = np.repeat(modules, 2).astype("float32")[None]
        np.testing.assert_array_equal(to_numpy(values.active_modules), active)
        new_h = to_numpy(values.hidden_state)
        np.testing.assert_array_equal(new_h[active == 0], h[active == 0])
        assert np.all(new_h[active == 1] != h[active == 1])
        output, (h, clock) = cell(x, states)
        np.testing.assert_array_equal(to_numpy(output), new_h)
        h, clock = to_numpy(h), to_numpy(clock)
        assert clock[0, 0] == (t + 1) % 4


def test_step_values_follow_the_protocol():
    cell = klv.ClockworkRNNCell(8)
    cell.build((None, 3))
    randomize_weights(cell, seed=4)
    assert cell.periods == (1, 2, 4, 8)
    assert cell.value_names == ("active_modules", "hidden_state")
    assert cell.gate_names == ("active_modules",)
    assert cell.state_names == ("hidden_state", "clock")
    assert cell.state_size == [8, 1]
    assert [cell.value_size(n) for n in cell.value_names] == [8, 8]
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 1, 3)).astype("float32")
    h0 = rng.normal(size=(3, 8)).astype("float32")
    t0 = np.array([0, 5, 6])
    tensor = keras.ops.convert_to_tensor
    values = cell.gate_values(
        tensor(x[:, 0]), [tensor(h0), tensor(t0[:, None].astype("float32"))]
    )
    out, active, _, _ = reference_sequence(x, weights(cell), cell.periods, h0=h0, t0=t0)
    np.testing.assert_allclose(to_numpy(values.hidden_state), out[:, 0], atol=1e-5)
    np.testing.assert_array_equal(to_numpy(values.active_modules), active[:, 0])
    np.testing.assert_array_equal(to_numpy(values.clock)[:, 0], (t0 + 1) % 8)


def test_recurrent_kernel_is_block_triangular_from_the_start():
    periods = (1, 2, 4, 8)
    cell = klv.ClockworkRNNCell(8, periods=periods)
    cell.build((None, 3))
    allowed = allowed_blocks(periods, 8)
    recurrent = to_numpy(cell.recurrent_kernel)
    np.testing.assert_array_equal(recurrent[allowed == 0], 0.0)
    assert np.count_nonzero(recurrent[allowed == 1]) > 0.9 * allowed.sum()
    # Slower modules feed faster ones: rows of module 3 reach every column.
    assert allowed[6:, :].all() and not allowed[:2, 2:].any()


def test_forbidden_entries_never_influence_outputs_and_get_zero_gradient():
    from autodiff import gradients

    x = _inputs(6, batch=2, time=9)
    layer = _layer(x, seed=7, return_sequences=True)
    allowed = allowed_blocks(layer.cell.periods, 8)
    before = to_numpy(layer(x))
    recurrent = to_numpy(layer.cell.recurrent_kernel)
    noise = np.random.default_rng(8).normal(size=recurrent.shape)
    layer.cell.recurrent_kernel.assign(
        np.where(allowed == 1, recurrent, noise).astype("float32")
    )
    np.testing.assert_array_equal(to_numpy(layer(x)), before)
    projection = np.random.default_rng(9).normal(size=before.shape)
    grads = gradients(layer, x, projection.astype("float32"))
    names = [v.path.split("/")[-1] for v in layer.trainable_variables]
    grad = grads[1 + names.index("recurrent_kernel")]
    np.testing.assert_array_equal(grad[allowed == 0], 0.0)
    assert np.count_nonzero(grad[allowed == 1]) > 0


def test_training_keeps_the_forbidden_blocks_exactly_zero():
    x = _inputs(10, batch=8, time=9)
    y = np.random.default_rng(11).normal(size=(8, 8)).astype("float32")
    periods = (1, 2, 4, 8)
    model = keras.Sequential(
        [
            keras.Input((9, 4)),
            klv.ClockworkRNN(
                8, periods=periods, recurrent_regularizer="l2",
                recurrent_constraint=keras.constraints.MaxNorm(2.0),
            ),
        ]
    )
    cell = model.layers[0].cell
    allowed = allowed_blocks(periods, 8)
    # Even entries set by hand (weights from elsewhere) are zeroed by the
    # first update; the gradient alone would leave them where they are.
    start = to_numpy(cell.recurrent_kernel)
    noise = np.random.default_rng(12).normal(size=start.shape)
    cell.recurrent_kernel.assign(np.where(allowed == 1, start, noise).astype("float32"))
    model.compile(keras.optimizers.AdamW(0.05, weight_decay=0.1), "mse")
    model.fit(x, y, epochs=5, batch_size=4, verbose=0)
    trained = to_numpy(cell.recurrent_kernel)
    np.testing.assert_array_equal(trained[allowed == 0], 0.0)
    assert np.abs(trained - start)[allowed == 1].max() > 1e-2  # it did train


def test_finite_differences():
    if keras.backend.backend() == "jax":
        pytest.skip("Keras's JAX backend computes float64 activations in float32")
    if keras.backend.backend() == "torch":
        # keras.src.backend.common.dtypes.result_type("float64", "float64") is
        # "float32" there, so ops.matmul of float64 tensors returns float32.
        pytest.skip("Keras's PyTorch backend computes float64 matmul in float32")
    from autodiff import gradients

    x = _inputs(12, batch=2, time=6, features=3).astype("float64")
    periods = (1, 2, 3)
    layer = klv.ClockworkRNN(
        6, periods=periods, return_sequences=True, dtype="float64"
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=13, scale=0.5)
    projection = np.random.default_rng(14).normal(size=(2, 6, 6))
    analytic = gradients(layer, x, projection)
    w = {k: v.astype(np.float64) for k, v in weights(layer.cell).items()}

    def loss():
        outputs, *_ = reference_sequence(x, w, periods)
        return float(np.sum(outputs * projection))

    def numeric(array, index, eps=1e-6):
        saved = array[index]
        array[index] = saved + eps
        plus = loss()
        array[index] = saved - eps
        minus = loss()
        array[index] = saved
        return (plus - minus) / (2 * eps)

    targets = [x] + [w[v.path.split("/")[-1]] for v in layer.trainable_variables]
    rng = np.random.default_rng(15)
    for k, (target, grad) in enumerate(zip(targets, analytic, strict=True)):
        for flat in rng.choice(target.size, size=min(6, target.size), replace=False):
            index = np.unravel_index(flat, target.shape)
            np.testing.assert_allclose(
                grad[index], numeric(target, index), atol=1e-7, rtol=1e-6,
                err_msg=f"array {k}",
            )


def test_stateful_batches_continue_the_clock():
    x = _inputs(16, batch=2, time=9)
    whole = _layer(x, seed=17, return_sequences=True)
    chunked = klv.ClockworkRNN(8, return_sequences=True, stateful=True)
    chunked.build(x.shape)
    chunked.set_weights(whole.get_weights())
    parts = [to_numpy(chunked(x[:, :3])), to_numpy(chunked(x[:, 3:]))]
    np.testing.assert_allclose(
        np.concatenate(parts, axis=1), to_numpy(whole(x)), atol=1e-6
    )
    h_state, clock_state = chunked.states
    np.testing.assert_array_equal(to_numpy(clock_state), np.full((2, 1), 9 % 8))
    chunked.reset_state()
    np.testing.assert_array_equal(to_numpy(chunked.states[1]), 0.0)
    np.testing.assert_allclose(
        to_numpy(chunked(x[:, :3])), to_numpy(whole(x[:, :3])), atol=1e-6
    )


def test_a_masked_step_does_not_advance_the_clock():
    """Left padding: the padded sequence gives the unpadded one's output."""
    x = _inputs(18, batch=1, time=7)
    padded = np.concatenate([np.zeros((1, 3, 4), "float32"), x], axis=1)
    inputs = keras.Input((None, 4))
    layer = klv.ClockworkRNN(8, return_state=True)
    model = keras.Model(inputs, layer(keras.layers.Masking(0.0)(inputs)))
    randomize_weights(model, seed=19)
    out_plain, _, clock_plain = model(x)
    out_padded, _, clock_padded = model(padded)
    np.testing.assert_allclose(to_numpy(out_padded), to_numpy(out_plain), atol=1e-6)
    np.testing.assert_array_equal(to_numpy(clock_padded), [[7 % 8]])
    np.testing.assert_array_equal(to_numpy(clock_plain), [[7 % 8]])


@pytest.mark.parametrize("go_backwards", [False, True])
def test_mask_and_go_backwards(go_backwards):
    x = _inputs(20, batch=3, time=10)
    mask = np.ones((3, 10), bool)
    mask[0, 6:] = False
    mask[1, :3] = False
    mask[2, 4:6] = False
    layer = _layer(
        x, seed=21, return_sequences=True, return_state=True,
        go_backwards=go_backwards,
    )
    outputs, h, clock = layer(x, mask=mask)
    expected, _, h_ref, t = reference_sequence(
        x, weights(layer.cell), (1, 2, 4, 8), mask=mask, go_backwards=go_backwards
    )
    np.testing.assert_allclose(to_numpy(outputs), expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), h_ref, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(clock)[:, 0], t % 8)
    np.testing.assert_array_equal(t, mask.sum(axis=1))


def test_bidirectional():
    x = _inputs(22, batch=2, time=7)
    wrapper = keras.layers.Bidirectional(
        klv.ClockworkRNN(4, periods=(1, 3), return_sequences=True)
    )
    wrapper.build(x.shape)
    randomize_weights(wrapper, seed=23, scale=0.6)
    forward, *_ = reference_sequence(x, weights(wrapper.forward_layer.cell), (1, 3))
    backward, *_ = reference_sequence(
        x, weights(wrapper.backward_layer.cell), (1, 3), go_backwards=True
    )
    expected = np.concatenate([forward, backward[:, ::-1]], axis=-1)
    np.testing.assert_allclose(to_numpy(wrapper(x)), expected, atol=1e-5)


def test_keras_file_round_trip_without_custom_objects(tmp_path):
    x = _inputs(24, batch=2, time=6)
    inputs = keras.Input((None, 4))
    y = keras.layers.Masking()(inputs)
    y = keras.layers.Bidirectional(
        klv.ClockworkRNN(6, periods=(1, 2, 5), return_sequences=True)
    )(y)
    y = keras.layers.RNN(klv.ClockworkRNNCell(4, periods=[1, 4]))(y)
    model = keras.Model(inputs, y)
    randomize_weights(model, seed=25)
    expected = to_numpy(model(x))
    model.save(tmp_path / "cw.keras")
    reloaded = keras.saving.load_model(tmp_path / "cw.keras")
    np.testing.assert_array_equal(to_numpy(reloaded(x)), expected)
    assert reloaded.layers[-1].cell.periods == (1, 4)
    assert reloaded.layers[2].forward_layer.periods == (1, 2, 5)


def test_configs_round_trip():
    kwargs = dict(
        periods=(1, 2, 6), activation="relu", use_bias=False,
        kernel_regularizer="l2", recurrent_constraint="non_neg",
        dropout=0.25, recurrent_dropout=0.125, seed=7,
    )
    cell = klv.ClockworkRNNCell(6, **kwargs)
    clone = klv.ClockworkRNNCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config() and clone.periods == (1, 2, 6)
    layer = klv.ClockworkRNN(6, return_sequences=True, **kwargs)
    config = layer.get_config()
    assert "cell" not in config and "use_fast_path" not in config
    assert config["periods"] == [1, 2, 6]
    clone = klv.ClockworkRNN.from_config(config)
    assert clone.get_config() == config and clone.periods == (1, 2, 6)
    assert "generic" in clone.fast_path_fallback_reason()


def test_dropout_applies_in_training_only():
    x = _inputs(26, batch=4, time=6)
    layer = klv.ClockworkRNN(
        8, dropout=0.5, recurrent_dropout=0.5, seed=3, return_sequences=True
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=27, scale=0.6)
    expected, *_ = reference_sequence(x, weights(layer.cell), (1, 2, 4, 8))
    inference = to_numpy(layer(x, training=False))
    np.testing.assert_allclose(inference, expected, atol=1e-5)
    trained = to_numpy(layer(x, training=True))
    assert np.all(np.isfinite(trained))
    assert not np.allclose(trained, inference, atol=1e-3)


def test_half_precision_clock_is_exact():
    x = _inputs(28, batch=2, time=12)
    layer = klv.ClockworkRNN(
        4, periods=(1, 5), return_state=True, dtype="mixed_float16"
    )
    _, _, clock = layer(x)
    np.testing.assert_array_equal(to_numpy(clock), np.full((2, 1), 12 % 5))
    too_long = klv.ClockworkRNN(4, periods=(1, 4096), dtype="mixed_float16")
    with pytest.raises(ValueError, match=r"lcm\(periods\) = 4096.*float16"):
        too_long(x)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"periods": 4}, TypeError, r"`periods`.*periods=4"),
        ({"periods": "1248"}, TypeError, r"`periods`.*periods='1248'"),
        ({"periods": ()}, ValueError, r"`periods`.*at least one"),
        ({"periods": (1, 2.0)}, TypeError, r"`periods`.*2.0 of type float"),
        ({"periods": (1, True)}, TypeError, r"`periods`.*True of type bool"),
        ({"periods": (0, 2)}, ValueError, r"positive integers.*periods=\(0, 2\)"),
        ({"periods": (-1, 2)}, ValueError, r"positive integers.*-1"),
        ({"periods": (1, 4, 2, 8)}, ValueError, r"strictly increasing"),
        ({"periods": (1, 1)}, ValueError, r"strictly increasing"),
        ({"units": 6}, ValueError, r"`units` \(6\).*4 does not divide 6"),
        ({"units": 0}, ValueError, r"`units`.*units=0"),
        ({"dropout": -0.1}, ValueError, r"`dropout`"),
        ({"use_bias": 1}, TypeError, r"`use_bias`"),
    ],
)
def test_bad_arguments(kwargs, error, pattern):
    kwargs = {"units": 8, **kwargs}
    for cls in (klv.ClockworkRNNCell, klv.ClockworkRNN):
        with pytest.raises(error, match=pattern):
            cls(**kwargs)


def test_layer_refuses_what_it_does_not_have():
    with pytest.raises(TypeError, match=r"use_fast_path.*no fast path"):
        klv.ClockworkRNN(8, use_fast_path="auto")
    with pytest.raises(TypeError, match=r"peephole_gates.*ClockworkRNNCell"):
        klv.ClockworkRNN(8, peephole_gates=("forget",))
    layer = klv.ClockworkRNN(8)
    layer(_inputs(29))
    with pytest.raises(ValueError, match=r"built for inputs with 4 features"):
        layer(_inputs(29, features=3))
    with pytest.raises(ValueError, match=r"initial state 1 of shape \(batch, 1\)"):
        layer(_inputs(29), initial_state=[np.zeros((3, 8), "float32")] * 2)


def test_gate_activations_return_active_modules_and_hidden_state():
    x = _inputs(32, batch=3, time=9)
    mask = np.ones((3, 9), bool)
    mask[1, :3] = False
    x[~mask] = 0.0
    inputs = keras.Input((None, 4))
    masked = keras.layers.Masking(0.0)(inputs)
    layer = klv.ClockworkRNN(6, periods=(1, 2, 3), return_sequences=True)
    wrapper = keras.layers.Bidirectional(layer, name="bi")
    model = keras.Model(inputs, wrapper(masked))
    randomize_weights(model, seed=33)
    gates = klv.gate_activations(model, x)
    for half, backwards in (("forward", False), ("backward", True)):
        inner = getattr(wrapper, f"{half}_layer")
        cell, values = inner.cell, gates[f"bi/{inner.name}"]
        assert tuple(values) == ("active_modules", "hidden_state")
        out, active, _, _ = reference_sequence(
            x, weights(cell), (1, 2, 3), mask=mask, go_backwards=backwards
        )
        if backwards:  # inspection gives the backward layer in input order
            out, active = out[:, ::-1], active[:, ::-1]
        # Bidirectional sets it with return_sequences: masked steps are zeros.
        assert inner.zero_output_for_mask
        out, active = out * mask[..., None], active * mask[..., None]
        np.testing.assert_allclose(values["hidden_state"], out, atol=1e-5)
        np.testing.assert_array_equal(values["active_modules"], active)


def test_export_serves_outputs_and_gates_without_the_package(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModels need TensorFlow")
    from serving import serve_without_package

    x = _inputs(30, batch=2, time=11)
    inputs = keras.Input((None, 4), name="x")
    layer = klv.ClockworkRNN(8, return_sequences=True, name="cw")
    model = keras.Model(inputs, layer(inputs))
    randomize_weights(model, seed=31)
    path = klv.export_saved_model(model, str(tmp_path / "saved"))
    served = serve_without_package(
        path, {"x": x}, tmp_path, signatures=("serving_default", "gates")
    )
    out, active, _, _ = reference_sequence(x, weights(layer.cell), (1, 2, 4, 8))
    np.testing.assert_allclose(served["serving_default/output_0"], out, atol=1e-5)
    np.testing.assert_allclose(served["gates/cw__hidden_state"], out, atol=1e-5)
    np.testing.assert_array_equal(served["gates/cw__active_modules"], active)


def test_stateful_export_takes_and_returns_the_clock(tmp_path):
    """A stateful layer is exported with its states as inputs and outputs:
    feeding the returned clock back continues the schedule."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModels need TensorFlow")
    import tensorflow as tf

    x = _inputs(34, batch=2, time=10)
    inputs = keras.Input((None, 4), batch_size=2, name="x")
    layer = klv.ClockworkRNN(8, return_sequences=True, stateful=True, name="cw")
    model = keras.Model(inputs, layer(inputs))
    randomize_weights(model, seed=35)
    path = klv.export_saved_model(model, str(tmp_path / "saved"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    state = {
        "cw__hidden_state": tf.zeros((2, 8)),
        "cw__clock": tf.zeros((2, 1)),
    }
    first = serve(x=tf.constant(x[:, :3]), **state)
    np.testing.assert_array_equal(first["cw__clock"].numpy(), np.full((2, 1), 3.0))
    state = {k: first[k] for k in state}
    second = serve(x=tf.constant(x[:, 3:]), **state)
    expected, *_ = reference_sequence(x, weights(layer.cell), (1, 2, 4, 8))
    got = np.concatenate(
        [first["output_0"].numpy(), second["output_0"].numpy()], axis=1
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(second["cw__clock"].numpy(), np.full((2, 1), 2.0))


def test_callback_writes_the_clockwork_values(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the callback's TensorBoard logs need TensorFlow")
    from tensorboard.backend.event_processing import event_accumulator

    x = _inputs(36, batch=2, time=9)
    model = keras.Sequential([keras.Input((9, 4)), klv.ClockworkRNN(8, name="cw")])
    model.compile("sgd", "mse")
    callback = klv.GateHistograms(x, str(tmp_path / "logs"))
    model.fit(x, np.zeros((2, 8)), epochs=1, verbose=0, callbacks=[callback])
    events = event_accumulator.EventAccumulator(
        str(tmp_path / "logs" / "gates"), size_guidance={"tensors": 0}
    )
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"gates.cw/1_active_modules", "gates.cw/2_hidden_state"} <= tags
    assert "gates.cw/0_heatmap" in tags
