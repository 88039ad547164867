"""The variant space against the float64 NumPy oracle written from REFERENCE.md:
Greff et al.'s variants, layer normalization, projection and clipping, alone
and combined; their weights, errors, inspection and serialization."""

import os

import keras
import numpy as np
import pytest
from numpy_reference import GREFF
from numpy_reference import to_numpy
from numpy_reference import variant_sequence
from numpy_reference import variant_weights

import keras_lstm_variants as klv
from conftest import randomize_weights

UNITS = 4
EXTRAS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "projection": {"projection_units": 3, "projection_clip": 0.4},
    "cell_clip": {"cell_clip": 0.3},
    "all": {"layer_norm": True, "projection_units": 2, "cell_clip": 0.5},
}


def _oracle_options(variant, extra):
    options = {k: v for k, v in GREFF[variant].items() if k != "peepholes"}
    options.update(
        {k: v for k, v in extra.items() if k in ("layer_norm", "cell_clip")}
    )
    options["projection_clip"] = extra.get("projection_clip")
    return options


def _inputs(seed=0, batch=3, time=6, features=5):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (batch, time, features)).astype("float32")


@pytest.mark.parametrize("extra", EXTRAS, ids=str)
@pytest.mark.parametrize("variant", GREFF)
def test_variant_matches_the_oracle(variant, extra):
    x = _inputs()
    layer = klv.LSTMVariant(
        UNITS,
        variant=variant,
        return_sequences=True,
        return_state=True,
        **EXTRAS[extra],
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=1)
    outputs, h, c, *rest = layer(x)
    out_units = EXTRAS[extra].get("projection_units", UNITS)
    values, h_ref, c_ref = variant_sequence(
        x,
        variant_weights(layer.cell),
        _oracle_options(variant, EXTRAS[extra]),
        UNITS,
        out_units,
    )
    np.testing.assert_allclose(to_numpy(outputs), values["hidden_state"], atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), h_ref, atol=1e-5)
    np.testing.assert_allclose(to_numpy(c), c_ref, atol=1e-5)
    assert len(rest) == (1 if variant == "FGR" else 0)

    gates = klv.gate_activations(layer, x)[layer.name]
    assert set(gates) == set(values)  # a gate that does not exist is absent
    for name, expected in values.items():
        np.testing.assert_allclose(gates[name], expected, atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "variant, blocks, peepholes",
    [
        ("vanilla", 4, ("input", "forget", "output")),
        ("NIG", 3, ("forget", "output")),
        ("NFG", 3, ("input", "output")),
        ("NOG", 3, ("input", "forget")),
        ("NIAF", 4, ("input", "forget", "output")),
        ("NOAF", 4, ("input", "forget", "output")),
        ("NP", 4, ()),
        ("CIFG", 3, ("forget", "output")),
        ("FGR", 4, ("input", "forget", "output")),
    ],
)
def test_weights_of_each_variant(variant, blocks, peepholes):
    cell = klv.LSTMVariantCell(UNITS, variant=variant.lower())
    cell.build((None, 5))
    assert tuple(cell.kernel.shape) == (5, blocks * UNITS)
    assert tuple(cell.recurrent_kernel.shape) == (UNITS, blocks * UNITS)
    assert tuple(cell.bias.shape) == (blocks * UNITS,)
    assert cell.peephole_gates == peepholes
    for gate in ("input", "forget", "output"):
        weight = getattr(cell, f"{gate}_gate_peephole_weights")
        assert (weight is not None) == (gate in peepholes)
    if variant == "FGR":
        assert tuple(cell.gate_recurrent_kernel.shape) == (3 * UNITS, 3 * UNITS)
        assert cell.state_size == [UNITS, UNITS, 3 * UNITS]
    else:
        assert cell.gate_recurrent_kernel is None
    if "forget" in cell.blocks:  # unit_forget_bias on the forget block
        k = cell.blocks.index("forget")
        bias = to_numpy(cell.bias)
        np.testing.assert_array_equal(bias[k * UNITS : (k + 1) * UNITS], 1.0)


def test_layer_norm_and_projection_weights():
    cell = klv.LSTMVariantCell(6, layer_norm=True, projection_units=2)
    cell.build((None, 3))
    assert tuple(cell.recurrent_kernel.shape) == (2, 24)
    assert tuple(cell.projection_kernel.shape) == (6, 2)
    for name in ("kernel_norm", "recurrent_norm"):
        np.testing.assert_array_equal(to_numpy(getattr(cell, f"{name}_gamma")), 1.0)
        np.testing.assert_array_equal(to_numpy(getattr(cell, f"{name}_beta")), 0.0)
        assert tuple(getattr(cell, f"{name}_gamma").shape) == (24,)
    assert tuple(cell.state_norm_gamma.shape) == (6,)
    assert cell.state_size == [2, 6] and cell.output_size == 2


@pytest.mark.parametrize(
    "preset, kwargs, variant",
    [
        (klv.StandardLSTMCell, {}, "NP"),
        (klv.PeepholeLSTMCell, {}, "vanilla"),
        (klv.CoupledLSTMCell, {"peephole_gates": ("forget", "output")}, "CIFG"),
    ],
)
def test_presets_are_the_variants(preset, kwargs, variant):
    x = _inputs(3)
    a = keras.layers.RNN(preset(UNITS, **kwargs), return_sequences=True)
    b = keras.layers.RNN(
        klv.LSTMVariantCell(UNITS, variant=variant), return_sequences=True
    )
    a.build(x.shape)
    b.build(x.shape)
    randomize_weights(a, seed=4)
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(to_numpy(a(x)), to_numpy(b(x)), atol=1e-6)
    # The presets keep the configs they always had.
    assert "variant" not in a.cell.get_config()


def test_switches_alone_and_overriding_a_variant():
    cell = klv.LSTMVariantCell(3, output_activation=False)
    assert cell.step.output_activation is False and cell.peephole_gates == ()
    cell = klv.LSTMVariantCell(3, variant="NOAF", peephole_gates=(), layer_norm=True)
    assert cell.peephole_gates == () and cell.layer_norm and not cell.output_activation


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"coupled": True, "forget_gate": False}, ValueError, "`coupled=True`"),
        ({"variant": "CIFG", "input_gate": False}, ValueError, r"`input_gate=False`"),
        (
            {"coupled": True, "peephole_gates": ("input",)},
            ValueError,
            r"holds 'input'.*1 - forget_gate",
        ),
        ({"variant": "NIG", "peephole_gates": ("input",)}, ValueError, "input_gate"),
        ({"variant": "NOG", "peephole_gates": ("output",)}, ValueError, "output_gate"),
        ({"projection_clip": 1.0}, ValueError, r"`projection_clip=1.0`.*units"),
        ({"variant": "LSTM2"}, ValueError, r"variant='LSTM2'.*'NIG'.*'FGR'"),
        ({"variant": 3}, TypeError, r"variant=3"),
        ({"variant": "FGR", "output_gate": False}, ValueError, "all three gates"),
        ({"full_gate_recurrence": True, "coupled": True}, ValueError, "do not combine"),
        ({"projection_units": 0}, ValueError, r"projection_units=0"),
        ({"cell_clip": -1.0}, ValueError, r"cell_clip=-1.0"),
        ({"layer_norm": "yes"}, TypeError, r"layer_norm='yes'"),
    ],
)
def test_combinations_that_do_not_exist(kwargs, error, pattern):
    for cls in (klv.LSTMVariantCell, klv.LSTMVariant):
        with pytest.raises(error, match=pattern):
            cls(4, **kwargs)


@pytest.mark.parametrize("variant", ["NIG", "FGR", "NOAF"])
def test_everywhere_a_layer_goes(variant, tmp_path):
    x = _inputs(5)
    mask = np.ones(x.shape[:2], bool)
    mask[0, 4:] = False
    inputs = keras.Input((None, 5))
    masked = keras.layers.Masking(0.0)(inputs)
    stack = keras.layers.RNN(
        [
            klv.LSTMVariantCell(3, variant=variant, layer_norm=True),
            klv.LSTMVariantCell(2, variant=variant, projection_units=2),
        ],
        return_sequences=True,
    )
    y = keras.layers.Bidirectional(stack)(masked)
    y = klv.LSTMVariant(3, variant=variant, cell_clip=1.0, go_backwards=True)(y)
    model = keras.Model(inputs, y)
    x[~mask] = 0.0
    expected = to_numpy(model(x))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(to_numpy(reloaded(x)), expected, atol=1e-6)
    gates = klv.gate_activations(model, x)
    assert len(gates) == 5
    assert all(("input_gate" in g) == (variant != "NIG") for g in gates.values())


@pytest.mark.parametrize("variant", ["NFG", "FGR"])
def test_stateful_chunks_equal_the_whole_sequence(variant):
    x = _inputs(6, batch=2, time=8)
    whole = klv.LSTMVariant(3, variant=variant, return_sequences=True)
    chunked = klv.LSTMVariant(3, variant=variant, return_sequences=True, stateful=True)
    whole.build(x.shape)
    chunked.build(x.shape)
    randomize_weights(whole, seed=7)
    chunked.set_weights(whole.get_weights())
    first, second = to_numpy(chunked(x[:, :5])), to_numpy(chunked(x[:, 5:]))
    np.testing.assert_allclose(
        np.concatenate([first, second], axis=1), to_numpy(whole(x)), atol=1e-6
    )


def test_config_round_trip_keeps_every_switch():
    layer = klv.LSTMVariant(
        5, variant="nfg", layer_norm=True, projection_units=3,
        cell_clip=2.0, projection_clip=1.0,
    )
    clone = klv.LSTMVariant.from_config(layer.get_config())
    for name in ("variant", "forget_gate", "layer_norm", "projection_units",
                 "cell_clip", "projection_clip", "peephole_gates"):
        assert getattr(clone, name) == getattr(layer, name), name


def test_finite_differences_of_a_combined_variant():
    """Autodiff of the layer (float64) against central differences of the
    NumPy oracle, for the input and entries of every weight."""
    if keras.backend.backend() == "jax":
        pytest.skip("Keras's JAX backend computes float64 activations in float32")
    from autodiff import gradients

    x = _inputs(8, batch=2, time=4, features=3).astype("float64")
    options = {"variant": "FGR", "layer_norm": True, "projection_units": 2}
    layer = klv.LSTMVariant(3, return_sequences=True, dtype="float64", **options)
    layer.build(x.shape)
    randomize_weights(layer, seed=9, scale=0.4)
    projection = np.random.default_rng(10).normal(size=(2, 4, 2))
    analytic = gradients(layer, x, projection)
    weights = variant_weights(layer.cell)
    oracle = _oracle_options("FGR", {"layer_norm": True})

    def loss():
        values, _, _ = variant_sequence(x, weights, oracle, 3, 2)
        return float(np.sum(values["hidden_state"] * projection))

    def numeric(array, index, eps=1e-6):
        saved = array[index]
        array[index] = saved + eps
        plus = loss()
        array[index] = saved - eps
        minus = loss()
        array[index] = saved
        return (plus - minus) / (2 * eps)

    rng = np.random.default_rng(11)
    targets = [x]
    for variable in layer.trainable_variables:
        name = variable.path.split("/")[-1]
        gate = name.split("_gate_peephole")[0]
        peepholes = weights["peepholes"]
        targets.append(peepholes[gate] if gate in peepholes else weights[name])
    for k, (target, grad) in enumerate(zip(targets, analytic, strict=True)):
        # Four entries of each array, drawn at random, keep the test quick.
        for flat in rng.choice(target.size, size=min(4, target.size), replace=False):
            index = np.unravel_index(flat, target.shape)
            np.testing.assert_allclose(
                grad[index], numeric(target, index), atol=1e-7, rtol=1e-6,
                err_msg=f"array {k}",
            )


def test_cell_clip_with_peepholes_matches_tensorflows_block_lstm():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("BlockLSTM is a TensorFlow op")
    import tensorflow as tf

    x = _inputs(11, batch=2, time=5, features=3)
    layer = klv.LSTMVariant(
        UNITS, variant="vanilla", cell_clip=0.25, return_sequences=True,
        return_state=True,
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=12, scale=0.8)
    cell = layer.cell
    outputs, h, c = layer(x)

    def icfo(m):  # our blocks i, f, c, o -> BlockLSTM's i, c, f, o
        i, f, g, o = np.split(to_numpy(m), 4, axis=-1)
        return np.concatenate([i, g, f, o], axis=-1)

    w = np.concatenate([icfo(cell.kernel), icfo(cell.recurrent_kernel)], axis=0)
    zeros = np.zeros((2, UNITS), "float32")
    result = tf.raw_ops.BlockLSTM(
        seq_len_max=np.int64(5),
        x=np.transpose(x, (1, 0, 2)),
        cs_prev=zeros,
        h_prev=zeros,
        w=w,
        wci=to_numpy(cell.input_gate_peephole_weights),
        wcf=to_numpy(cell.forget_gate_peephole_weights),
        wco=to_numpy(cell.output_gate_peephole_weights),
        b=icfo(cell.bias),
        forget_bias=0.0,
        cell_clip=0.25,
        use_peephole=True,
    )
    np.testing.assert_allclose(
        to_numpy(outputs), np.transpose(result.h.numpy(), (1, 0, 2)), atol=1e-5
    )
    np.testing.assert_allclose(to_numpy(c), result.cs.numpy()[-1], atol=1e-5)
    assert np.abs(to_numpy(c)).max() <= 0.25 + 1e-7


def test_projection_matches_pytorch_proj_size():
    torch = pytest.importorskip("torch")
    x = _inputs(13, batch=2, time=5, features=3)
    reference = torch.nn.LSTM(3, 6, proj_size=2, batch_first=True).double()
    layer = klv.LSTMVariant(6, projection_units=2, return_sequences=True)
    layer.build(x.shape)
    cell = layer.cell
    p = {k: v.detach().numpy() for k, v in reference.named_parameters()}
    cell.kernel.assign(p["weight_ih_l0"].T)
    cell.recurrent_kernel.assign(p["weight_hh_l0"].T)
    cell.bias.assign(p["bias_ih_l0"] + p["bias_hh_l0"])
    cell.projection_kernel.assign(p["weight_hr_l0"].T)
    expected, _ = reference(torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(
        to_numpy(layer(x)), expected.detach().numpy(), atol=1e-5
    )


def test_the_readme_lists_every_variant():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    for name in GREFF:
        assert f"`{name}`" in readme, name


def test_export_and_callback_carry_the_variants_values(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModels and TensorBoard logs need TensorFlow")
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    x = _inputs(14, batch=2, time=5, features=5)
    inputs = keras.Input((None, 5), batch_size=2)
    nig = klv.LSTMVariant(3, variant="NIG", return_sequences=True, name="nig")
    fgr = klv.LSTMVariant(
        2, variant="FGR", projection_units=2, stateful=True, name="fgr"
    )
    model = keras.Model(inputs, fgr(nig(inputs)))
    model(x)
    fgr.reset_state()
    expected = to_numpy(model(x))
    fgr.reset_state()
    gates = klv.gate_activations(model, x)

    path = klv.export_saved_model(model, tmp_path / "saved")
    loaded = tf.saved_model.load(path)
    zeros = {
        "fgr__hidden_state": tf.zeros((2, 2)),
        "fgr__cell_state": tf.zeros((2, 2)),
        "fgr__previous_gates": tf.zeros((2, 6)),
    }
    served = loaded.signatures["serving_default"](
        **{model.input.name: tf.constant(x)}, **zeros
    )
    np.testing.assert_allclose(served["output_0"].numpy(), expected, atol=1e-5)
    assert tuple(served["fgr__previous_gates"].shape) == (2, 6)
    exported = loaded.signatures["gates"](
        **{model.input.name: tf.constant(x)}, **zeros
    )
    assert "nig__input_gate" not in exported
    for name in ("nig", "fgr"):
        for value, array in gates[name].items():
            np.testing.assert_allclose(
                exported[f"{name}__{value}"].numpy(), array, atol=1e-5
            )

    model.compile("sgd", "mse")
    callback = klv.GateHistograms(x, str(tmp_path / "logs"))
    model.fit(x, np.zeros((2, 2)), batch_size=2, epochs=1, verbose=0,
              callbacks=[callback])
    events = event_accumulator.EventAccumulator(
        str(tmp_path / "logs" / "gates"), size_guidance={"tensors": 0}
    )
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert klv.sites.summary_tag("nig", "forget_gate") in tags
    assert klv.sites.summary_tag("nig", "input_gate") not in tags
    assert klv.sites.summary_tag("nig", "heatmap") in tags


def test_variant_benchmark_runs_on_toy_shapes(monkeypatch):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmark measures the TensorFlow backend")
    import importlib.util
    import pathlib
    import sys

    folder = pathlib.Path(__file__).parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location(
        "bench_variants", folder / "bench_variants.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setitem(sys.modules["bench_layers"].SHAPES, "S1", (2, 3, 4, 6))
    monkeypatch.setattr(
        bench, "OPTIONS", {k: bench.OPTIONS[k] for k in ("NIG", "projection (units/2)")}
    )
    rows = bench.measure(["S1"], rounds=1, warmup=1)
    names = ["StandardLSTM", "NIG", "projection (units/2)"]
    assert [r["contender"] for r in rows] == names
    assert rows[0]["train_ratio"] == 1.0
    assert [r["fast_path"] for r in rows] == [True, True, True]
    table = bench.format_table(rows)
    assert "| S1 | NIG | fast |" in table
    assert "| ≤ 0.9: m" in table  # the projection's target, met or missed
