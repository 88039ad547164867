"""The examples: each `main` trains a tiny configuration and writes its artifacts.

Artifacts are read back with independent readers: TensorBoard's own event
reader, `tf.saved_model.load`, `keras.saving.load_model` and the PNG signature.
Baselines are checked on hand-computed cases.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_lstm_variants as klv
from keras_lstm_variants.keras_cell_views import inspectable
from keras_lstm_variants.sites import summary_tag as gate_tag

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import _common  # noqa: E402
import demo  # noqa: E402
import text_char_lm  # noqa: E402
import time_series_forecast  # noqa: E402


def event_tags(log_dir):
    """Every tag in every event file under `log_dir`, read by TensorBoard."""
    from tensorboard.backend.event_processing import event_accumulator

    tags = set()
    files = sorted(Path(log_dir).rglob("events.out.tfevents*"))
    assert files, f"no event files under {log_dir}"
    for path in files:
        acc = event_accumulator.EventAccumulator(
            str(path), size_guidance={event_accumulator.TENSORS: 0}
        )
        acc.Reload()
        for kind in ("tensors", "scalars", "histograms", "images"):
            tags.update(acc.Tags().get(kind, []))
    return tags


def only_run_dir(root, example):
    (run_dir,) = (Path(root) / example).iterdir()
    return run_dir


def check_gate_tags(tags, layer_names):
    for layer in layer_names:
        for gate in klv.GATE_NAMES:
            assert gate_tag(layer, gate) in tags


def check_saved_model(path, model, inputs, layer, read_out):
    """The SavedModel loads in plain TensorFlow, serves the model's outputs, and
    its `gates` signature holds `layer`'s gates, whose `hidden_state` gives the
    outputs through `read_out` (the model's own read-out layer)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    (served,) = loaded.signatures["serving_default"](tf.constant(inputs)).values()
    expected = keras.ops.convert_to_numpy(model(inputs))
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)
    gates = loaded.signatures["gates"](tf.constant(inputs))
    cell = inspectable(model.get_layer(layer).cell)  # its vocabulary of values
    assert set(gates) == {f"{layer}__{name}" for name in cell.value_names}
    for name in cell.value_names:
        value = gates[f"{layer}__{name}"].numpy()
        assert value.shape[:2] == inputs.shape[:2]
        if name in cell.gate_names:
            assert value.min() >= 0.0 and value.max() <= 1.0
    output = [name for name in cell.value_names if name.endswith("hidden_state")][-1]
    hidden = gates[f"{layer}__{output}"].numpy()
    from_gates = keras.ops.convert_to_numpy(read_out(hidden))
    np.testing.assert_allclose(from_gates, expected, atol=1e-5)


def tiny_corpus(path, n_chars=6000, seed=0):
    """A UTF-8 text of repeated words: quickly learnable, with non-ASCII."""
    rng = np.random.default_rng(seed)
    words = ["lstm ", "gate ", "forget ", "peephole ", "cell ", "état\n"]
    text = "".join(rng.choice(words, size=n_chars // 5))
    path.write_text(text, encoding="utf-8")
    return path


TEXT_TINY = [
    "--cell", "coupled", "--units", "8", "--layers", "1", "--seq-len", "16",
    "--batch-size", "32", "--epochs", "2", "--sample-length", "12", "--prompt", "ga",
]  # fmt: skip


def run_text(tmp_path, name, capsys, extra=()):
    corpus = tiny_corpus(tmp_path / "corpus.txt")
    root = tmp_path / name
    argv = [*TEXT_TINY, "--corpus", str(corpus), *extra]
    argv += ["--logdir", str(root / "runs"), "--out", str(root / "out")]
    assert text_char_lm.main(argv) == 0
    return root, capsys.readouterr().out


@pytest.mark.parametrize(
    "cell, label",
    [
        ("gru", "GRU"),
        ("clockwork", "Clockwork RNN"),
        ("depth-gated", "depth-gated LSTM"),
    ],
)
def test_text_example_trains_the_other_variations(cell, label, tmp_path, capsys):
    keras.utils.clear_session()
    root, out = run_text(tmp_path, cell, capsys, extra=["--cell", cell])
    assert f"{label} model" in out
    assert out.count("--- sample, temperature") == len(text_char_lm.TEMPERATURES)
    model = keras.saving.load_model(root / "out" / f"text_char_lm_{cell}.keras")
    ids = np.random.default_rng(2).integers(0, 8, (2, 5)).astype("int32")
    check_saved_model(
        root / "out" / f"text_char_lm_{cell}_gates_savedmodel",
        model,
        ids,
        "text_lstm",
        model.get_layer("next_char_logits"),
    )
    check_text_serving(
        root / "out" / f"text_char_lm_{cell}_savedmodel", model, tmp_path / "corpus.txt"
    )


def results_lines(stdout, start):
    """The printed lines from the one starting with `start` to the summary."""
    lines = stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(
        i for i, line in enumerate(lines) if line.startswith(("== ", "--- Saving ---"))
    )
    return [line for line in lines[first:last] if line.strip()]


def test_text_example_trains_logs_and_exports(tmp_path, capsys):
    keras.utils.clear_session()
    root, out = run_text(tmp_path, "a", capsys)
    assert "unigram baseline" in out and "coupled LSTM model" in out
    assert out.count("--- sample, temperature") == len(text_char_lm.TEMPERATURES)
    assert f"tensorboard --logdir {root / 'runs'}" in out

    model_path = root / "out" / "text_char_lm_coupled.keras"
    model = keras.saving.load_model(model_path)
    export_path = root / "out" / "text_char_lm_coupled_gates_savedmodel"
    serving_path = root / "out" / "text_char_lm_coupled_savedmodel"
    for path in (model_path, export_path, serving_path):
        assert str(path) in out
    ids = np.random.default_rng(1).integers(0, 8, (3, 5)).astype("int32")
    check_saved_model(
        export_path, model, ids, "text_lstm", model.get_layer("next_char_logits")
    )
    check_text_serving(serving_path, model, tmp_path / "corpus.txt")
    check_loads_with_only_the_package(model_path)

    check_printed_bits_per_char(out, root, tmp_path / "corpus.txt")

    tags = event_tags(only_run_dir(root / "runs", "text_char_lm"))
    assert {"epoch_loss", "epoch_bits_per_char"} <= tags
    check_gate_tags(tags, ["text_lstm"])


def check_loads_with_only_the_package(*paths):
    """Each `.keras` file loads in a fresh process that imports only Keras and
    the package (not the examples), and can be evaluated."""
    code = (
        "import sys, keras, keras_lstm_variants\n"
        "for path in sys.argv[1:]:\n"
        "    model = keras.saving.load_model(path)\n"
        "    assert model.loss is not None and model.optimizer is not None\n"
        "print('loaded')\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=str(EXAMPLES.parent),
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(paths[0].parent),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "loaded"
    assert "Warning" not in result.stderr, result.stderr[-3000:]


def check_text_serving(path, model, corpus):
    """The serving SavedModel takes strings: its logits are the Keras model's
    at the last character, its vocabulary is the training text's, and
    generation at a tiny temperature is the model's greedy continuation."""
    import tensorflow as tf

    train, _, _ = text_char_lm.file_corpus(corpus, 17)
    vocab = text_char_lm.Vocabulary(train)
    loaded = tf.saved_model.load(str(path))
    characters = loaded.signatures["vocabulary"]()["characters"].numpy()
    assert [c.decode() for c in characters] == ["\ufffd", *vocab.chars]

    texts = ["gate ", "forget é", "x\u2603"]  # the snowman is not in the text
    served = loaded.signatures["serving_default"](text=tf.constant(texts))
    (key,) = served
    assert key == "next_char_logits"
    for text, logits in zip(texts, served[key].numpy(), strict=True):
        expected = keras.ops.convert_to_numpy(model(vocab.encode(text)[None]))[0, -1]
        np.testing.assert_allclose(logits, expected, atol=1e-5)

    generated = (
        loaded.signatures["generate"](
            prompt=tf.constant("ga"),
            num_chars=tf.constant(8),
            temperature=tf.constant(1e-4),
        )["generated_text"]
        .numpy()
        .decode()
    )
    ids = list(vocab.encode("ga"))
    for _ in range(8):
        logits = keras.ops.convert_to_numpy(model(np.array([ids], "int32")))[0, -1]
        ids.append(int(np.argmax(logits)))
    assert generated == vocab.decode(ids[2:])


def check_printed_bits_per_char(out, root, corpus):
    """The printed model and unigram numbers, recomputed from the saved model."""
    printed = {
        name: float(line.split()[-1])
        for line in out.splitlines()
        for name in ("unigram baseline", "coupled LSTM model")
        if line.strip().startswith(name)
    }
    # The validation data rebuilt from the corpus file: its last tenth.
    train, val, _ = text_char_lm.file_corpus(corpus, 17)
    vocab = text_char_lm.Vocabulary(train)
    x, y = text_char_lm.make_sequences(vocab.encode(val), 16)
    model = keras.saving.load_model(root / "out" / "text_char_lm_coupled.keras")
    logits = keras.ops.convert_to_numpy(model(x)).astype("float64")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, y[..., None], -1).mean() / math.log(2)
    assert printed["coupled LSTM model"] == pytest.approx(nll, abs=1e-3)
    counts = np.array([train.count(c) for c in vocab.chars]) + 1.0
    counts = np.concatenate([[1.0], counts])  # add-one count of unseen characters
    unigram = -np.log2(counts[y.ravel()] / counts.sum()).mean()
    assert printed["unigram baseline"] == pytest.approx(unigram, abs=1e-3)


def test_quick_changes_defaults_but_not_given_flags():
    quick = text_char_lm.parse_args(["--quick"])
    assert (quick.units, quick.layers, quick.epochs) == (128, 1, 6)
    given = text_char_lm.parse_args(["--quick", "--units", "256", "--epochs", "10"])
    assert (given.units, given.layers, given.epochs) == (256, 1, 10)
    assert text_char_lm.parse_args([]).units == 256
    assert time_series_forecast.parse_args(["--quick"]).epochs == 15


def test_text_example_is_deterministic_with_a_seed(tmp_path, capsys):
    root_a, out_a = run_text(tmp_path, "a", capsys)
    keras.utils.clear_session()
    root_b, out_b = run_text(tmp_path, "b", capsys)
    # The samples and the validation numbers, printed alike.
    assert results_lines(out_a, "--- sample") == results_lines(out_b, "--- sample")
    weights = [
        keras.saving.load_model(
            root / "out" / "text_char_lm_coupled.keras"
        ).get_weights()
        for root in (root_a, root_b)
    ]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bits_per_char_is_the_cross_entropy_in_bits():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 5)).astype("float32")
    targets = rng.integers(0, 5, (2, 3))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0] / math.log(2)
    got = keras.ops.convert_to_numpy(text_char_lm.bits_per_char(targets, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_unigram_baseline_on_a_hand_computed_case():
    vocab = text_char_lm.Vocabulary("aab")  # ids: 0 unseen, 1 "a", 2 "b"
    train, val = vocab.encode("aab"), vocab.encode("ab?")
    # Add-one counts: unseen 1, a 3, b 2 (total 6).
    expected = (math.log2(6 / 3) + math.log2(6 / 2) + math.log2(6 / 1)) / 3
    assert text_char_lm.unigram_bits_per_char(train, val, len(vocab)) == (
        pytest.approx(expected)
    )
    assert vocab.decode(val) == "ab\ufffd"


def test_stdlib_corpus_keeps_validation_files_apart(tmp_path):
    for i in range(20):
        (tmp_path / f"m{i:02d}.py").write_text(f"# file {i:02d}\n", encoding="utf-8")
    (tmp_path / "not_python.txt").write_text("# skipped\n")
    train, val, _ = text_char_lm.stdlib_corpus(1000, 1000, root=tmp_path)
    assert val == "# file 09\n# file 19\n"
    assert train == "".join(f"# file {i:02d}\n" for i in range(20) if i % 10 != 9)
    train, val, _ = text_char_lm.stdlib_corpus(15, 5, root=tmp_path)
    assert (train, val) == ("# file 00\n# fil", "# fil")


def test_the_default_corpus_is_real_python_source():
    train, val, description = text_char_lm.stdlib_corpus(20_000, 5_000)
    assert len(train) == 20_000 and len(val) == 5_000
    assert "import " in train and "def " in val
    assert "standard library" in description


def test_sequences_are_shifted_by_one_character():
    x, y = text_char_lm.make_sequences(np.arange(11), 3)
    np.testing.assert_array_equal(x, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(y, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])


def seasonal_csv(path, n=300, season=20, seed=0):
    """A trend, a seasonal wave and noise, with one gap, as a CSV column."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 0.05 * t + np.sin(2 * np.pi * t / season) + 0.1 * rng.standard_normal(n)
    cells = [f"{v:.5f}" for v in values]
    cells[17] = ""
    path.write_text("step,level\n" + "".join(f"{i},{v}\n" for i, v in enumerate(cells)))
    return path


SERIES_TINY = [
    "--column", "level", "--window", "24", "--horizon", "4", "--season", "20",
    "--cell", "standard", "--units", "4", "--epochs", "2",
]  # fmt: skip


def run_series(tmp_path, name, capsys):
    csv = seasonal_csv(tmp_path / "series.csv")
    root = tmp_path / name
    argv = [*SERIES_TINY, "--csv", str(csv)]
    argv += ["--logdir", str(root / "runs"), "--out", str(root / "out")]
    assert time_series_forecast.main(argv) == 0
    return root, capsys.readouterr().out


def test_series_example_trains_logs_plots_and_exports(tmp_path, capsys):
    root, out = run_series(tmp_path, "a", capsys)
    table = results_lines(out, "Test period")
    assert table[1].split() == ["forecast", "MAE", "RMSE"]
    names = [" ".join(line.split()[:-2]) for line in table[2:]]
    assert names == ["standard LSTM", "seasonal naive (20 back)", "persistence"]

    out_dir = root / "out"
    png = out_dir / "time_series_forecast_standard.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_path = out_dir / "time_series_forecast_standard.keras"
    model = keras.saving.load_model(model_path)
    windows = np.random.default_rng(2).standard_normal((3, 24, 1)).astype("float32")
    check_saved_model(
        out_dir / "time_series_forecast_standard_gates_savedmodel",
        model,
        windows,
        "series_lstm",
        lambda hidden: model.get_layer("forecast")(hidden[:, -1]),
    )
    check_loads_with_only_the_package(model_path)
    check_series_serving(
        out_dir / "time_series_forecast_standard_savedmodel",
        model,
        tmp_path / "series.csv",
    )

    tags = event_tags(only_run_dir(root / "runs", "time_series_forecast"))
    assert {"epoch_loss", "epoch_mae"} <= tags
    check_gate_tags(tags, ["series_lstm"])


def check_series_serving(path, model, csv):
    """The serving SavedModel takes raw windows and returns raw forecasts:
    the Keras model's output on the window made relative to its last value
    and divided by the training targets' spread, scaled back."""
    import tensorflow as tf

    values = np.genfromtxt(csv, delimiter=",", skip_header=1)[:, 1]
    values[17] = (values[16] + values[18]) / 2  # the gap, interpolated
    n, window, horizon = len(values), 24, 4
    origins = np.arange(window - 1, n - horizon)
    x = np.stack([values[t - window + 1 : t + 1] for t in origins])
    y = np.stack([values[t + 1 : t + 1 + horizon] for t in origins])
    train = origins + horizon < int(n * 0.7)
    scale = np.std(y[train] - x[train][:, -1:])

    raw = x[::40].astype("float32")
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["serving_default"](window=tf.constant(raw))
    assert list(served) == ["forecast"]
    relative = ((raw - raw[:, -1:]) / scale)[..., None].astype("float32")
    expected = raw[:, -1:] + scale * keras.ops.convert_to_numpy(model(relative))
    np.testing.assert_allclose(served["forecast"].numpy(), expected, atol=1e-4)
    # The forecasts are in the series' own range, not scaled changes.
    assert np.abs(served["forecast"].numpy() - raw[:, -1:]).max() < 5.0


def test_series_example_is_deterministic_with_a_seed(tmp_path, capsys):
    _, out_a = run_series(tmp_path, "a", capsys)
    keras.utils.clear_session()
    _, out_b = run_series(tmp_path, "b", capsys)
    assert results_lines(out_a, "Test period") == results_lines(out_b, "Test period")


def test_baselines_on_a_hand_made_series():
    values = np.arange(10.0) ** 2  # 0, 1, 4, 9, ...
    x, y, origins = time_series_forecast.make_windows(values, window=3, horizon=2)
    np.testing.assert_array_equal(x[0], [0, 1, 4])
    np.testing.assert_array_equal(y[0], [9, 16])
    np.testing.assert_array_equal(origins, np.arange(2, 8))
    persistence = time_series_forecast.persistence_forecast(x, 2)
    np.testing.assert_array_equal(persistence[0], [4, 4])
    # Season 2: step 1 ahead of t is values[t - 1], step 2 is values[t].
    naive = time_series_forecast.seasonal_naive_forecast(values, origins, 2, 2)
    np.testing.assert_array_equal(naive[0], [1, 4])
    # Season 1 with horizon 2 goes back whole seasons: both steps are values[t].
    naive = time_series_forecast.seasonal_naive_forecast(values, origins, 2, 1)
    np.testing.assert_array_equal(naive[0], [4, 4])
    mae, rmse = time_series_forecast.errors(
        np.array([[1.0, 2.0]]), np.array([[2.0, 0.0]])
    )
    assert (mae, rmse) == (pytest.approx(1.5), pytest.approx(math.sqrt(2.5)))


def test_split_by_time_keeps_every_target_in_its_own_period():
    n, horizon = 200, 5
    _, _, origins = time_series_forecast.make_windows(np.zeros(n), 10, horizon)
    train, val, test = time_series_forecast.split_by_time(n, origins, horizon)
    assert not (train & val).any() and not (val & test).any()
    assert (origins[train] + horizon).max() < 140
    assert (origins[val] + 1).min() >= 140 and (origins[val] + horizon).max() < 170
    assert (origins[test] + 1).min() >= 170 and (origins[test] + horizon).max() == 199


def test_co2_series_has_no_gaps():
    series, _ = time_series_forecast.load_co2()
    assert len(series) == 2284 and not series.isna().any()
    assert 310 < series.iloc[0] < 320 and 365 < series.iloc[-1] < 375


def write(path, data):
    path.write_bytes(data)
    return str(path)


BAD_INPUT = {
    "missing corpus": ("text", lambda d: ["--corpus", str(d / "nope.txt")],
                       "cannot read --corpus"),
    "empty corpus": ("text", lambda d: ["--corpus", write(d / "e.txt", b" \n")],
                     "is empty"),
    "binary corpus": ("text", lambda d: ["--corpus", write(d / "b", bytes(range(256)))],
                      "is not UTF-8 text"),
    "nul bytes": ("text", lambda d: ["--corpus", write(d / "z.txt", b"ab\x00" * 100)],
                  "is not UTF-8 text"),
    "short corpus": ("text", lambda d: ["--corpus", write(d / "s.txt", b"abc" * 10)],
                     "need at least"),
    "unknown cell": ("text", lambda d: ["--cell", "lstm2"], "invalid choice: 'lstm2'"),
    "zero units": ("series", lambda d: ["--units", "0"], "expected an integer >= 1"),
    "horizon too long": ("series", lambda d: ["--horizon", "3000"],
                         "is longer than the series"),
    "window too long": ("series", lambda d: ["--window", "2300"],
                        "is longer than the series"),
    "no test window": ("series", lambda d: ["--window", "1800", "--horizon", "100"],
                       "leave no"),
    "missing column": ("series", lambda d: ["--csv", write(d / "c.csv", b"a,b\n1,2\n"),
                                            "--column", "co2"],
                       "--column 'co2' is not in"),
    "missing csv": ("series", lambda d: ["--csv", str(d / "no.csv"), "--column", "x"],
                    "cannot read --csv"),
    "csv without column": ("series", lambda d: ["--csv", str(d / "no.csv")],
                           "--csv and --column go together"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_a_nonzero_exit(case, tmp_path, capsys):
    example, make_argv, message = BAD_INPUT[case]
    module = text_char_lm if example == "text" else time_series_forecast
    argv = make_argv(tmp_path) + ["--logdir", str(tmp_path / "runs")]
    argv += ["--out", str(tmp_path / "out")]
    try:
        status = module.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status != 0
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith(f"{module.PROG}: error: ")
    assert not (tmp_path / "runs").exists(), "nothing is logged on bad input"


def test_bad_input_from_the_command_line_has_no_traceback(tmp_path):
    corpus = write(tmp_path / "b.bin", bytes(range(256)))
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "text_char_lm.py"), "--corpus", corpus],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"text_char_lm: error: --corpus {corpus!r} is not UTF-8 text (it looks binary)"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_demo_runs_both_examples_quick_and_lists_what_they_wrote(
    tmp_path, capsys, monkeypatch
):
    calls = []

    def fake_run(name):
        def run(argv):
            calls.append((name, argv))
            return _common.Summary(
                f"{name} headline", [("Keras model", tmp_path / f"{name}.keras")], "r"
            )

        return run

    monkeypatch.setattr(text_char_lm, "run", fake_run("text"))
    monkeypatch.setattr(time_series_forecast, "run", fake_run("series"))
    assert demo.main(["--logdir", "r", "--out", str(tmp_path)]) == 0
    flags = ["--quick", "--cell", "peephole", "--logdir", "r", "--out", str(tmp_path)]
    assert calls == [("text", flags), ("series", flags)]
    tail = capsys.readouterr().out.split("make demo wrote:")[1]
    assert "text headline" in tail and "series headline" in tail
    assert str(tmp_path / "series.keras") in tail
    assert "tensorboard --logdir r" in tail


def test_forecast_plot_says_what_it_shows(tmp_path):
    import pandas as pd

    index = pd.date_range("1990-01-07", periods=120, freq="W").to_numpy()
    values = np.linspace(350.0, 360.0, 120)
    origins = np.arange(80, 110)
    forecasts = {"model": np.tile(values[origins, None], (1, 4))}
    fig = time_series_forecast.plot_forecasts(
        tmp_path / "f.png", index, values, origins, 60, forecasts, 4,
        value_label="CO2 (ppm)", step_name="week",
    )  # fmt: skip
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("year", "CO2 (ppm)")
    assert ax.get_title() == ("Test period: 4-week forecasts, one from every 4th week")
    lines = {line.get_label(): line for line in ax.get_lines()}
    origin_marks = lines["forecast origins (last value seen)"]
    np.testing.assert_array_equal(origin_marks.get_xdata(), index[origins[::4]])
    # A vertical line where the test period starts: its first target.
    starts = [
        line.get_xdata()[0]
        for line in ax.get_lines()
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
    ]
    assert starts == [index[81]]
    assert any("test period starts" in t.get_text() for t in ax.texts)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "script", ["text_char_lm.py", "time_series_forecast.py", "demo.py"]
)
def test_help_shows_each_default_once(script):
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "no start-up noise on stderr"
    # Options, each with its help (argparse indents continuation lines).
    options = " ".join(result.stdout.split()).split(" --")[1:]
    assert options
    for option in options:
        assert option.count("default") <= 1, option
        assert "(default: None)" not in option and "(default: False)" not in option
    text = " ".join(result.stdout.split())
    if script != "demo.py":
        assert "--units UNITS units of each LSTM layer (default:" in text
        assert "minute" not in text  # durations are stated once, in the README
