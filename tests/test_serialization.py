"""Configs round-trip, and `.keras` files reload without `custom_objects`."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_lstm_variants as klv
from conftest import ALL_CONFIGS
from conftest import CELL_CLASSES
from conftest import LAYER_CLASSES
from conftest import cell_kwargs
from conftest import config_id

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_cell_and_layer_configs_round_trip(config):
    variant, gates = config
    kwargs = dict(
        activation="relu",
        recurrent_activation="hard_sigmoid",
        use_bias=False,
        unit_forget_bias=False,
        kernel_regularizer="l2",
        recurrent_constraint="non_neg",
        dropout=0.25,
        recurrent_dropout=0.125,
        seed=7,
        **cell_kwargs(variant, gates),
    )
    cell = CELL_CLASSES[variant](5, **kwargs)
    clone = CELL_CLASSES[variant].from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    assert clone.peephole_gates == cell.peephole_gates

    layer = LAYER_CLASSES[variant](
        5, return_sequences=True, go_backwards=True, zero_output_for_mask=True, **kwargs
    )
    config = layer.get_config()
    assert "cell" not in config  # flat, like keras.layers.LSTM
    for name, value in kwargs.items():
        assert getattr(layer, name) is not None
        if name in ("dropout", "recurrent_dropout", "seed", "use_bias"):
            assert getattr(layer, name) == value
    assert tuple(config.get("peephole_gates", ())) == tuple(gates)
    clone = LAYER_CLASSES[variant].from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is type(layer) and revived.get_config() == config


def test_layer_properties_are_read_only():
    layer = klv.PeepholeLSTM(3, peephole_gates=("output",))
    assert layer.units == 3 and layer.peephole_gates == ("output",)
    with pytest.raises(AttributeError):
        layer.units = 4


def test_keras_file_reloads_in_a_fresh_process_without_custom_objects(tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 6, 4)).astype("float32")
    inputs = keras.Input((None, 4))
    masked = keras.layers.Masking()(inputs)
    a = klv.PeepholeLSTM(5, peephole_gates=("forget",), return_sequences=True)(masked)
    b = keras.layers.Bidirectional(klv.CoupledLSTM(4, return_sequences=True))(a)
    c = keras.layers.RNN(
        [klv.StandardLSTMCell(3), klv.CoupledLSTMCell(2, peephole_gates=("output",))],
        return_sequences=True,
    )(b)
    d = klv.StandardLSTM(3, go_backwards=True)(c)
    model = keras.Model(inputs, [c, d])
    model.compile("adam", "mse")
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    for k, y in enumerate(model(x)):
        np.save(tmp_path / f"y{k}.npy", keras.ops.convert_to_numpy(y))

    script = textwrap.dedent(
        """
        import sys
        import keras
        import numpy as np
        import keras_lstm_variants  # registers the classes; no custom_objects

        d = sys.argv[1]
        model = keras.saving.load_model(d + "/model.keras")
        outputs = model(np.load(d + "/x.npy"))
        for k, y in enumerate(outputs):
            got = keras.ops.convert_to_numpy(y)
            np.testing.assert_array_equal(got, np.load(d + f"/y{k}.npy"))
        kinds = sorted({type(l).__name__ for l in model.layers})
        print("OK", kinds)
        """
    )
    stdout = _run_script(script, tmp_path, TF_CPP_MIN_LOG_LEVEL="3")
    assert "OK" in stdout and "PeepholeLSTM" in stdout


# Issue 10.7: a file saved with use_fast_path=True loads on every backend.


def test_use_fast_path_true_loads_on_any_backend(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    if keras.backend.backend() != "tensorflow":
        config = {"units": 3, "use_fast_path": True, "name": "fast"}
        with pytest.warns(UserWarning, match="use_fast_path=True.*generic loop"):
            layer = klv.CoupledLSTM.from_config(config)
        assert layer.use_fast_path == "auto"
        assert layer(x).shape == (2, 3)
        return
    layer = klv.CoupledLSTM(3, use_fast_path=True, name="fast")
    model = keras.Sequential([keras.Input((5, 3)), layer])
    model.save(tmp_path / "fast.keras")
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x)))
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        """
        import sys, warnings
        import keras
        import numpy as np
        import keras_lstm_variants  # noqa: F401

        d = sys.argv[1]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = keras.saving.load_model(d + "/fast.keras")
        assert any("use_fast_path=True" in str(w.message) for w in caught)
        got = keras.ops.convert_to_numpy(model(np.load(d + "/x.npy")))
        np.testing.assert_allclose(got, np.load(d + "/y.npy"), atol=1e-5)
        print("OK", keras.backend.backend())
        """
    )
    assert "OK jax" in _run_script(script, tmp_path, KERAS_BACKEND="jax")


# Files saved by version 0.1.0 (tests/data/make_v0_1_0_files.py) keep loading.

V010 = os.path.join(ROOT, "tests", "data", "v0_1_0")


def _v010_index():
    import json

    with open(os.path.join(V010, "index.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(_v010_index()["files"]))
def test_files_saved_by_0_1_0_load_and_give_the_same_outputs(name):
    saved_with = _v010_index()["keras"]
    if _version(keras.__version__) < _version(saved_with):
        pytest.skip(
            f"the files were saved by Keras {saved_with}, whose initializer "
            f"configs Keras {keras.__version__} cannot read"
        )
    model = keras.saving.load_model(os.path.join(V010, f"{name}.keras"))
    x = np.load(os.path.join(V010, "inputs.npy"))
    expected = np.load(os.path.join(V010, f"{name}-outputs.npz"))
    outputs = model(x)
    for k, y in enumerate(outputs):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(y), expected[f"arr_{k}"], atol=1e-5, rtol=1e-5
        )
    layer = model.get_layer("layer")
    assert layer.recurrent_dropout == 0.1
    assert keras.activations.serialize(layer.activation) == "relu"


def _version(text):
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def _run_script(script, directory, **env):
    """Runs `script` in a fresh process (this checkout first on the path, with
    `directory` as its argument); returns its stdout, failing on an error."""
    env = {**os.environ, "PYTHONPATH": ROOT, **env}
    result = subprocess.run(
        [sys.executable, "-c", script, str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.LSTM(3, activity_regularizer="l2"),
        lambda: klv.StandardLSTM(3, activity_regularizer="l2"),
        lambda: klv.PeepholeLSTM(3, activity_regularizer="l2"),
        lambda: klv.CoupledLSTM(3, activity_regularizer="l2"),
        lambda: klv.LSTMVariant(3, variant="NOAF", activity_regularizer="l2"),
        lambda: klv.GRU(3, activity_regularizer="l2"),
        lambda: klv.DepthGatedLSTM(3, activity_regularizer="l2"),
        lambda: klv.ClockworkRNN(4, periods=(1, 2), activity_regularizer="l2"),
    ],
    ids=[
        "keras", "standard", "peephole", "coupled", "variant", "gru", "depth",
        "clockwork",
    ],  # fmt: skip
)
def test_activity_regularizer_survives_a_keras_file(make, tmp_path):
    # As in the configs of keras.layers.LSTM and GRU: the penalty on the
    # layer's output is still there after a reload, with the same value.
    # One sequence: Keras 3.15 divides an activity penalty by the batch size,
    # Keras 3.10 (the floor) does not.
    x = np.random.default_rng(0).standard_normal((1, 5, 2)).astype("float32")
    model = keras.Sequential([keras.Input((5, 2)), make()])
    output = keras.ops.convert_to_numpy(model(x))
    expected = 0.01 * np.sum(output.astype("float64") ** 2)  # L2's default 0.01
    penalty = keras.ops.convert_to_numpy(model.losses[0])
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.layers[0].activity_regularizer, keras.regularizers.L2)
    reloaded(x)
    penalty = keras.ops.convert_to_numpy(reloaded.losses[0])
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)
