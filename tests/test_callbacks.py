"""GateHistograms: train small models, read the event files back with TensorBoard.

Three small models, one per layer (the standard one compiled with
`jit_compile=True`, the peephole one inside `Bidirectional`, the coupled one
followed by a stack of cells and logged every second epoch), are trained once
for two epochs next to `keras.callbacks.TensorBoard`. The tests read the `gates`
run with TensorBoard's own `EventAccumulator`, and one serves it with a real
`tensorboard` process.
"""

import json
import os
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

import keras_lstm_variants as klv
from keras_lstm_variants import GATE_NAMES
from keras_lstm_variants import GateHistograms
from keras_lstm_variants import gate_activations
from keras_lstm_variants.equations import EQUATION_ORDER
from keras_lstm_variants.sites import summary_tag as gate_tag

GATES = ("input_gate", "forget_gate", "output_gate")
TIME, FEATURES, PROBE_BATCH, SCALE = 7, 3, 4, 4
EPOCHS = 2
SIZE_GUIDANCE = {
    kind: 0
    for kind in (
        event_accumulator.COMPRESSED_HISTOGRAMS,
        event_accumulator.IMAGES,
        event_accumulator.AUDIO,
        event_accumulator.SCALARS,
        event_accumulator.HISTOGRAMS,
        event_accumulator.TENSORS,
    )
}


def _build(variant):
    """A small model and the names its layers get in the gate tags."""
    inputs = keras.Input((TIME, FEATURES))
    if variant == "standard":
        layer = klv.StandardLSTM(5)
        outputs = layer(inputs)
        names = {layer.name: 5}
    elif variant == "peephole":
        wrapper = keras.layers.Bidirectional(
            klv.PeepholeLSTM(4, peephole_gates=("forget", "output"))
        )
        outputs = wrapper(inputs)
        names = {
            f"{wrapper.name}/{wrapper.forward_layer.name}": 4,
            f"{wrapper.name}/{wrapper.backward_layer.name}": 4,
        }
    else:
        layer = klv.CoupledLSTM(3, return_sequences=True)
        cells = [klv.CoupledLSTMCell(4, peephole_gates=("forget",))]
        cells.append(klv.StandardLSTMCell(2))
        stack = keras.layers.RNN(cells)
        outputs = stack(layer(inputs))
        names = {
            layer.name: 3,
            f"{stack.name}/{cells[0].name}": 4,
            f"{stack.name}/{cells[1].name}": 2,
        }
    outputs = keras.layers.Dense(1)(outputs)
    return keras.Model(inputs, outputs), names


RUNS = {
    # variant: (jit_compile, every_n_epochs, expected steps)
    "standard": (True, 1, [0, 1]),
    "peephole": (False, 1, [0, 1]),
    "coupled": (False, 2, [1]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (32, TIME, FEATURES)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None]
    probe = x[:PROBE_BATCH]
    result = {}
    for variant, (jit, every, steps) in RUNS.items():
        keras.utils.clear_session()
        log_dir = str(tmp_path_factory.mktemp(variant))
        model, names = _build(variant)
        model.compile("adam", "mse", jit_compile=jit)
        callback = GateHistograms(
            probe, log_dir, every_n_epochs=every, heatmap_scale=SCALE
        )
        tensorboard = keras.callbacks.TensorBoard(log_dir)
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=EPOCHS,
            callbacks=[tensorboard, callback],
            verbose=0,
        )
        accumulator = event_accumulator.EventAccumulator(
            os.path.join(log_dir, "gates"), size_guidance=SIZE_GUIDANCE
        )
        accumulator.Reload()
        result[variant] = types.SimpleNamespace(
            log_dir=log_dir,
            names=names,
            steps=steps,
            events=accumulator,
            # The values of the last logged epoch: the weights did not change
            # since, so the probe gives them again.
            final=gate_activations(model, probe),
        )
    return result


def _values(events, tag):
    """`{step: ndarray}` of one tag, in step order."""
    return {
        e.step: tensor_util.make_ndarray(e.tensor_proto) for e in events.Tensors(tag)
    }


def _plugin(events, tag):
    return events.SummaryMetadata(tag).plugin_data.plugin_name


@pytest.mark.parametrize("variant", RUNS)
def test_gates_run_next_to_the_tensorboard_runs(runs, variant):
    assert {"train", "gates"} <= set(os.listdir(runs[variant].log_dir))


@pytest.mark.parametrize("variant", RUNS)
def test_every_tag_at_the_expected_steps(runs, variant):
    run = runs[variant]
    expected = {}
    for name in run.names:
        for gate in GATE_NAMES:
            expected[gate_tag(name, gate)] = "histograms"
        for gate in GATES:
            expected[gate_tag(name, gate, "mean")] = "scalars"
            expected[gate_tag(name, gate, "saturated_fraction")] = "scalars"
        expected[gate_tag(name, "cell_state", "mean_abs")] = "scalars"
        expected[gate_tag(name, "heatmap")] = "images"
    assert sorted(run.events.Tags()["tensors"]) == sorted(expected)
    for tag, plugin in expected.items():
        assert _plugin(run.events, tag) == plugin, tag
        assert sorted(_values(run.events, tag)) == run.steps, tag


@pytest.mark.parametrize("variant", RUNS)
def test_histograms_lie_in_their_ranges_and_match_the_gates(runs, variant):
    run = runs[variant]
    for name, units in run.names.items():
        for gate in GATE_NAMES:
            histograms = _values(run.events, gate_tag(name, gate))
            for step, histogram in histograms.items():
                left, right, counts = histogram.T
                assert counts.sum() == PROBE_BATCH * TIME * units, (gate, step)
                used = counts > 0
                low, high = left[used].min(), right[used].max()
                assert np.isfinite([low, high]).all()
                if gate in GATES:
                    assert 0.0 <= low <= high <= 1.0, (name, gate, step)
                elif gate in ("candidate", "hidden_state"):
                    assert -1.0 <= low <= high <= 1.0, (name, gate, step)
                else:  # |c_t| <= t + 1, since |f|, |i|, |g| <= 1
                    assert -TIME <= low <= high <= TIME, (name, gate, step)
            # The last histogram spans exactly the probe's values.
            values = run.final[name][gate]
            left, right, _ = histograms[run.steps[-1]].T
            np.testing.assert_allclose(
                [left[0], right[-1]], [values.min(), values.max()], atol=1e-5
            )


@pytest.mark.parametrize("variant", RUNS)
def test_scalars_match_the_gates(runs, variant):
    run = runs[variant]
    for name in run.names:
        gates = run.final[name]
        expected = {("cell_state", "mean_abs"): np.abs(gates["cell_state"]).mean()}
        for gate in GATES:
            values = gates[gate].astype(np.float64)
            expected[gate, "mean"] = values.mean()
            expected[gate, "saturated_fraction"] = np.mean(
                (values < 0.05) | (values > 0.95)
            )
        for (gate, statistic), value in expected.items():
            logged = _values(run.events, gate_tag(name, gate, statistic))
            for step_value in logged.values():
                assert np.ndim(step_value) == 0
                if statistic != "mean_abs":
                    assert 0.0 <= step_value <= 1.0
            np.testing.assert_allclose(
                logged[run.steps[-1]], value, atol=1e-5, err_msg=(gate, statistic)
            )


@pytest.mark.parametrize("variant", RUNS)
def test_each_image_is_a_legible_png_of_bounded_size(runs, variant):
    import tensorflow as tf

    run = runs[variant]
    for name in run.names:
        for step, image in _values(run.events, gate_tag(name, "heatmap")).items():
            assert image.shape == (3,), step
            width, height = int(image[0]), int(image[1])
            assert image[2].startswith(b"\x89PNG\r\n\x1a\n")
            pixels = tf.io.decode_png(image[2]).numpy()
            assert pixels.shape == (height, width, 3)
            # However small the model (here 7 steps, 2 to 5 units), the
            # image is a legible landscape figure, never a sliver.
            assert 800 <= width <= 2000 and 400 <= height <= 1600, (width, height)
            # It shows the gates in viridis colours: the darkest and the
            # brightest viridis colours of the colour bar are both there.
            colours = {tuple(p) for p in pixels.reshape(-1, 3)[::7]}
            assert len(colours) > 50


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tensorboard_server_lists_the_gate_tags(runs, tmp_path):
    run = runs["peephole"]
    expected = {gate_tag(name, gate) for name in run.names for gate in GATE_NAMES}
    port = _free_port()
    url = f"http://127.0.0.1:{port}/data/plugin/histograms/tags"
    log_path = tmp_path / "tensorboard.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                run.log_dir,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--load_fast",
                "false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        tags = {}
        while time.monotonic() < deadline:
            assert server.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    tags = json.load(response)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if expected <= set(tags.get("gates", {})):
                break
            time.sleep(0.5)
        assert expected <= set(tags.get("gates", {})), (tags, log_path.read_text())
        # TensorBoard's own order of the tags (by name) is the equations'.
        for name in run.names:
            listed = [
                t
                for t in sorted(tags["gates"])
                if t.startswith(gate_tag(name, "heatmap").split("/")[0] + "/")
            ]
            assert listed == [gate_tag(name, gate) for gate in EQUATION_ORDER]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_heatmap_panels_labels_and_colour_bar():
    from keras_lstm_variants.heatmaps import gate_heatmap
    from keras_lstm_variants.heatmaps import heatmap_figure

    units, steps = 3, 6
    gates = {
        "input_gate": np.zeros((2, steps, units)),
        "forget_gate": np.ones((2, steps, units)),
        "output_gate": np.full((2, steps, units), 0.5),
    }
    gates["forget_gate"][0, 2, 1] = np.nan
    fig = heatmap_figure(gates, time_labels="ab\ncd ", title="lstm: epoch 1")
    panels, colour_bar = fig.axes[:3], fig.axes[3]
    assert [ax.get_title(loc="left") for ax in panels] == [
        "input gate",
        "forget gate  (1 NaN or infinite value, in red)",
        "output gate",
    ]
    for ax in panels:
        assert ax.get_ylabel() == "unit"
        # Units on one axis, time steps on the other, each cell one value.
        (image,) = ax.get_images()
        assert image.get_array().shape == (units, steps)
        assert image.get_clim() == (0.0, 1.0)
    # The characters of the probe, made visible, along the bottom panel.
    labels = [t.get_text() for t in panels[2].get_xticklabels()]
    assert labels == ["a", "b", "\u21b5", "c", "d", "\u2423"]
    assert "characters" in panels[2].get_xlabel()
    assert "gate value" in colour_bar.get_ylabel()
    assert fig._suptitle.get_text() == "lstm: epoch 1"

    # Rendered: the colours of the first sequence in the middle of each panel
    # (viridis: dark purple for 0, yellow for 1, teal for 0.5), NaN in red.
    image = gate_heatmap(gates, time_labels="ab\ncd ")
    height, width = image.shape[:2]
    dark, middle, yellow = np.array([[68, 1, 84], [33, 145, 140], [253, 231, 37]])
    for ax, colour in zip(panels, (dark, yellow, middle), strict=True):
        x0, y0, x1, y1 = ax.get_position().extents
        row = int(height * (1 - (y0 + y1) / 2))
        column = int(width * (x0 + (x1 - x0) * 0.05))
        np.testing.assert_allclose(image[row, column], colour, atol=2)
    x0, y0, x1, y1 = panels[1].get_position().extents
    row = int(height * (1 - (y0 + (y1 - y0) * (1 - 1.5 / units))))
    column = int(width * (x0 + (x1 - x0) * 2.5 / steps))
    np.testing.assert_array_equal(image[row, column], [255, 0, 0])


def test_heatmap_size_is_bounded_for_any_model():
    from keras_lstm_variants.heatmaps import gate_heatmap

    for units, steps, scale in [(1, 1, 1), (5, 7, 16), (600, 3000, 16)]:
        gates = {g: np.full((1, steps, units), 0.5) for g in GATES}
        height, width, _ = gate_heatmap(gates, scale=scale).shape
        assert 800 <= width <= 1900 and 400 <= height <= 1500, (units, steps)


def test_units_sorted_by_when_their_forget_gate_switches():
    from keras_lstm_variants.heatmaps import switch_order

    forget = np.zeros((6, 3))
    forget[4:, 0] = 1.0  # unit 0 switches between steps 3 and 4
    forget[1:, 1] = 1.0  # unit 1 between steps 0 and 1
    forget[2:, 2] = 0.8  # unit 2 between steps 1 and 2
    np.testing.assert_array_equal(switch_order(forget), [1, 2, 0])


# Bad input.


def _small_model(layer=None):
    layer = layer or klv.StandardLSTM(2)
    model = keras.Sequential([keras.Input((TIME, FEATURES)), layer])
    model.compile("sgd", "mse")
    return model


def _fit(model, callback):
    x = np.zeros((4, TIME, FEATURES), "float32")
    y = np.zeros((4,) + model.output_shape[1:], "float32")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


@pytest.mark.parametrize(
    "shape", [(2, TIME, 5), (2, TIME + 1, FEATURES), (2, TIME)], ids=str
)
def test_probe_that_does_not_fit_the_model(shape, tmp_path):
    callback = GateHistograms(np.zeros(shape, "float32"), str(tmp_path))
    with pytest.raises(ValueError, match=r"`probe_inputs`.*\(None, 7, 3\)"):
        _fit(_small_model(), callback)


def test_model_without_our_layers(tmp_path):
    callback = GateHistograms(np.zeros((2, TIME, FEATURES)), str(tmp_path))
    with pytest.raises(ValueError, match="no RNN layer whose gates can be read"):
        _fit(_small_model(keras.layers.SimpleRNN(2)), callback)


def test_unwritable_log_dir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    callback = GateHistograms(np.zeros((2, TIME, FEATURES)), str(blocker / "logs"))
    with pytest.raises(ValueError, match=r"`log_dir`: cannot write event files"):
        _fit(_small_model(), callback)


BAD_ARGUMENTS = [
    ({"every_n_epochs": 0}, ValueError, "every_n_epochs"),
    ({"every_n_epochs": 1.0}, TypeError, "every_n_epochs"),
    ({"histogram_buckets": -1}, ValueError, "histogram_buckets"),
    ({"heatmap_scale": True}, TypeError, "heatmap_scale"),
    ({"heatmap_scale": 5000}, ValueError, r"\[1, 16\].*heatmap_scale=5000"),
    ({"heatmap_scale": 2.0}, TypeError, "heatmap_scale"),
    (
        {"histogram_buckets": 10**7},
        ValueError,
        r"\[1, 1000\].*histogram_buckets=10000000",
    ),
    ({"histogram_buckets": "30"}, TypeError, "histogram_buckets"),
    ({"time_labels": 3}, TypeError, "time_labels=3"),
    ({"sort_units": "yes"}, TypeError, "sort_units='yes'"),
    ({"log_dir": None}, TypeError, "log_dir"),
    ({"log_dir": ""}, TypeError, "log_dir"),
    ({"run_name": ""}, TypeError, "run_name"),
    ({"probe_inputs": None}, ValueError, "probe_inputs"),
]


def test_bad_arguments():
    for kwargs, error, match in BAD_ARGUMENTS:
        arguments = {"probe_inputs": np.zeros((1, TIME, FEATURES)), "log_dir": "x"}
        arguments.update(kwargs)
        with pytest.raises(error, match=match):
            GateHistograms(**arguments)


def test_write_gates_outside_training(tmp_path):
    callback = GateHistograms(np.zeros((1, TIME, FEATURES)), str(tmp_path))
    with pytest.raises(RuntimeError, match="between on_train_begin and on_train_end"):
        callback.write_gates(0)


def test_histogram_buckets_match_tensorboards_own():
    from tensorboard.plugins.histogram import summary_v2

    from keras_lstm_variants.summaries import histogram_tensor

    values = np.random.default_rng(3).uniform(0.0, 1.0, (8, 20, 5))
    want = tensor_util.make_ndarray(
        summary_v2.histogram_pb("x", values, buckets=7).value[0].tensor
    )
    got = histogram_tensor(values, 7)
    np.testing.assert_allclose(got[:, :2], want[:, :2], rtol=1e-12)
    np.testing.assert_array_equal(got[:, 2], want[:, 2])
    assert got[:, 2].sum() == values.size


def test_time_labels_must_match_the_probe(tmp_path):
    callback = GateHistograms(
        np.zeros((2, TIME, FEATURES)), str(tmp_path), time_labels="abc"
    )
    with pytest.raises(ValueError, match=r"`time_labels` holds 3 labels.*, 7\."):
        _fit(_small_model(), callback)


# NaN and infinite values never end training.


def _read(log_dir):
    events = event_accumulator.EventAccumulator(
        os.path.join(log_dir, "gates"), size_guidance=SIZE_GUIDANCE
    )
    events.Reload()
    return events


def test_a_nan_in_the_probe_is_logged_not_fatal(tmp_path):
    model = _small_model(klv.PeepholeLSTM(3, name="lstm"))
    rng = np.random.default_rng(0)
    probe = rng.uniform(-1, 1, (4, TIME, FEATURES)).astype("float32")
    probe[1, 3, 0] = np.nan  # sequence 1 is NaN from step 3 on
    callback = GateHistograms(probe, str(tmp_path), histogram_buckets=5)
    with pytest.warns(RuntimeWarning, match=r"layer 'lstm' has NaN"):
        _fit(model, callback)  # ends normally
    gates = gate_activations(model, probe)["lstm"]
    events = _read(str(tmp_path))
    for gate in GATE_NAMES:
        values = gates[gate]
        finite = values[np.isfinite(values)]
        assert finite.size == values.size - 3 * (TIME - 3)
        (histogram,) = _values(events, gate_tag("lstm", gate)).values()
        assert histogram[:, 2].sum() == finite.size
        np.testing.assert_allclose(
            [histogram[0, 0], histogram[-1, 1]], [finite.min(), finite.max()], atol=1e-6
        )
        (fraction,) = _values(
            events, gate_tag("lstm", gate, "nonfinite_fraction")
        ).values()
        assert fraction == pytest.approx(1 - finite.size / values.size)
    for gate in GATES:
        finite = gates[gate][np.isfinite(gates[gate])]
        (mean,) = _values(events, gate_tag("lstm", gate, "mean")).values()
        assert mean == pytest.approx(finite.mean(), abs=1e-6)
    assert gate_tag("lstm", "heatmap") in events.Tags()["tensors"]


def test_a_diverged_model_is_logged_not_fatal(tmp_path):
    model = _small_model(klv.CoupledLSTM(2, name="lstm"))
    model.layers[0].set_weights(
        [np.full(w.shape, np.nan, "float32") for w in model.layers[0].get_weights()]
    )
    callback = GateHistograms(np.ones((2, TIME, FEATURES)), str(tmp_path))
    keras_tensorboard = keras.callbacks.TensorBoard(str(tmp_path), histogram_freq=1)
    x = np.zeros((4, TIME, FEATURES), "float32")
    y = np.zeros((4, 2), "float32")
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        history = model.fit(
            x, y, epochs=2, verbose=0, callbacks=[keras_tensorboard, callback]
        )
    assert len(history.history["loss"]) == 2  # both epochs ran
    events = _read(str(tmp_path))
    tags = events.Tags()["tensors"]
    for gate in GATE_NAMES:
        histograms = _values(events, gate_tag("lstm", gate))
        assert sorted(histograms) == [0, 1]
        assert all(h.shape == (0, 3) for h in histograms.values())  # nothing finite
        fractions = _values(events, gate_tag("lstm", gate, "nonfinite_fraction"))
        assert list(fractions.values()) == [1.0, 1.0]
    assert gate_tag("lstm", "forget_gate", "mean") not in tags
    assert gate_tag("lstm", "heatmap") in tags
