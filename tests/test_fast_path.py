"""The layers' fast path: same numbers as the generic loop, taken when expected.

Each test runs one layer twice on the same weights and inputs, once with
`use_fast_path` on and once off, and compares outputs, final states and the
gradients with respect to every weight and to the input; and the fast path's
outputs against the float64 NumPy reference.
"""

import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy_reference import assert_allclose
from numpy_reference import cell_weights
from numpy_reference import lstm_sequence
from numpy_reference import variant_sequence
from numpy_reference import variant_weights

import keras_lstm_variants as klv
from conftest import ALL_CONFIGS
from conftest import LAYER_CLASSES
from conftest import cell_kwargs
from conftest import config_id
from conftest import randomize_weights
from keras_lstm_variants import _tf_loops
from keras_lstm_variants import _tf_sequence

BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5
TOL = {"rtol": 1e-5, "atol": 1e-5}


def make_layer(variant, gates, weight_seed=0, **kwargs):
    kwargs.setdefault("return_sequences", True)
    kwargs.setdefault("return_state", True)
    layer = LAYER_CLASSES[variant](UNITS, **cell_kwargs(variant, gates), **kwargs)
    layer.build((None, TIME, FEATURES))
    randomize_weights(layer, weight_seed)
    return layer


def inputs(seed=1, batch=BATCH):
    return np.random.default_rng(seed).standard_normal(
        (batch, TIME, FEATURES)
    ).astype("float32")


def right_padded_mask(batch=BATCH):
    lengths = np.array([TIME, TIME - 2, 1, TIME - 1][:batch])
    return np.arange(TIME)[None, :] < lengths[:, None]


def run_with_gradients(layer, x, fast, training=False, **call_kwargs):
    """Outputs, states and d(loss)/d(input, every weight) on one path."""
    layer.use_fast_path = fast
    x = tf.constant(x)
    rng = np.random.default_rng(7)
    with tf.GradientTape() as tape:
        tape.watch(x)
        results = layer(x, training=training, **call_kwargs)
        results = results if isinstance(results, (list, tuple)) else [results]
        # Random cotangents, so every output and state feeds the gradient.
        loss = sum(
            tf.reduce_sum(r * rng.standard_normal(r.shape).astype("float32"))
            for r in results
        )
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    assert all(g is not None for g in grads)
    return [np.asarray(r) for r in results], [np.asarray(g) for g in grads]


def assert_paths_agree(layer, x, training=False, **call_kwargs):
    fast = run_with_gradients(layer, x, True, training, **call_kwargs)
    generic = run_with_gradients(layer, x, False, training, **call_kwargs)
    for a, b in zip(fast[0], generic[0], strict=True):
        assert_allclose(a, b, **TOL)
    for a, b in zip(fast[1], generic[1], strict=True):
        assert_allclose(a, b, **TOL)
    return fast


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_plain_sequences(config):
    layer = make_layer(*config)
    assert layer.fast_path_fallback_reason() is None
    assert_paths_agree(layer, inputs())


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_mask_backwards_initial_state_and_numpy_reference(config):
    layer = make_layer(*config, go_backwards=True)
    x = inputs(2)
    mask = right_padded_mask()
    rng = np.random.default_rng(3)
    h0, c0 = (rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in "hc")
    initial_state = [tf.constant(h0), tf.constant(c0)]
    (outputs, h, c), _ = assert_paths_agree(
        layer, x, mask=tf.constant(mask), initial_state=initial_state
    )
    ref_outputs, ref_h, ref_c = lstm_sequence(
        x,
        cell_weights(layer.cell),
        coupled=layer.cell.coupled,
        h0=h0,
        c0=c0,
        mask=mask,
        go_backwards=True,
    )
    assert_allclose(outputs, ref_outputs, **TOL)
    assert_allclose(h, ref_h, **TOL)
    assert_allclose(c, ref_c, **TOL)


@pytest.mark.parametrize(
    "config", [("standard", ()), ("coupled", ("forget", "output"))], ids=config_id
)
def test_zero_output_for_mask_and_last_output_only(config):
    layer = make_layer(*config, zero_output_for_mask=True)
    assert_paths_agree(layer, inputs(4), mask=tf.constant(right_padded_mask()))
    layer = make_layer(*config, return_sequences=False)
    assert_paths_agree(layer, inputs(5), mask=tf.constant(right_padded_mask()))


@pytest.mark.parametrize("config", [("peephole", ("input", "forget", "output"))])
def test_dropout_in_training(config):
    """Same seed, same masks: both paths drop the same units."""
    results = []
    for fast in (True, False):
        layer = make_layer(*config, dropout=0.3, recurrent_dropout=0.4, seed=11)
        results.append(run_with_gradients(layer, inputs(6), fast, training=True))
    fast, generic = (outputs + grads for outputs, grads in results)
    for a, b in zip(fast, generic, strict=True):
        assert_allclose(a, b, **TOL)


def test_stateful_chunks():
    x = inputs(8, batch=2)
    finals = []
    for fast in (True, False):
        layer = klv.PeepholeLSTM(
            UNITS, stateful=True, return_state=True, use_fast_path=fast
        )
        layer.build((2, TIME, FEATURES))
        randomize_weights(layer, 9)
        layer(x[:, :3])
        _, h, c = layer(x[:, 3:])
        finals.append((np.asarray(h), np.asarray(c)))
    ref = lstm_sequence(x, cell_weights(layer.cell))
    for state, ref_state in zip(finals[0], ref[1:], strict=True):
        assert_allclose(state, ref_state, **TOL)
    for a, b in zip(finals[0], finals[1], strict=True):
        assert_allclose(a, b, **TOL)


def test_compiled_training_step_gradients():
    """Inside a `tf.function` (as in `model.fit`) both paths agree too."""
    layer = make_layer("coupled", ("forget",))
    x = tf.constant(inputs(10))

    @tf.function
    def grads(fast):
        layer.use_fast_path = fast
        with tf.GradientTape() as tape:
            out, h, c = layer(x, training=True)
            loss = tf.reduce_sum(out**2) + tf.reduce_sum(c)
        return tape.gradient(loss, layer.trainable_weights)

    for a, b in zip(grads(True), grads(False), strict=True):
        assert_allclose(a, b, **TOL)


def test_fast_path_taken_by_default(kernel_calls):
    for variant in ("standard", "peephole", "coupled"):
        layer = LAYER_CLASSES[variant](UNITS)
        assert layer.use_fast_path == "auto"
        layer(inputs())
    assert len(kernel_calls) == 3


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"use_fast_path": False}, "use_fast_path=False"),
        ({"unroll": True}, "unroll=True"),
        ({"dtype": "mixed_float16"}, "float16"),
    ],
)
def test_falls_back(kernel_calls, kwargs, reason):
    layer = klv.CoupledLSTM(UNITS, **kwargs)
    layer(inputs())
    assert not kernel_calls
    assert reason in layer.fast_path_fallback_reason()


def test_falls_back_for_a_cell_that_overrides_its_step(kernel_calls):
    class Custom(klv.StandardLSTMCell):
        def gate_values(self, inputs, states, training=False):
            return super().gate_values(inputs, states, training)

    class CustomLayer(klv.StandardLSTM):
        cell_class = Custom

    layer = CustomLayer(UNITS)
    layer(inputs())
    assert not kernel_calls
    assert "overrides its step" in layer.fast_path_fallback_reason()


def test_use_fast_path_true_raises_where_it_cannot_apply():
    with pytest.raises(ValueError, match="use_fast_path=True.*unroll=True"):
        klv.StandardLSTM(UNITS, unroll=True, use_fast_path=True)
    with pytest.raises(ValueError, match="use_fast_path=True.*float16"):
        klv.CoupledLSTM(UNITS, dtype="mixed_float16", use_fast_path=True)


@pytest.mark.parametrize("value", ["yes", 1, None, "Auto"])
def test_bad_use_fast_path(value):
    with pytest.raises(ValueError, match="use_fast_path"):
        klv.PeepholeLSTM(UNITS, use_fast_path=value)


def test_config_and_keras_file_round_trip(tmp_path):
    layer = klv.PeepholeLSTM(UNITS, use_fast_path=False, name="p")
    config = layer.get_config()
    assert config["use_fast_path"] is False
    assert klv.PeepholeLSTM.from_config(config).use_fast_path is False

    model = keras.Sequential(
        [keras.Input((TIME, FEATURES)), klv.CoupledLSTM(UNITS, return_sequences=True)]
    )
    x = inputs(12)
    expected = model.predict_on_batch(x)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.layers[0].use_fast_path == "auto"
    assert_allclose(reloaded.predict_on_batch(x), expected, **TOL)


def test_saved_model_export_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((TIME, FEATURES)), klv.PeepholeLSTM(UNITS)])
    x = inputs(13)
    expected = model.predict_on_batch(x)
    model.export(str(tmp_path / "exported"), verbose=False)
    restored = tf.saved_model.load(str(tmp_path / "exported"))
    assert_allclose(restored.serve(tf.constant(x)), expected, **TOL)


def test_benchmark_script_runs_on_toy_shapes(monkeypatch):
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_layers.py"
    spec = importlib.util.spec_from_file_location("bench_layers", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setitem(bench.SHAPES, "S1", (2, 3, 4, 5))
    contenders = (bench.BASELINE, "CoupledLSTM")
    names = {"S1": (*contenders, bench.CELL_BASELINE, "RNN(CoupledLSTMCell)")}
    rows = bench.measure(["S1"], names, rounds=1, warmup=1)
    assert [r["contender"] for r in rows] == list(names["S1"])
    assert rows[0]["train_ratio"] == 1.0
    table = bench.format_table(rows, [])
    assert "| S1 | CoupledLSTM |" in table


def test_static_shapes_survive_the_shared_kernels():
    """The compiled loops are shared and retrace with relaxed shapes; a
    layer's outputs must still carry their static shapes, or the next layer
    cannot be built (regression: a stateful stack after a fast layer)."""
    for units, features in ((5, 3), (4, 6), (3, 2)):
        layer = klv.PeepholeLSTM(units, return_sequences=True, return_state=True)
        spec = tf.TensorSpec((None, None, features), "float32")
        graph = tf.function(layer).get_concrete_function(spec)
        outputs, h, c = graph.structured_outputs
        assert outputs.shape.as_list() == [None, None, units]
        assert h.shape.as_list() == [None, units] == c.shape.as_list()


@pytest.mark.parametrize(
    "config, kwargs",
    [
        (("standard", ()), {}),
        (("peephole", ("input", "output")), {"go_backwards": True}),
        (("coupled", ("forget", "output")), {"zero_output_for_mask": True}),
        (("peephole", ("forget",)), {"return_sequences": False}),
    ],
    ids=["standard", "peephole_backwards", "coupled_zero_output", "last_output"],
)
def test_inference_loop_without_tape(config, kwargs, monkeypatch):
    """Called with no tape (as `predict`), the fast path keeps nothing per
    step; its numbers still equal the generic loop's and the reference."""
    taped = []
    original = _tf_sequence.gradient_possible
    monkeypatch.setattr(
        _tf_sequence,
        "gradient_possible",
        lambda: taped.append(original()) or taped[-1],
    )
    layer = make_layer(*config, **kwargs)
    x, mask = inputs(14), right_padded_mask()
    results = []
    for fast in (True, False):
        layer.use_fast_path = fast
        results.append(layer(tf.constant(x), mask=tf.constant(mask)))
    assert taped == [False]
    for a, b in zip(*results, strict=True):
        assert_allclose(np.asarray(a), np.asarray(b), **TOL)
    if not kwargs.get("zero_output_for_mask"):
        ref_outputs, _, ref_c = lstm_sequence(
            x,
            cell_weights(layer.cell),
            coupled=layer.cell.coupled,
            mask=mask,
            go_backwards=kwargs.get("go_backwards", False),
        )
        if not kwargs.get("return_sequences", True):
            ref_outputs = ref_outputs[:, -1]
        assert_allclose(np.asarray(results[0][0]), ref_outputs, **TOL)
        assert_allclose(np.asarray(results[0][2]), ref_c, **TOL)


@pytest.mark.parametrize(
    "config", [("peephole", ("input", "output")), ("coupled", ("forget",))],
    ids=config_id,
)
def test_custom_activations_with_mask_and_graph_mode(config):
    """Non-default activations, a mask and a traced (`tf.function`) call: the
    fast path's outputs and gradients still equal the generic loop's."""
    layer = make_layer(
        *config, activation="softsign", recurrent_activation="hard_sigmoid"
    )
    x = tf.constant(inputs(15))
    mask = tf.constant(right_padded_mask())

    @tf.function
    def results(fast):
        layer.use_fast_path = fast
        with tf.GradientTape() as tape:
            tape.watch(x)
            out, h, c = layer(x, mask=mask)
            loss = tf.reduce_sum(out * tf.sin(out)) + tf.reduce_sum(h * c)
        return [out, h, c], tape.gradient(loss, [x, *layer.trainable_weights])

    fast, generic = results(True), results(False)
    for a, b in zip(tf.nest.flatten(fast), tf.nest.flatten(generic), strict=True):
        assert_allclose(np.asarray(a), np.asarray(b), **TOL)


def test_gradients_of_a_traced_call_taken_by_an_outer_tape():
    """A `tf.function` traced without a tape inside, differentiated by a tape
    around its call (as when fine-tuning a reloaded function): the fast path
    still gives the generic loop's gradients."""
    layer = make_layer("peephole", ("input", "forget", "output"))
    x = tf.constant(inputs(16))
    grads = []
    for fast in (True, False):
        layer.use_fast_path = fast
        call = tf.function(lambda x: layer(x)[0])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(x)
            loss = tf.reduce_sum(y * tf.sin(y))
        grads.append(tape.gradient(loss, [x, *layer.trainable_weights]))
    for a, b in zip(*grads, strict=True):
        assert_allclose(np.asarray(a), np.asarray(b), **TOL)


# The variant space: every option runs on the fast path.

SWITCH_VARIANTS = [
    {"variant": "NIG"},
    {"variant": "NFG"},
    {"variant": "NOG"},
    {"variant": "NIAF"},
    {"variant": "NOAF"},
    {"variant": "CIFG"},
    {"variant": "vanilla", "cell_clip": 0.2},
    {"input_gate": False, "output_activation": False, "peephole_gates": ("forget",)},
]


@pytest.mark.parametrize("options", SWITCH_VARIANTS, ids=str)
def test_greff_switches_and_clipping_run_fast_with_the_same_numbers(options):
    layer = klv.LSTMVariant(
        UNITS, return_sequences=True, return_state=True, go_backwards=True, **options
    )
    layer.build((None, TIME, FEATURES))
    randomize_weights(layer, 0)
    assert layer.fast_path_fallback_reason() is None
    assert_paths_agree(layer, inputs(4), mask=tf.constant(right_padded_mask()))


@pytest.mark.parametrize("config", [("peephole", ("input", "output"))], ids=config_id)
def test_backward_chunks_meet_at_their_boundaries(config, monkeypatch):
    # A few steps per chunk: one sequence spans full chunks and a short one.
    monkeypatch.setattr(_tf_loops, "CHUNK_ROWS", 2 * BATCH)
    monkeypatch.setattr(_tf_sequence, "_KERNELS", {})
    layer = make_layer(*config)
    mask = tf.constant(right_padded_mask())
    assert_paths_agree(layer, inputs(5), mask=mask)
    assert_paths_agree(make_layer(*config, return_sequences=False), inputs(6))


def test_an_xla_compiled_caller_runs_the_generic_loop(kernel_calls):
    layer = make_layer("peephole", ("input", "forget", "output"), use_fast_path=True)
    x = tf.constant(inputs(8))

    @tf.function(jit_compile=True)
    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            outputs, h, c = layer(x)
            loss = tf.reduce_sum(outputs) + tf.reduce_sum(c)
        return loss, tape.gradient(loss, layer.trainable_weights)

    loss, grads = loss_and_grads(x)
    assert not kernel_calls
    with tf.GradientTape() as tape:
        outputs, h, c = layer(x)
        eager_loss = tf.reduce_sum(outputs) + tf.reduce_sum(c)
    eager_grads = tape.gradient(eager_loss, layer.trainable_weights)
    assert kernel_calls  # eagerly, the fast path
    assert_allclose(loss, eager_loss, **TOL)
    for a, b in zip(grads, eager_grads, strict=True):
        assert_allclose(a, b, **TOL)


# Layer normalization, projection (and its clip) and full gate recurrence, alone
# and combined with the other options.

BEYOND_Z = [
    {"layer_norm": True},
    {"projection_units": 3},
    {"projection_units": 3, "projection_clip": 0.3},
    {"variant": "FGR"},
    {"variant": "vanilla", "layer_norm": True},
    {"variant": "CIFG", "projection_units": 2, "cell_clip": 0.4},
    {"variant": "NOAF", "layer_norm": True, "projection_units": 6, "use_bias": False},
    {"variant": "FGR", "layer_norm": True, "projection_units": 2, "cell_clip": 0.5,
     "projection_clip": 0.4},
]


def variant_layer(options, weight_seed=0, **kwargs):
    kwargs.setdefault("return_sequences", True)
    kwargs.setdefault("return_state", True)
    layer = klv.LSTMVariant(UNITS, **options, **kwargs)
    layer.build((None, TIME, FEATURES))
    randomize_weights(layer, weight_seed)
    return layer


def oracle_options(cell):
    """The NumPy oracle's options for a variant cell."""
    names = ("input_gate", "forget_gate", "output_gate", "input_activation",
             "output_activation", "coupled", "layer_norm", "cell_clip",
             "projection_clip")
    return {"fgr": cell.full_gate_recurrence} | {n: getattr(cell, n) for n in names}


def random_states(layer, seed, batch=BATCH):
    rng = np.random.default_rng(seed)
    return [
        tf.constant(0.5 * rng.standard_normal((batch, size)).astype("float32"))
        for size in layer.cell.state_size
    ]


@pytest.mark.parametrize("options", BEYOND_Z, ids=str)
def test_norm_projection_and_fgr_run_fast_with_the_same_numbers(
    kernel_calls, options
):
    """Mask, `go_backwards`, `return_state` and a random initial state: the
    fast path's outputs, final states and gradients (inputs, every weight,
    the initial states) equal the generic loop's."""
    layer = variant_layer(options, go_backwards=True)
    assert layer.fast_path_fallback_reason() is None
    x = tf.constant(inputs(21))
    mask = tf.constant(right_padded_mask())
    states = random_states(layer, 22)
    results = []
    for fast in (True, False):
        layer.use_fast_path = fast
        rng = np.random.default_rng(7)
        with tf.GradientTape() as tape:
            tape.watch([x, *states])
            outputs = layer(x, mask=mask, initial_state=states)
            loss = sum(
                tf.reduce_sum(r * rng.standard_normal(r.shape).astype("float32"))
                for r in outputs
            )
        grads = tape.gradient(loss, [x, *states, *layer.trainable_weights])
        assert all(g is not None for g in grads)
        results.append([np.asarray(r) for r in (*outputs, *grads)])
    assert len(kernel_calls) == 1  # the fast run only
    assert len(results[0]) == 1 + len(states) + 1 + len(states) + len(
        layer.trainable_weights
    )
    for a, b in zip(*results, strict=True):
        assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("options", BEYOND_Z, ids=str)
def test_norm_projection_and_fgr_match_the_oracle(options):
    layer = variant_layer(options)
    x = inputs(23)
    outputs, h, c, *rest = layer(tf.constant(x))
    assert layer.fast_path_fallback_reason() is None
    assert len(rest) == int(layer.cell.full_gate_recurrence)
    values, ref_h, ref_c = variant_sequence(
        x,
        variant_weights(layer.cell),
        oracle_options(layer.cell),
        UNITS,
        layer.cell.output_size,
    )
    assert_allclose(np.asarray(outputs), values["hidden_state"], **TOL)
    assert_allclose(np.asarray(h), ref_h, **TOL)
    assert_allclose(np.asarray(c), ref_c, **TOL)


@pytest.mark.parametrize("options", [BEYOND_Z[4], BEYOND_Z[5], BEYOND_Z[7]], ids=str)
def test_norm_projection_and_fgr_zero_output_last_output_and_dropout(options):
    mask = tf.constant(right_padded_mask())
    layer = variant_layer(options, zero_output_for_mask=True)
    assert_paths_agree(layer, inputs(24), mask=mask)
    layer = variant_layer(options, return_sequences=False)
    assert_paths_agree(layer, inputs(25), mask=mask)
    layer = variant_layer(options, return_sequences=False, return_state=False)
    assert_paths_agree(layer, inputs(26))
    results = []
    for fast in (True, False):
        layer = variant_layer(options, dropout=0.3, recurrent_dropout=0.4, seed=11)
        results.append(run_with_gradients(layer, inputs(27), fast, training=True))
    fast, generic = (outputs + grads for outputs, grads in results)
    for a, b in zip(fast, generic, strict=True):
        assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("options", [BEYOND_Z[3], BEYOND_Z[6]], ids=str)
def test_norm_projection_and_fgr_stateful_chunks(options):
    x = inputs(28, batch=2)
    finals = []
    for fast in (True, False):
        layer = klv.LSTMVariant(
            UNITS, stateful=True, return_state=True, use_fast_path=fast, **options
        )
        layer.build((2, TIME, FEATURES))
        randomize_weights(layer, 9)
        layer(x[:, :3])
        _, *states = layer(x[:, 3:])
        finals.append([np.asarray(s) for s in states])
    _, ref_h, ref_c = variant_sequence(
        x, variant_weights(layer.cell), oracle_options(layer.cell), UNITS,
        layer.cell.output_size,
    )
    assert_allclose(finals[0][0], ref_h, **TOL)
    assert_allclose(finals[0][1], ref_c, **TOL)
    for a, b in zip(*finals, strict=True):
        assert_allclose(a, b, **TOL)


def test_norm_projection_and_fgr_in_bidirectional_inside_a_traced_step(kernel_calls):
    """`Bidirectional` of the combined variant, traced as `fit` traces it."""
    x = tf.constant(inputs(29))
    layer = keras.layers.Bidirectional(
        klv.LSTMVariant(UNITS, return_sequences=True, **BEYOND_Z[7])
    )
    layer.build((None, TIME, FEATURES))
    randomize_weights(layer, 30)
    mask = tf.constant(right_padded_mask())

    @tf.function
    def results(fast):
        layer.forward_layer.use_fast_path = fast
        layer.backward_layer.use_fast_path = fast
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, mask=mask)
            loss = tf.reduce_sum(out * tf.sin(out))
        return out, tape.gradient(loss, [x, *layer.trainable_weights])

    assert layer.forward_layer.fast_path_fallback_reason() is None
    fast = results(True)
    assert len(kernel_calls) == 2  # both directions
    generic = results(False)
    assert len(kernel_calls) == 2
    for a, b in zip(tf.nest.flatten(fast), tf.nest.flatten(generic), strict=True):
        assert_allclose(np.asarray(a), np.asarray(b), **TOL)


@pytest.mark.parametrize("options", [BEYOND_Z[5], BEYOND_Z[7]], ids=str)
def test_norm_projection_and_fgr_across_backward_chunks(options, monkeypatch):
    monkeypatch.setattr(_tf_loops, "CHUNK_ROWS", 2 * BATCH)
    monkeypatch.setattr(_tf_sequence, "_KERNELS", {})
    mask = tf.constant(right_padded_mask())
    assert_paths_agree(variant_layer(options), inputs(31), mask=mask)
    assert_paths_agree(variant_layer(options, return_sequences=False), inputs(32))


def test_norm_projection_and_fgr_inference_loop_without_tape():
    layer = variant_layer(BEYOND_Z[7], go_backwards=True)
    x, mask = tf.constant(inputs(33)), tf.constant(right_padded_mask())
    results = []
    for fast in (True, False):
        layer.use_fast_path = fast
        results.append(layer(x, mask=mask))
    for a, b in zip(*results, strict=True):
        assert_allclose(np.asarray(a), np.asarray(b), **TOL)


@pytest.mark.parametrize("options", [BEYOND_Z[0], BEYOND_Z[2], BEYOND_Z[3]], ids=str)
def test_norm_projection_and_fgr_fall_back_under_xla_and_mixed_precision(
    kernel_calls, options
):
    layer = variant_layer(options, use_fast_path=True)
    x = tf.constant(inputs(34))

    @tf.function(jit_compile=True)
    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            outputs, *states = layer(x)
            loss = tf.reduce_sum(outputs) + tf.reduce_sum(states[1])
        return loss, tape.gradient(loss, layer.trainable_weights)

    loss, grads = loss_and_grads(x)
    assert not kernel_calls
    with tf.GradientTape() as tape:
        outputs, *states = layer(x)
        eager_loss = tf.reduce_sum(outputs) + tf.reduce_sum(states[1])
    eager_grads = tape.gradient(eager_loss, layer.trainable_weights)
    assert kernel_calls
    assert_allclose(loss, eager_loss, **TOL)
    for a, b in zip(grads, eager_grads, strict=True):
        assert_allclose(a, b, **TOL)

    kernel_calls.clear()
    mixed = klv.LSTMVariant(UNITS, dtype="mixed_float16", **options)
    mixed(inputs())
    assert not kernel_calls
    assert "float16" in mixed.fast_path_fallback_reason()
