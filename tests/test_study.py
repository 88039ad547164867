"""The study of long-lag tasks (examples/study.py and its helper modules).

The task generators are checked sequence by sequence against the papers'
definitions, written out again here; the gradient probe against a case
computed by hand and against central finite differences in float64 (the
cell state through an independent split run with `initial_state`); the
study end to end at toy size, its TensorBoard logs read back with
TensorBoard's own reader; and a seeded run twice.
"""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_lstm_variants as klv

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import long_lag_tasks as tasks  # noqa: E402
import study  # noqa: E402
import study_gradients  # noqa: E402

# ---------------------------------------------------------------- generators


@pytest.mark.parametrize("T", [20, 100, 1000])
def test_adding_problem_follows_the_paper(T):
    n = 400 if T < 1000 else 60
    batch = tasks.adding_problem(np.random.default_rng(T), n, T)
    max_length = T + T // 10
    assert batch.inputs.shape == (n, max_length, 2)
    assert batch.targets.shape == (n, 1)
    seconds = []
    for row in range(n):
        length = batch.lengths[row]
        assert T <= length <= T + T / 10
        padding, seq = batch.inputs[row, : max_length - length], batch.inputs[row]
        seq = seq[max_length - length :]
        assert not padding.any()
        assert not (seq == 0).all(axis=1).any()  # Masking(0.0) keeps every step
        values, markers = seq[:, 0], seq[:, 1]
        assert np.all(np.abs(values) <= 1)
        marked = np.flatnonzero(markers == 1.0)
        assert len(marked) == 2
        first, second = batch.positions[row]
        assert set(marked) == {first, second}
        assert 0 <= first < 10  # one of the first ten pairs
        # One of the first T/2 - 1 pairs still unmarked after the first mark.
        unmarked = [p for p in range(length) if p != first]
        assert second in unmarked[: T // 2 - 1]
        seconds.append(second)
        others = np.setdiff1d(np.arange(length), marked)
        ends = [p for p in (0, length - 1) if p not in marked]
        assert np.all(markers[ends] == -1.0)
        assert np.all(markers[np.setdiff1d(others, ends)] == 0.0)
        if 0 in marked:
            assert values[0] == 0.0  # "a marked first pair gets the value 0"
        x1, x2 = values[first], values[second]
        np.testing.assert_allclose(
            batch.targets[row, 0], 0.5 + (x1 + x2) / 4, atol=1e-6
        )
    if T == 100:  # the whole range of the second mark is used
        assert max(seconds) == T // 2 - 1
        assert set(batch.lengths) == set(range(T, T + T // 10 + 1))


def test_adding_problem_fixed_length_and_bad_arguments():
    batch = tasks.adding_problem(np.random.default_rng(0), 5, 40, fixed_length=True)
    assert batch.inputs.shape == (5, 40, 2) and set(batch.lengths) == {40}
    assert np.all(batch.inputs[:, [0, -1], 1] != 0)
    with pytest.raises(ValueError, match="T must be an even integer >= 20, got 21"):
        tasks.adding_problem(np.random.default_rng(0), 5, 21)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        tasks.adding_problem(np.random.default_rng(0), 0, 20)


def test_temporal_order_follows_the_paper():
    n = 500
    batch = tasks.temporal_order(np.random.default_rng(1), n)
    symbols = tasks.TEMPORAL_ORDER_SYMBOLS
    assert batch.inputs.shape == (n, 110, 8) and batch.targets.shape == (n, 4)
    t1s, t2s = [], []
    for row in range(n):
        length = batch.lengths[row]
        assert 100 <= length <= 110
        assert not batch.inputs[row, : 110 - length].any()
        seq = batch.inputs[row, 110 - length :]
        assert np.all(seq.sum(axis=1) == 1)  # one-hot, no empty step
        word = [symbols[k] for k in seq.argmax(axis=1)]
        assert word[0] == "E" and word[-1] == "B"
        relevant = [p for p, s in enumerate(word) if s in "XY"]
        t1, t2 = relevant  # exactly two
        assert (t1, t2) == tuple(batch.positions[row])
        assert 10 <= t1 + 1 <= 20 and 50 <= t2 + 1 <= 60  # the paper's 1-based steps
        t1s.append(t1 + 1)
        t2s.append(t2 + 1)
        assert set(word[1:-1]) - {"X", "Y"} <= set("abcd")
        label = tasks.TEMPORAL_ORDER_CLASSES.index(word[t1] + word[t2])
        np.testing.assert_array_equal(batch.targets[row], np.eye(4)[label])
    assert set(t1s) == set(range(10, 21)) and set(t2s) == set(range(50, 61))
    assert set(batch.targets.argmax(axis=1)) == {0, 1, 2, 3}


def test_spike_delay_task():
    batch = tasks.spike_delay(np.random.default_rng(2), 300, min_delay=10, max_delay=30)
    assert batch.inputs.shape == (300, 50, 1)
    for row in range(300):
        spikes = np.flatnonzero(batch.inputs[row, :, 0])
        np.testing.assert_array_equal(spikes, batch.positions[row])
        delay = spikes[1] - spikes[0]
        assert spikes[0] < 10 and 10 <= delay <= 30
        np.testing.assert_allclose(batch.targets[row, 0], (delay - 10) / 20)
    with pytest.raises(ValueError, match="min_delay and max_delay"):
        tasks.spike_delay(np.random.default_rng(0), 3, min_delay=5, max_delay=5)


def test_correctness_criteria_on_hand_cases():
    targets = np.array([[0.5], [0.5], [0.5], [0.2]])
    outputs = np.array([[0.539], [0.4601], [0.54], [0.2]])
    assert tasks.wrong_adding(outputs, targets) == 1  # only the error of 0.04
    classes = np.eye(4)[[0, 1]]
    assert tasks.wrong_temporal_order(classes + [[0.29, 0, 0, -0.29]] * 2, classes) == 0
    assert tasks.wrong_temporal_order(classes + [[0, 0.3, 0, 0]] * 2, classes) == 2
    # Delays 10..30: 0.5 step is an error of 0.025 on the scaled target.
    assert (
        tasks.wrong_spike_delay(np.array([[0.524], [0.526]]), np.full((2, 1), 0.5)) == 1
    )


# ----------------------------------------------------------------- gradients


def test_cell_state_gradient_by_hand():
    """Zero kernels: constant gates, c_t = f c_{t-1} + i g, y = w h_T + b, so
    dL/dc_{T-k} = (y - target) w o (1 - tanh(c_T)^2) f^k."""
    T, b = 12, np.array([0.3, 1.5, -0.4, 0.8])  # biases of i, f, c, o
    layer = klv.StandardLSTM(1)
    readout = keras.layers.Dense(1)
    x = np.random.default_rng(0).normal(size=(2, T, 3)).astype("float32")
    readout(layer(x))
    layer.cell.kernel.assign(np.zeros((3, 4)))
    layer.cell.recurrent_kernel.assign(np.zeros((1, 4)))
    layer.cell.bias.assign(b)
    readout.kernel.assign([[0.7]])
    readout.bias.assign([0.1])
    sig = 1 / (1 + np.exp(-b))
    i, f, g, o = sig[0], sig[1], np.tanh(b[2]), sig[3]
    c = 0.0
    for _ in range(T):
        c = f * c + i * g
    y = 0.7 * o * np.tanh(c) + 0.1
    targets = np.array([[0.0], [1.0]], "float32")
    dx, dc = study_gradients.gradient_norms(layer, readout, x, targets)
    k = np.arange(1, T + 1)
    by_hand = (
        np.mean([abs(y - t) for t in (0.0, 1.0)])
        * 0.7
        * o
        * (1 - np.tanh(c) ** 2)
        * f**k
    )
    np.testing.assert_allclose(dc[1:], by_hand, rtol=1e-5)
    assert np.isnan(dc[0])
    np.testing.assert_allclose(dx, 0.0, atol=1e-12)  # the input has no weight


def _loss(layer, readout, x, targets, initial_state=None):
    y = readout(layer(x, initial_state=initial_state))
    return 0.5 * float(keras.ops.sum((y - targets) ** 2))


@pytest.mark.parametrize("make", [
    lambda: klv.PeepholeLSTM(3, dtype="float64"),
    lambda: klv.LSTMVariant(3, variant="FGR", dtype="float64"),
    lambda: keras.layers.SimpleRNN(3, dtype="float64"),
])  # fmt: skip
def test_gradient_norms_match_finite_differences(make):
    rng = np.random.default_rng(3)
    n, T, d, eps = 2, 6, 2, 1e-6
    x = rng.normal(size=(n, T, d))
    targets = rng.normal(size=(n, 1))
    layer, readout = make(), keras.layers.Dense(1, dtype="float64")
    readout(layer(x))
    dx, dc = study_gradients.gradient_norms(layer, readout, x, targets)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (
            _loss(layer, readout, x + step, targets)
            - _loss(layer, readout, x - step, targets)
        ) / (2 * eps)
    expected = np.linalg.norm(grad, axis=-1).mean(axis=0)[::-1]
    np.testing.assert_allclose(dx, expected, rtol=1e-5)
    if not study_gradients.has_cell_state(layer):
        assert dc is None
        return
    # The cell state carried out of step t, perturbed in a second run that
    # starts from the first run's states: lag T - t.
    split = keras.layers.RNN(layer.cell, return_state=True, dtype="float64")
    for t in (1, 3, T - 1):
        _, *states = split(x[:, :t])
        norms = []
        for row in range(n):
            g = np.zeros(3)
            for unit in range(3):
                bump = np.zeros((n, 3))
                bump[row, unit] = eps
                up = [states[0], states[1] + bump, *states[2:]]
                down = [states[0], states[1] - bump, *states[2:]]
                g[unit] = (
                    _loss(layer, readout, x[:, t:], targets, up)
                    - _loss(layer, readout, x[:, t:], targets, down)
                ) / (2 * eps)
            norms.append(np.linalg.norm(g))
        np.testing.assert_allclose(dc[T - t], np.mean(norms), rtol=1e-5)


def test_decay_per_step():
    norms = 3.0 * 0.5 ** np.arange(20)
    assert study_gradients.decay_per_step(norms) == pytest.approx(0.5)


# ---------------------------------------------------------------- end to end


TOY = ["--mode", "toy", "--variants", "simple_rnn,peephole", "--steps", "2"]


def _value(event):
    """The number a scalar summary event holds, decoded by TensorBoard."""
    from tensorboard.util import tensor_util

    return float(tensor_util.make_ndarray(event.tensor_proto))


def hparams_runs(log_root):
    """`{(task, variant, seed): {metric: value}}` read by TensorBoard."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    runs = {}
    for path in sorted((log_root / "hparams").rglob("events.out.tfevents*")):
        acc = event_accumulator.EventAccumulator(
            str(path), size_guidance={event_accumulator.TENSORS: 0}
        )
        acc.Reload()
        tags = acc.Tags()["tensors"]
        if "_hparams_/session_start_info" not in tags:
            assert "_hparams_/experiment" in tags  # the root: the config
            continue
        content = acc.SummaryMetadata(
            "_hparams_/session_start_info"
        ).plugin_data.content
        info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        hparams = {k: v.string_value or v.number_value for k, v in info.hparams.items()}
        key = (hparams["task"], hparams["variant"], int(hparams["seed"]))
        runs[key] = {
            tag: _value(acc.Tensors(tag)[-1])
            for tag in ("test/error", "test/wrong_of_2560")
        }
    return runs


def test_study_end_to_end_at_toy_size(tmp_path, capsys):
    from tensorboard.backend.event_processing import event_accumulator

    keras.utils.clear_session()
    argv = [*TOY, "--logdir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    summary, found = study.run(argv)
    out = capsys.readouterr().out
    assert "wrong of 2560" in out and "dL/dc" in out
    for name in ("study_gradients.png", "study_boxplot.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = found["results"]
    # Every task for both variants at one seed, and the timing task for the
    # peephole cell at a second seed (toy: timing_seeds=2; the plain RNN is
    # not in the peephole question).
    keys = {(r["task"], r["variant"], r["seed"]) for r in results}
    assert len(keys) == len(results) == 7
    assert ("spike_delay", "peephole", 1) in keys
    runs = hparams_runs(found["log_root"])
    assert set(runs) == keys
    for r in results:
        logged = runs[(r["task"], r["variant"], r["seed"])]
        assert logged["test/wrong_of_2560"] == r["wrong"]
        assert logged["test/error"] == pytest.approx(r["test_error"], rel=1e-6)
    # The gradient curves in TensorBoard are the plotted ones.
    for phase in ("init", "trained"):
        acc = event_accumulator.EventAccumulator(
            str(found["log_root"] / "gradients" / phase),
            size_guidance={event_accumulator.TENSORS: 0},
        )
        acc.Reload()
        assert "dL_dc/simple_rnn" not in acc.Tags()["tensors"]
        for model in ("simple_rnn", "peephole"):
            dx, dc = found["curves"][phase][model]
            events = acc.Tensors(f"dL_dx/{model}")
            assert [e.step for e in events] == list(range(20))
            np.testing.assert_allclose([_value(e) for e in events], dx, rtol=1e-6)
        events = acc.Tensors("dL_dc/peephole")
        assert [e.step for e in events] == list(range(1, 21))
        np.testing.assert_allclose(
            [_value(e) for e in events],
            found["curves"][phase]["peephole"][1][1:],
            rtol=1e-6,
        )


def test_a_seeded_run_is_deterministic(tmp_path):
    mode = study.MODES["toy"]
    task = study.adding_task(20)
    test = study.test_set(task)
    found = []
    for n in range(2):
        keras.utils.clear_session()
        result, model = study.train_run(
            task, "peephole", 0, mode, tmp_path / str(n), test
        )
        weights = [w.copy() for w in model.get_weights()]
        found.append((result["test_error"], result["wrong"], weights))
    assert found[0][:2] == found[1][:2]
    for a, b in zip(found[0][2], found[1][2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_help_is_clean():
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "study.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    text = " ".join(result.stdout.split())
    assert "--mode {full,medium,quick,toy}" in text and "(default: quick)" in text
    assert "minute" not in text and "hour" not in text  # times are in the README


def test_bad_variant_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        study.parse_args(["--variants", "standard,bogus"])
    assert stop.value.code == 2
    assert "unknown 'bogus'" in capsys.readouterr().err


def test_the_readmes_study_commands_parse():
    # The README's study command lines name modes, variants and flags that
    # exist (they take minutes to days, so they are parsed, not run).
    import shlex

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    commands = [
        shlex.split(line.split("#")[0])
        for line in readme.splitlines()
        if "examples/study.py" in line and line.lstrip().startswith(".venv/bin/python")
    ]
    assert len(commands) >= 4
    for command in commands:
        argv = command[command.index("examples/study.py") + 1 :]
        _, name, mode = study.parse_args(argv)
        assert name in study.MODES
        assert set(mode.variants) <= set(study.VARIANTS)
