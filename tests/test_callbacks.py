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
            expected[f"gates/{name}/{gate}"] = "histograms"
        for gate in GATES:
            expected[f"gates/{name}/{gate}/mean"] = "scalars"
            expected[f"gates/{name}/{gate}/saturated_fraction"] = "scalars"
        expected[f"gates/{name}/cell_state/mean_abs"] = "scalars"
        expected[f"gates/{name}/heatmap"] = "images"
    assert sorted(run.events.Tags()["tensors"]) == sorted(expected)
    for tag, plugin in expected.items():
        assert _plugin(run.events, tag) == plugin, tag
        assert sorted(_values(run.events, tag)) == run.steps, tag


@pytest.mark.parametrize("variant", RUNS)
def test_histograms_lie_in_their_ranges_and_match_the_gates(runs, variant):
    run = runs[variant]
    for name, units in run.names.items():
        for gate in GATE_NAMES:
            histograms = _values(run.events, f"gates/{name}/{gate}")
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
        expected = {"cell_state/mean_abs": np.abs(gates["cell_state"]).mean()}
        for gate in GATES:
            values = gates[gate].astype(np.float64)
            expected[f"{gate}/mean"] = values.mean()
            expected[f"{gate}/saturated_fraction"] = np.mean(
                (values < 0.05) | (values > 0.95)
            )
        for suffix, value in expected.items():
            logged = _values(run.events, f"gates/{name}/{suffix}")
            for step_value in logged.values():
                assert np.ndim(step_value) == 0
                if suffix != "cell_state/mean_abs":
                    assert 0.0 <= step_value <= 1.0
            np.testing.assert_allclose(
                logged[run.steps[-1]], value, atol=1e-5, err_msg=suffix
            )


@pytest.mark.parametrize("variant", RUNS)
def test_each_image_is_a_png_of_the_expected_size(runs, variant):
    import tensorflow as tf

    run = runs[variant]
    for name, units in run.names.items():
        # Three panels of `units` rows, two one-row white bands, SCALE pixels
        # per row and per time step.
        height, width = SCALE * (3 * units + 2), SCALE * TIME
        for step, image in _values(run.events, f"gates/{name}/heatmap").items():
            assert image.shape == (3,), step
            assert (int(image[0]), int(image[1])) == (width, height)
            assert image[2].startswith(b"\x89PNG\r\n\x1a\n")
            pixels = tf.io.decode_png(image[2]).numpy()
            assert pixels.shape == (height, width, 3)
            # The band under the input-gate panel is white.
            np.testing.assert_array_equal(pixels[SCALE * units], 255)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tensorboard_server_lists_the_gate_tags(runs, tmp_path):
    run = runs["peephole"]
    expected = {f"gates/{name}/{gate}" for name in run.names for gate in GATE_NAMES}
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
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_heatmap_colours_and_bands():
    from keras_lstm_variants.callbacks import gate_heatmap

    units, steps = 2, 3
    gates = {
        "input_gate": np.zeros((1, steps, units)),
        "forget_gate": np.ones((1, steps, units)),
        "output_gate": np.full((1, steps, units), 0.5),
    }
    image = gate_heatmap(gates, scale=2)
    assert image.shape == (2 * (3 * units + 2), 2 * steps, 3)
    assert image.dtype == np.uint8
    rows = image[:, 0]
    # viridis: dark purple for 0, teal for 0.5, yellow for 1.
    dark, middle, yellow = np.array([[68, 1, 84], [33, 145, 140], [253, 231, 37]])
    np.testing.assert_allclose(rows[: 2 * units], [dark] * 4, atol=1)
    np.testing.assert_array_equal(rows[2 * units : 2 * units + 2], 255)  # band
    np.testing.assert_allclose(rows[6:10], [yellow] * 4, atol=1)
    np.testing.assert_allclose(rows[12:], [middle] * 4, atol=1)


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
    with pytest.raises(ValueError, match="no layer that runs a keras_lstm_variants"):
        _fit(_small_model(keras.layers.GRU(2)), callback)


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

    from keras_lstm_variants.callbacks import histogram_tensor

    values = np.random.default_rng(3).uniform(0.0, 1.0, (8, 20, 5))
    want = tensor_util.make_ndarray(
        summary_v2.histogram_pb("x", values, buckets=7).value[0].tensor
    )
    got = histogram_tensor(values, 7)
    np.testing.assert_allclose(got[:, :2], want[:, :2], rtol=1e-12)
    np.testing.assert_array_equal(got[:, 2], want[:, 2])
    assert got[:, 2].sum() == values.size
