"""Distributed training: `tf.distribute.MirroredStrategy` over two logical CPU
devices and `keras.distribution.DataParallel` on JAX over two host devices
give the single-device weights, for every layer.

Devices must be set up before TensorFlow or JAX starts, so the models train in
subprocesses (`distributed_runs.py`, which says what each one does): one model
holding every layer (on TensorFlow each layer twice, on its fast path and on
the generic loop) trains for three SGD steps on one batch of 8, once on one
device and once under the distribution, from the same initial weights. With a
mean-reduced loss the replicas' averaged gradients are the single device's, so
the weights must agree to float rounding. Under MirroredStrategy the
distributed run also logs `GateHistograms`, saves a `.keras` file and
exports a SavedModel with `export_saved_model`; on JAX it saves a `.keras`
file and reads `gate_activations`. A fresh process, which never built the
model, reloads the files.

The two backends' processes run side by side, once per session, also under
`pytest -n 2`: the first test that needs them starts them, others wait.
"""

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from distributed_runs import BATCH
from distributed_runs import PROBE
from distributed_runs import STEPS
from distributed_runs import TIME
from distributed_runs import UNITS
from distributed_runs import layer_names

from keras_lstm_variants import GATE_NAMES
from keras_lstm_variants import signature_key
from keras_lstm_variants.sites import summary_tag

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "distributed_runs.py"
ATOL = 1e-5

TF_LAYERS = list(layer_names("tensorflow"))
JAX_LAYERS = list(layer_names("jax"))


def _run(mode, work, backend, extra_env=()):
    """Runs one mode of the script; returns its stderr on failure, else None."""
    env = dict(os.environ)
    # The package of this checkout, not whatever the environment installed.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p
    )
    env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **dict(extra_env))
    try:
        result = subprocess.run(
            [sys.executable, str(SCRIPT), mode, str(work)],
            capture_output=True, text=True, env=env, cwd=str(work), timeout=600,
        )
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr or b""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        return f"{mode} timed out after {e.timeout} s:\n{stderr[-6000:]}"
    if result.returncode:
        return f"{mode} failed ({result.returncode}):\n{result.stderr[-6000:]}"
    return None


#: name: (modes run in order, backend, extra environment)
CHAINS = {
    "mirrored": (["tf-train", "tf-load"], "tensorflow", {}),
    "data_parallel": (
        ["jax-train", "jax-load"],
        "jax",
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    ),
}


def _jax_importable():
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _chain(name, root):
    modes, backend, extra_env = CHAINS[name]
    work = root / f"distribution-{name}"
    work.mkdir()
    start, error = time.perf_counter(), None
    for mode in modes:
        error = _run(mode, work, backend, extra_env)
        if error:
            break
    (work / "status.json").write_text(
        json.dumps({"error": error, "seconds": time.perf_counter() - start})
    )


def _work(tmp_path_factory, name):
    """The work directory of chain `name`; fails the test if a process failed.

    The first test of the session to get here runs both chains at once (one
    per core), also across xdist workers: the others wait for the results.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    with open(root / "distribution.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "distribution-mirrored").exists():
            names = [n for n in CHAINS if n != "data_parallel" or _jax_importable()]
            threads = [
                threading.Thread(target=_chain, args=(n, root)) for n in names
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    work = root / f"distribution-{name}"
    error = json.loads((work / "status.json").read_text())["error"]
    if error:
        pytest.fail(error, pytrace=False)
    return work


class Results:
    """The `.npz` files and `info-*.json` a run wrote."""

    def __init__(self, work):
        self.work = work
        self.arrays = {
            p.stem: dict(np.load(p)) for p in work.glob("*.npz")
        }
        self.info = {
            p.stem.removeprefix("info-"): json.loads(p.read_text())
            for p in work.glob("info-*.json")
        }

    def weights(self, kind, layer):
        """`{variable path: array}` of one layer, `kind` in initial, single,
        distributed."""
        arrays = self.arrays[kind]
        return {k: v for k, v in arrays.items() if k.split("/")[0] == layer}


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    return Results(_work(tmp_path_factory, "mirrored"))


@pytest.fixture(scope="module")
def data_parallel(tmp_path_factory):
    pytest.importorskip("jax", reason="JAX is not installed: no DataParallel test")
    return Results(_work(tmp_path_factory, "data_parallel"))


def _assert_trained_alike(results, layer):
    initial = results.weights("initial", layer)
    single = results.weights("single", layer)
    distributed = results.weights("distributed", layer)
    assert sorted(single) == sorted(distributed) == sorted(initial)
    assert single, f"no weights for {layer}"
    for path, want in single.items():
        # The steps moved every weight array, so agreeing says something.
        assert np.abs(want - initial[path]).max() > 1e-2, path
        np.testing.assert_allclose(
            distributed[path], want, atol=ATOL, rtol=0, err_msg=path
        )


# ---------------------------------------------------------------------------
# TensorFlow: MirroredStrategy over two logical CPU devices.


def test_mirrored_strategy_really_mirrors(mirrored):
    info = mirrored.info["tf-train"]
    assert info["package"] == str(HERE.parent / "keras_lstm_variants")
    assert info["backend"] == "tensorflow"
    assert info["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert info["replicas"] == 2
    assert set(info["variables"].values()) == {"MirroredVariable"}
    # The fast path is taken under the strategy (use_fast_path=True insists).
    for name in TF_LAYERS:
        want = None if name.endswith("_fast") else "use_fast_path=False"
        assert info["fallback"][name] == want, name


@pytest.mark.parametrize("layer", [*TF_LAYERS, "head"])
def test_mirrored_weights_equal_single_device(mirrored, layer):
    _assert_trained_alike(mirrored, layer)


def test_mirrored_model_predicts_as_single_device(mirrored):
    outputs = mirrored.arrays["outputs"]
    assert outputs["predict"].shape == (BATCH, 2)
    np.testing.assert_allclose(
        outputs["predict"], outputs["single_predict"], atol=ATOL, rtol=0
    )


@pytest.fixture(scope="module")
def gate_events(mirrored):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    from tensorboard.util import tensor_util

    events = event_accumulator.EventAccumulator(
        str(mirrored.work / "logs" / "gates"),
        size_guidance={event_accumulator.TENSORS: 0},
    )
    events.Reload()
    return {
        tag: {
            e.step: tensor_util.make_ndarray(e.tensor_proto)
            for e in events.Tensors(tag)
        }
        for tag in events.Tags()["tensors"]
    }


@pytest.mark.parametrize("layer", TF_LAYERS)
def test_gate_histograms_under_mirrored_strategy(mirrored, gate_events, layer):
    for gate in GATE_NAMES:
        histograms = gate_events[summary_tag(layer, gate)]
        assert sorted(histograms) == list(range(STEPS)), gate
        for histogram in histograms.values():
            assert histogram[:, 2].sum() == PROBE * TIME * UNITS, gate
    # The last epoch's scalars are those of the trained model's gates.
    gates = mirrored.arrays["outputs"]
    for gate in ("input_gate", "forget_gate", "output_gate"):
        logged = gate_events[summary_tag(layer, gate, "mean")][STEPS - 1]
        want = gates[f"{layer}/{gate}"].astype(np.float64).mean()
        np.testing.assert_allclose(logged, want, atol=ATOL, err_msg=gate)
    assert summary_tag(layer, "heatmap") in gate_events


def test_mirrored_keras_file_reloads_in_a_fresh_process(mirrored):
    # tf-load imports the package and calls load_model without custom_objects.
    np.testing.assert_allclose(
        mirrored.arrays["reloaded"]["keras"],
        mirrored.arrays["outputs"]["predict"],
        atol=ATOL,
        rtol=0,
    )


def test_export_saved_model_of_the_mirrored_model(mirrored):
    reloaded = mirrored.arrays["reloaded"]
    outputs = mirrored.arrays["outputs"]
    np.testing.assert_allclose(
        reloaded["serving_default"], outputs["predict"], atol=ATOL, rtol=0
    )
    for layer in TF_LAYERS:
        for gate in GATE_NAMES:
            np.testing.assert_allclose(
                reloaded[f"gates/{signature_key(layer, gate)}"],
                outputs[f"{layer}/{gate}"],
                atol=ATOL,
                rtol=0,
                err_msg=f"{layer}/{gate}",
            )


# ---------------------------------------------------------------------------
# JAX: keras.distribution.DataParallel over two host devices.


def test_data_parallel_really_uses_two_devices(data_parallel):
    info = data_parallel.info["jax-train"]
    assert info["package"] == str(HERE.parent / "keras_lstm_variants")
    assert info["backend"] == "jax"
    assert info["devices"] == ["cpu:0", "cpu:1"]
    assert info["batch_axes"][0] == "batch"  # each batch split over the mesh
    for path, (sharding, n_devices) in info["shardings"].items():
        assert n_devices == 2, (path, sharding)  # replicated on both
    for name in JAX_LAYERS:
        assert "TensorFlow backend" in info["fallback"][name]


@pytest.mark.parametrize("layer", [*JAX_LAYERS, "head"])
def test_data_parallel_weights_equal_single_device(data_parallel, layer):
    _assert_trained_alike(data_parallel, layer)


def test_data_parallel_keras_file_reloads_in_a_fresh_process(data_parallel):
    np.testing.assert_allclose(
        data_parallel.arrays["reloaded"]["keras"],
        data_parallel.arrays["outputs"]["predict"],
        atol=ATOL,
        rtol=0,
    )


@pytest.mark.parametrize("layer", JAX_LAYERS)
def test_gate_activations_of_the_data_parallel_model(data_parallel, layer):
    got = data_parallel.arrays["outputs"]
    want = data_parallel.arrays["single_gates"]
    for gate in GATE_NAMES:
        key = f"{layer}/{gate}"
        assert got[key].shape == (PROBE, TIME, UNITS), key
        np.testing.assert_allclose(got[key], want[key], atol=ATOL, rtol=0, err_msg=key)
