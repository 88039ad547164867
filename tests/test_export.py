"""Deployment: Keras's `model.export`, `export_saved_model` with its `gates`
signature, TensorFlow Lite, stateful layers, and writing over existing paths.

Every reload runs in one subprocess per module (TensorFlow start-up is slow), in
which `keras_lstm_variants` cannot be imported. The parent builds the models,
exports and converts them, and computes the expected values: the Keras model's
own outputs, and gate values from the float64 NumPy reference or from
`inspection.record_gates`. The subprocess only loads, runs and saves.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from numpy_reference import cell_weights
from numpy_reference import lstm_step
from numpy_reference import to_numpy

import keras_lstm_variants as klv
from conftest import randomize_weights
from keras_lstm_variants import equations
from keras_lstm_variants import inspection
from keras_lstm_variants import sites

FEATURES = 3
#: (batch, time) pairs fed after export: none of them is seen at export time.
SHAPES = [(1, 4), (1, 11), (5, 4), (5, 11)]
#: TensorFlow Lite: fixed at conversion.
TFLITE_BATCH, TFLITE_TIME = 2, 7


# ---------------------------------------------------------------------------
# Models and references.


def _model(kind):
    """The models under test; layers named so that signature keys are fixed."""
    if kind == "masked":
        inputs = keras.Input((None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(10, FEATURES, mask_zero=True, name="embed")(inputs)
        outputs = klv.StandardLSTM(4, return_sequences=True, name="standard")(x)
        return keras.Model(inputs, outputs)
    inputs = keras.Input((None, FEATURES), name="x")
    if kind == "plain":
        outputs = klv.PeepholeLSTM(4, name="peephole")(inputs)
    elif kind == "bidirectional":
        outputs = keras.layers.Bidirectional(
            klv.CoupledLSTM(
                4, peephole_gates=("forget", "output"), return_sequences=True,
                name="coupled",
            ),
            name="bidi",
        )(inputs)
    elif kind == "stacked":
        outputs = keras.layers.RNN(
            [klv.StandardLSTMCell(4, name="low"), klv.PeepholeLSTMCell(3, name="high")],
            return_sequences=True,
            name="stack",
        )(inputs)
    elif kind == "return_state":
        outputs = klv.CoupledLSTM(
            4, return_state=True, go_backwards=True, name="coupled"
        )(inputs)
    elif kind == "unrolled":
        inputs = keras.Input((6, FEATURES), name="x")
        outputs = klv.PeepholeLSTM(4, unroll=True, name="peephole")(inputs)
    return keras.Model(inputs, outputs)


def _stateful_model():
    inputs = keras.Input((None, FEATURES), batch_size=2, name="x")
    x = klv.PeepholeLSTM(4, stateful=True, return_sequences=True, name="first")(
        inputs
    )
    outputs = keras.layers.RNN(
        [klv.StandardLSTMCell(3, name="low"), klv.CoupledLSTMCell(2, name="high")],
        stateful=True,
        return_sequences=True,
        name="stack",
    )(x)
    return keras.Model(inputs, outputs)


def _randomized(model, seed):
    for k, layer in enumerate(model.layers):
        if layer.weights:
            randomize_weights(layer, seed + k)
    return model


def _feed(kind, batch, time, seed):
    rng = np.random.default_rng(seed)
    if kind != "masked":
        return rng.standard_normal((batch, time, FEATURES)).astype("float32")
    tokens = rng.integers(1, 10, (batch, time)).astype("int32")
    for row, length in enumerate(rng.integers(1, time + 1, batch)):
        tokens[row, length:] = 0  # right padding, masked
    return tokens


def reference_gates(x, cell, coupled, h0=None, c0=None):
    """Float64 NumPy gates of one cell over a sequence: {gate: (b, t, units)}."""
    weights = cell_weights(cell)
    x = np.asarray(x, np.float64)
    units = cell.units
    h = np.zeros((x.shape[0], units)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((x.shape[0], units)) if c0 is None else np.asarray(c0, np.float64)
    steps = []
    for t in range(x.shape[1]):
        values = lstm_step(x[:, t], h, c, weights, coupled)
        c, h = values[4], values[5]
        steps.append(values)
    return {
        gate: np.stack([s[k] for s in steps], axis=1)
        for k, gate in enumerate(klv.GATE_NAMES)
    }


def _expected_gates(kind, model, x):
    """Expected `gates` signature outputs, keyed by the documented rule."""
    key = sites.signature_key
    if kind == "plain":
        ref = {"peephole": reference_gates(x, model.layers[1].cell, False)}
    elif kind == "bidirectional":
        bidi = model.layers[1]
        backward = reference_gates(x[:, ::-1], bidi.backward_layer.cell, True)
        ref = {
            "bidi/forward_coupled": reference_gates(x, bidi.forward_layer.cell, True),
            "bidi/backward_coupled": {k: v[:, ::-1] for k, v in backward.items()},
        }
    elif kind == "stacked":
        low, high = model.layers[1].cell.cells
        low_gates = reference_gates(x, low, False)
        ref = {
            "stack/low": low_gates,
            "stack/high": reference_gates(low_gates["hidden_state"], high, False),
        }
    else:  # masked steps and go_backwards: the inspection module's values
        with inspection.record_gates(model) as recorded:
            model(x)
        ref = {
            name: {g: to_numpy(v) for g, v in gates.items()}
            for name, gates in recorded.items()
        }
    return {
        key(name, gate): values[gate]
        for name, values in ref.items()
        for gate in klv.GATE_NAMES
    }


def _outputs(model, x, **kwargs):
    y = model(x, **kwargs)
    return [to_numpy(t) for t in (y if isinstance(y, (list, tuple)) else [y])]


# ---------------------------------------------------------------------------
# The subprocess that reloads everything.

RELOADER = textwrap.dedent(
    """
    import json
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "keras_lstm_variants":
                raise ImportError("keras_lstm_variants is blocked in this process")

    sys.meta_path.insert(0, Blocker())
    try:
        import keras_lstm_variants  # noqa: F401
    except ImportError:
        blocked = True
    else:
        blocked = False

    import keras
    import numpy as np
    import tensorflow as tf

    work = sys.argv[1]
    plan = json.load(open(work + "/plan.json"))
    feeds = np.load(work + "/feeds.npz")
    results, report = {}, {"blocked": blocked, "errors": {}}

    def model_key(keys, named):
        (key,) = [k for k in keys if k not in named]
        return key

    def arguments(task, keys):
        named = dict(task.get("named", {}))
        args = {k: feeds[v] for k, v in named.items()}
        args[model_key(keys, named)] = feeds[task["input"]]
        return args

    loaded = {}
    for task in plan:
        op, tid = task["op"], task["id"]
        if op in ("signature", "wrong_signature", "wrong_serve"):
            if task["path"] not in loaded:
                loaded[task["path"]] = tf.saved_model.load(task["path"])
            obj = loaded[task["path"]]
            fn = obj.signatures[task.get("signature", "serving_default")]
            keys = list(fn.structured_input_signature[1])
            try:
                if op == "wrong_serve":
                    out = obj.serve(tf.constant(feeds[task["input"]]))
                else:
                    args = arguments(task, keys)
                    out = fn(**{k: tf.constant(v) for k, v in args.items()})
            except Exception as e:
                report["errors"][tid] = [type(e).__name__, str(e)[:2000]]
                continue
            for k, v in out.items():
                results[f"{tid}/{k}"] = v.numpy()
        elif op == "tfsm_layer":
            spec = task["spec"]
            inputs = keras.Input(tuple(spec["shape"]), dtype=spec["dtype"])
            layer = keras.layers.TFSMLayer(task["path"], call_endpoint="serve")
            outputs = layer(inputs)
            model = keras.Model(inputs, outputs)
            y = model(feeds[task["input"]])
            for k, v in enumerate(y if isinstance(y, (list, tuple)) else [y]):
                results[f"{tid}/output_{k}"] = keras.ops.convert_to_numpy(v)
        elif op == "tflite":
            interpreter = tf.lite.Interpreter(model_path=task["path"])
            runner = interpreter.get_signature_runner("serving_default")
            keys = list(runner.get_input_details())
            named = dict(task.get("named", {}))
            chunks = task["chunks"] if "chunks" in task else [task["input"]]
            for step, chunk in enumerate(chunks):
                args = {k: feeds[v] if isinstance(v, str) else v
                        for k, v in named.items()}
                args[model_key(keys, named)] = feeds[chunk]
                out = runner(**args)
                for k, v in out.items():
                    results[f"{tid}/{step}/{k}"] = v
                # Stateful chunks: feed the returned states back.
                named = {k: out[k] for k in named}
    report["modules"] = sorted(
        m for m in sys.modules if m.split(".")[0] == "keras_lstm_variants"
    )
    np.savez(work + "/results.npz", **results)
    json.dump(report, open(work + "/report.json", "w"))
    print("OK")
    """
)


class Reloaded:
    """What the subprocess returned, with the parent's expectations."""

    def __init__(self, results, report, expected):
        self.results, self.report, self.expected = results, report, expected

    def outputs(self, tid, prefix=""):
        keys = sorted(
            (k for k in self.results if k.startswith(f"{tid}/{prefix}")),
            key=lambda k: (len(k), k),
        )
        return {k.split("/")[-1]: self.results[k] for k in keys}


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    work = tmp_path_factory.mktemp("export")
    feeds, plan, expected = {}, [], {}

    def add_feed(name, value):
        feeds[name] = value
        return name

    kinds = ["plain", "bidirectional", "stacked", "masked", "return_state"]
    for seed, kind in enumerate(kinds):
        model = _randomized(_model(kind), 100 * seed)
        keras_path = str(work / f"keras_{kind}")
        ours_path = str(work / f"ours_{kind}")
        model.export(keras_path, verbose=False)
        klv.export_saved_model(model, ours_path)
        for batch, time in SHAPES:
            x = _feed(kind, batch, time, seed=batch * 100 + time)
            name = add_feed(f"{kind}_{batch}_{time}", x)
            expected[f"{kind}/{batch}/{time}"] = _outputs(model, x)
            expected[f"{kind}/{batch}/{time}/gates"] = _expected_gates(kind, model, x)
            for which, path in (("keras", keras_path), ("ours", ours_path)):
                plan.append(
                    {"op": "signature", "id": f"{which}/{kind}/{batch}/{time}",
                     "path": path, "input": name}
                )
            plan.append(
                {"op": "signature", "id": f"gates/{kind}/{batch}/{time}",
                 "path": ours_path, "signature": "gates", "input": name}
            )
        spec = {"shape": list(model.inputs[0].shape[1:]),
                "dtype": model.inputs[0].dtype}
        for which, path in (("keras", keras_path), ("ours", ours_path)):
            plan.append(
                {"op": "tfsm_layer", "id": f"tfsm/{which}/{kind}", "path": path,
                 "spec": spec, "input": f"{kind}_5_11"}
            )
        # TensorFlow Lite, fixed (batch, time).
        x = _feed(kind, TFLITE_BATCH, TFLITE_TIME, seed=7 + seed)
        expected[f"tflite/{kind}"] = _outputs(model, x)
        tflite_path = klv.export_tflite(
            model, str(work / f"{kind}.tflite"), sequence_length=TFLITE_TIME,
            batch_size=TFLITE_BATCH,
        )
        plan.append({"op": "tflite", "id": f"tflite/{kind}", "path": tflite_path,
                     "input": add_feed(f"tflite_{kind}", x)})
        if kind == "plain":
            bad = np.zeros((2, 5, FEATURES + 1), "float32")
            add_feed("wrong", bad)
            for which, path in (("keras", keras_path), ("ours", ours_path)):
                plan.append({"op": "wrong_signature", "id": f"wrong/{which}",
                             "path": path, "input": "wrong"})
            plan.append({"op": "wrong_serve", "id": "wrong/serve",
                         "path": keras_path, "input": "wrong"})

    # TensorFlow Lite with a dynamic batch: an unrolled layer.
    model = _randomized(_model("unrolled"), 900)
    path = klv.export_tflite(
        model, str(work / "unrolled.tflite"), sequence_length=6, batch_size=None
    )
    for batch in (1, 3):
        x = _feed("unrolled", batch, 6, seed=batch)
        expected[f"tflite/unrolled/{batch}"] = _outputs(model, x)
        plan.append({"op": "tflite", "id": f"tflite/unrolled/{batch}", "path": path,
                     "input": add_feed(f"unrolled_{batch}", x)})

    # Stateful: states as explicit inputs and outputs.
    model = _randomized(_stateful_model(), 500)
    path = klv.export_saved_model(model, str(work / "stateful"))
    expected["stateful/model"] = model
    expected["stateful/variables"] = [to_numpy(v) for v in model.non_trainable_weights]
    state_keys = _state_keys(model)
    rng = np.random.default_rng(5)
    whole = rng.standard_normal((3, 9, FEATURES)).astype("float32")
    expected["stateful/whole"] = whole
    add_feed("stateful_whole", whole)
    add_feed("stateful_a", whole[:, :4])
    zeros = {k: add_feed(f"zero_{k}", np.zeros((3, n), "float32"))
             for k, n in state_keys.items()}
    plan.append({"op": "signature", "id": "stateful/a", "path": path,
                 "input": "stateful_a", "named": zeros})
    plan.append({"op": "signature", "id": "stateful/again", "path": path,
                 "input": "stateful_a", "named": zeros})
    # Random start states: the whole sequence from them, outputs and gates.
    starts = {k: rng.standard_normal((3, n)).astype("float32")
              for k, n in state_keys.items()}
    expected["stateful/starts"] = starts
    named = {k: add_feed(f"start_{k}", v) for k, v in starts.items()}
    plan.append({"op": "signature", "id": "stateful/gates", "path": path,
                 "signature": "gates", "input": "stateful_whole", "named": named})
    plan.append({"op": "signature", "id": "stateful/from_starts", "path": path,
                 "input": "stateful_whole", "named": named})
    tflite_path = klv.export_tflite(
        model, str(work / "stateful.tflite"), sequence_length=4, batch_size=3
    )
    add_feed("stateful_c", whole[:, 4:8])
    plan.append({"op": "tflite", "id": "tflite/stateful", "path": tflite_path,
                 "chunks": ["stateful_a", "stateful_c"], "named": zeros})

    np.savez(work / "feeds.npz", **feeds)
    (work / "plan.json").write_text(json.dumps(plan))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", RELOADER, str(work)],
        capture_output=True, text=True, env=env, cwd=str(work), timeout=600,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-4000:]
    results = dict(np.load(work / "results.npz"))
    report = json.loads((work / "report.json").read_text())
    return Reloaded(results, report, expected)


def _state_keys(model):
    """`{signature key: units}` of every state of the stateful model."""
    key = sites.signature_key
    keys = {}
    for name, cell in (("first", None), ("stack/low", 0), ("stack/high", 1)):
        layer = model.get_layer(name.split("/")[0])
        units = layer.cell.units if cell is None else layer.cell.cells[cell].units
        for state in equations.STATE_NAMES:
            keys[key(name, state)] = units
    return keys


# ---------------------------------------------------------------------------
# Reloading without the package.

KINDS = ["plain", "bidirectional", "stacked", "masked", "return_state"]


def test_reload_process_cannot_import_the_package(reloaded):
    assert reloaded.report["blocked"] is True
    assert reloaded.report["modules"] == []


@pytest.mark.parametrize("which", ["keras", "ours"])
@pytest.mark.parametrize("kind", KINDS)
def test_serving_default_matches_keras_for_unseen_shapes(reloaded, kind, which):
    for batch, time in SHAPES:
        got = reloaded.outputs(f"{which}/{kind}/{batch}/{time}")
        want = reloaded.expected[f"{kind}/{batch}/{time}"]
        assert list(got) == [f"output_{k}" for k in range(len(want))]
        for g, w in zip(got.values(), want, strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("which", ["keras", "ours"])
@pytest.mark.parametrize("kind", KINDS)
def test_tfsm_layer_reloads_in_a_new_keras_model(reloaded, kind, which):
    got = reloaded.outputs(f"tfsm/{which}/{kind}")
    want = reloaded.expected[f"{kind}/5/11"]
    assert len(got) == len(want)
    for g, w in zip(got.values(), want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_gates_signature_matches_reference(reloaded, kind):
    for batch, time in SHAPES:
        got = reloaded.outputs(f"gates/{kind}/{batch}/{time}")
        want = reloaded.expected[f"{kind}/{batch}/{time}/gates"]
        assert sorted(got) == sorted(want)
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, atol=1e-5, rtol=1e-5)


def test_gates_signature_keys_follow_the_documented_rule(reloaded):
    keys = set(reloaded.outputs("gates/bidirectional/1/4"))
    assert "bidi__forward_coupled__forget_gate" in keys
    assert "bidi__backward_coupled__input_gate" in keys
    assert len(keys) == 2 * len(klv.GATE_NAMES)
    keys = set(reloaded.outputs("gates/stacked/1/4"))
    assert {"stack__low__candidate", "stack__high__cell_state"} <= keys


def test_wrong_feature_size_fails_with_a_signature_error(reloaded):
    errors = reloaded.report["errors"]
    # Keras's export: the restored function refuses the input spec...
    kind, message = errors["wrong/serve"]
    assert kind == "TypeError" and "Can not cast TensorSpec" in message
    # ... and its signature fails inside the graph (no output).
    kind, message = errors["wrong/keras"]
    assert kind == "InvalidArgumentError"
    # Ours checks the input against the signature's shape first.
    kind, message = errors["wrong/ours"]
    assert kind == "InvalidArgumentError"
    assert "not compatible with expected shape [?,?,3]" in message
    assert not reloaded.outputs("wrong/keras") and not reloaded.outputs("wrong/ours")


# ---------------------------------------------------------------------------
# TensorFlow Lite.


@pytest.mark.parametrize("kind", KINDS)
def test_tflite_matches_keras(reloaded, kind):
    got = reloaded.outputs(f"tflite/{kind}", prefix="0/")
    want = reloaded.expected[f"tflite/{kind}"]
    assert len(got) == len(want)
    for g, w in zip(got.values(), want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


def test_tflite_unrolled_layer_keeps_a_dynamic_batch(reloaded):
    for batch in (1, 3):
        (got,) = reloaded.outputs(f"tflite/unrolled/{batch}", prefix="0/").values()
        (want,) = reloaded.expected[f"tflite/unrolled/{batch}"]
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------
# Stateful layers.


def _stateful_reference(model, x, starts=None):
    """Float64 gates of the stateful model's three cells, chained."""
    key = sites.signature_key
    starts = starts or {}

    def run(name, cell, inputs, coupled):
        return reference_gates(
            inputs, cell, coupled,
            starts.get(key(name, "hidden_state")),
            starts.get(key(name, "cell_state")),
        )

    first = run("first", model.get_layer("first").cell, x, False)
    low_cell, high_cell = model.get_layer("stack").cell.cells
    low = run("stack/low", low_cell, first["hidden_state"], False)
    high = run("stack/high", high_cell, low["hidden_state"], True)
    return {"first": first, "stack/low": low, "stack/high": high}


def test_stateful_export_carries_states_as_inputs_and_outputs(reloaded):
    model = reloaded.expected["stateful/model"]
    whole = reloaded.expected["stateful/whole"]
    ref = _stateful_reference(model, whole)
    first = reloaded.outputs("stateful/a")
    # The first chunk from zero states: outputs and final states.
    np.testing.assert_allclose(
        first["output_0"], ref["stack/high"]["hidden_state"][:, :4], atol=1e-5
    )
    for name, gates in ref.items():
        for state in equations.STATE_NAMES:
            got = first[sites.signature_key(name, state)]
            np.testing.assert_allclose(got, gates[state][:, 3], atol=1e-5)
    # No state hides in variables: the same call gives the same answer.
    again = reloaded.outputs("stateful/again")
    for k, v in first.items():
        np.testing.assert_array_equal(again[k], v)
    # The Keras model's own state variables were not touched by the export.
    for v, before in zip(
        model.non_trainable_weights, reloaded.expected["stateful/variables"],
        strict=True,
    ):
        np.testing.assert_array_equal(to_numpy(v), before)


def test_stateful_export_starts_from_the_given_states(reloaded):
    model = reloaded.expected["stateful/model"]
    starts = reloaded.expected["stateful/starts"]
    ref = _stateful_reference(model, reloaded.expected["stateful/whole"], starts)
    got = reloaded.outputs("stateful/from_starts")
    np.testing.assert_allclose(
        got["output_0"], ref["stack/high"]["hidden_state"], atol=1e-5
    )
    gates = reloaded.outputs("stateful/gates")
    assert len(gates) == 3 * len(klv.GATE_NAMES)
    for name, values in ref.items():
        for gate in klv.GATE_NAMES:
            np.testing.assert_allclose(
                gates[sites.signature_key(name, gate)], values[gate], atol=1e-5
            )


def test_stateful_tflite_streams_in_chunks(reloaded):
    model = reloaded.expected["stateful/model"]
    ref = _stateful_reference(model, reloaded.expected["stateful/whole"][:, :8])
    chunks = [reloaded.outputs("tflite/stateful", prefix=f"{k}/") for k in (0, 1)]
    got = np.concatenate([c["output_0"] for c in chunks], axis=1)
    np.testing.assert_allclose(got, ref["stack/high"]["hidden_state"], atol=1e-4)
    final = chunks[1][sites.signature_key("first", "cell_state")]
    np.testing.assert_allclose(final, ref["first"]["cell_state"][:, -1], atol=1e-4)


def test_foreign_stateful_rnn_is_refused(tmp_path):
    inputs = keras.Input((None, FEATURES), batch_size=2)
    x = klv.StandardLSTM(4, return_sequences=True)(inputs)
    outputs = keras.layers.SimpleRNN(3, stateful=True, name="keras_rnn")(x)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="stateful RNN layer 'keras_rnn'"):
        klv.export_saved_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------
# Signature keys, paths and bad arguments (no reload needed).


def test_signature_key_rule():
    key = sites.signature_key
    assert key("peephole_lstm", "forget_gate") == "peephole_lstm__forget_gate"
    assert key("outer/bidi/backward_x", "candidate") == (
        "outer__bidi__backward_x__candidate"
    )
    assert key("my layer:1", "cell_state") == "my_layer_1__cell_state"
    assert key("_hidden", "input_gate") == "k_hidden__input_gate"


def _small_model():
    inputs = keras.Input((None, FEATURES))
    return keras.Model(inputs, klv.CoupledLSTM(2)(inputs))


def test_existing_directory_is_refused_without_overwrite(tmp_path):
    path = tmp_path / "model"
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="already holds files") as info:
        klv.export_saved_model(_small_model(), path)
    assert str(path) in str(info.value)
    # overwrite=True never deletes a directory that is not a SavedModel.
    with pytest.raises(FileExistsError, match="not a SavedModel"):
        klv.export_saved_model(_small_model(), path, overwrite=True)
    assert (path / "notes.txt").read_text() == "keep me"
    file_path = tmp_path / "file"
    file_path.write_text("x")
    with pytest.raises(FileExistsError, match="existing file"):
        klv.export_saved_model(_small_model(), file_path, overwrite=True)


def test_overwrite_replaces_a_saved_model(tmp_path):
    path = tmp_path / "model"
    model = _small_model()
    assert klv.export_saved_model(model, path, gates=False) == str(path)
    (path / "stale.txt").write_text("from the old export")
    with pytest.raises(FileExistsError):
        klv.export_saved_model(model, path)
    klv.export_saved_model(model, path, overwrite=True)
    assert (path / "saved_model.pb").exists()
    assert not (path / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging
    # An empty directory is fine without overwrite.
    (tmp_path / "empty").mkdir()
    klv.export_saved_model(model, tmp_path / "empty", gates=False)
    assert (tmp_path / "empty" / "saved_model.pb").exists()


def test_tflite_path_rules(tmp_path):
    model = _small_model()
    path = tmp_path / "m.tflite"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        klv.export_tflite(model, path, sequence_length=3)
    klv.export_tflite(model, path, sequence_length=3, overwrite=True)
    assert path.read_bytes()[4:8] == b"TFL3"  # the flatbuffer identifier
    with pytest.raises(ValueError, match="'.tflite'"):
        klv.export_tflite(model, tmp_path / "m.bin", sequence_length=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sequence_length": 0}, ValueError, "sequence_length=0"),
        ({"sequence_length": 2.0}, TypeError, "sequence_length=2.0"),
        ({"sequence_length": 3, "batch_size": -1}, ValueError, "batch_size=-1"),
        ({"sequence_length": 3, "batch_size": None}, ValueError, "unroll=True"),
        ({"sequence_length": 3, "overwrite": 1}, TypeError, "overwrite=1"),
        # Issue 10.8: a bare string used to become list("DEFAULT").
        (
            {"sequence_length": 3, "optimizations": "DEFAULT"},
            TypeError,
            r"list of tf.lite.Optimize.*optimizations='DEFAULT'",
        ),
        (
            {"sequence_length": 3, "optimizations": ["FAST"]},
            ValueError,
            r"holds 'FAST'.*'DEFAULT'",
        ),
    ],
)
def test_export_tflite_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        klv.export_tflite(_small_model(), tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


def test_export_saved_model_bad_arguments(tmp_path):
    model = _small_model()
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        klv.export_saved_model(model.layers[1], tmp_path / "a")
    with pytest.raises(TypeError, match="gates='yes'"):
        klv.export_saved_model(model, tmp_path / "a", gates="yes")
    inputs = keras.Input((None, FEATURES))
    plain = keras.Model(inputs, keras.layers.SimpleRNN(2)(inputs))
    with pytest.raises(ValueError, match="no RNN layer whose gates can be read"):
        klv.export_saved_model(plain, tmp_path / "a")
    unbuilt = keras.Sequential([klv.StandardLSTM(2)])
    with pytest.raises(ValueError, match="not built"):
        klv.export_saved_model(unbuilt, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_export_tflite_optimizations_by_name_quantize(tmp_path):
    import tensorflow as tf

    inputs = keras.Input((None, FEATURES))
    outputs = keras.layers.Dense(1)(klv.PeepholeLSTM(64)(inputs))
    model = keras.Model(inputs, outputs)
    plain = tmp_path / "plain.tflite"
    klv.export_tflite(model, plain, sequence_length=3)
    for optimizations in (["DEFAULT"], [tf.lite.Optimize.DEFAULT]):
        path = tmp_path / f"q{type(optimizations[0]).__name__}.tflite"
        klv.export_tflite(model, path, sequence_length=3, optimizations=optimizations)
        # The 64 x 256 recurrent kernel is stored in 8 bits: a smaller file.
        assert path.stat().st_size < 0.6 * plain.stat().st_size


def test_export_tflite_under_mixed_precision_is_refused_by_name(tmp_path):
    # Issue 10.15: the converter used to fail deep inside with a ConverterError.
    keras.config.set_dtype_policy("mixed_float16")
    model = _small_model()
    with pytest.raises(ValueError, match=r"float32.*mixed_float16"):
        klv.export_tflite(model, tmp_path / "m.tflite", sequence_length=3)
    assert not (tmp_path / "m.tflite").exists()


def test_no_private_keras_export_helper_is_needed(tmp_path):
    # Issue 10.9: the input signature comes from the public `model.input`.
    model = _small_model()
    signature = klv.saved_model.input_signature_of(model)
    (spec,) = signature
    assert tuple(spec.shape) == (None, *model.input.shape[1:])


def test_tflite_converts_the_fast_path_itself(tmp_path, kernel_calls):
    # The layers' fast path, traced without a tape, is a plain while loop that
    # TensorFlow Lite converts with builtin ops: no generic-loop detour.
    import tensorflow as tf

    inputs = keras.Input((None, FEATURES))
    layer = klv.PeepholeLSTM(4, return_sequences=True, use_fast_path=True)
    model = keras.Model(inputs, layer(keras.layers.Masking(0.0)(inputs)))
    x = np.random.default_rng(3).normal(size=(1, 5, FEATURES)).astype("float32")
    x[0, 3:] = 0.0
    kernel_calls.clear()
    path = klv.export_tflite(model, tmp_path / "m.tflite", sequence_length=5)
    assert kernel_calls, "the export did not trace the fast path"
    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner()
    (output,) = runner(**{model.input.name: x}).values()
    np.testing.assert_allclose(output, keras.ops.convert_to_numpy(model(x)), atol=1e-5)
