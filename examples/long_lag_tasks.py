"""The long-lag tasks of the study, generated in code (nothing is downloaded).

Helper module of `study.py` (run that as a file). Each generator takes a
NumPy `Generator` and returns a `TaskBatch`: inputs (the tasks of random
length are padded at the *start* with all-zero steps, so that every sequence
ends at the last step, where its target is; a `keras.layers.Masking(0.0)`
layer skips the padding, and no real step of those tasks is all zeros),
targets, the true lengths and the positions that define
each sequence (for the tests). Positions are 0-based indices into the
unpadded sequence.

* `adding_problem`: Hochreiter & Schmidhuber (1997), Experiment 4.
* `temporal_order`: Hochreiter & Schmidhuber (1997), Experiment 6a.
* `spike_delay`: a small precise-timing task after Gers, Schraudolph &
  Schmidhuber (2002), "measuring spike delays".

Each task also has its correctness criterion (`wrong_adding`, ...), the count
of test sequences the papers report.
"""

from typing import NamedTuple

import numpy as np

#: Test sequences per evaluation, as in the paper's Tables 7 and 8.
TEST_SEQUENCES = 2560

#: Adding problem: a sequence is right when |output - target| < this.
ADDING_TOLERANCE = 0.04
#: Temporal order: right when every output's absolute error is < this.
TEMPORAL_ORDER_TOLERANCE = 0.3
#: The temporal order task's symbols, one input unit each, in this order.
TEMPORAL_ORDER_SYMBOLS = ("E", "B", "a", "b", "c", "d", "X", "Y")
#: Its classes (Q, R, S, U in the paper) by the two relevant symbols.
TEMPORAL_ORDER_CLASSES = ("XX", "XY", "YX", "YY")


class TaskBatch(NamedTuple):
    """A batch of one task.

    Attributes:
        inputs: float32 `(n, max_length, features)`, zero-padded at the start.
        targets: float32 `(n, outputs)`, the target at each sequence's end.
        lengths: int `(n,)`, each sequence's true length.
        positions: int `(n, 2)`, the two relevant steps of each sequence
            (0-based, in the unpadded sequence).
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray
    positions: np.ndarray


def _check_count(n):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")


def _pad_start(sequences, max_length):
    """Stacks `(length, features)` arrays, zero-padded at the start."""
    n, features = len(sequences), sequences[0].shape[1]
    out = np.zeros((n, max_length, features), dtype="float32")
    for row, seq in enumerate(sequences):
        out[row, max_length - len(seq) :] = seq
    return out


def adding_problem(rng, n, T, fixed_length=False):
    """The adding problem (Hochreiter & Schmidhuber 1997, Experiment 4).

    Each step is a pair (value, marker): the value uniform in [-1, 1], the
    marker 0.0, except that two pairs are marked 1.0 and the first and final
    pairs are marked -1.0 (unless marked 1.0). The length is uniform in
    [T, T + T/10]. The first marked pair is one of the first 10 (its value
    is X1), the second one of the first T/2 - 1 pairs still unmarked (X2);
    a marked first pair gets the value 0. The target at the end is
    0.5 + (X1 + X2) / 4.

    Args:
        rng: A `numpy.random.Generator`.
        n: Number of sequences.
        T: The minimal length, an even integer >= 20.
        fixed_length: Every sequence of length exactly T (for the gradient
            measurements), not the paper's random lengths.

    Returns:
        A `TaskBatch` with 2 features and 1 target; `positions` holds the two
        marked steps, first the one among the first 10.
    """
    _check_count(n)
    if not isinstance(T, (int, np.integer)) or T < 20 or T % 2:
        raise ValueError(f"T must be an even integer >= 20, got {T!r}")
    max_length = T if fixed_length else T + T // 10
    lengths = np.full(n, T) if fixed_length else rng.integers(T, max_length + 1, size=n)
    first = rng.integers(0, 10, size=n)
    # The i-th of the first T/2 - 1 unmarked pairs: index i, or i + 1 from
    # the first marked pair on.
    second = rng.integers(0, T // 2 - 1, size=n)
    second = second + (second >= first)
    values = rng.uniform(-1.0, 1.0, size=(n, max_length))
    sequences, targets = [], np.empty((n, 1), dtype="float32")
    for row in range(n):
        length = lengths[row]
        seq = np.zeros((length, 2))
        seq[:, 0] = values[row, :length]
        seq[0, 1] = seq[-1, 1] = -1.0
        seq[[first[row], second[row]], 1] = 1.0
        if seq[0, 1] == 1.0:
            seq[0, 0] = 0.0
        x1, x2 = seq[first[row], 0], seq[second[row], 0]
        targets[row, 0] = 0.5 + (x1 + x2) / 4.0
        sequences.append(seq)
    positions = np.stack([first, second], axis=1)
    return TaskBatch(_pad_start(sequences, max_length), targets, lengths, positions)


def temporal_order(rng, n, min_length=100, max_length=110):
    """The temporal order task (Hochreiter & Schmidhuber 1997, Experiment 6a).

    One-hot symbols (`TEMPORAL_ORDER_SYMBOLS`): the sequence starts with E,
    ends with B, and its other steps are a, b, c or d, except two that are
    X or Y: one at step t1 in [10, 20] and one at t2 in [50, 60] (the
    paper's 1-based steps; `positions` holds t1 - 1 and t2 - 1). The length
    is uniform in [100, 110]. The class (`TEMPORAL_ORDER_CLASSES`: XX, XY,
    YX, YY) is the one-hot target at the end.

    Args:
        rng: A `numpy.random.Generator`.
        n: Number of sequences.
        min_length, max_length: The range of lengths (the paper's 100, 110;
            smaller only for tests, at least 61).

    Returns:
        A `TaskBatch` with 8 features and 4 targets.
    """
    _check_count(n)
    if not 61 <= min_length <= max_length:
        raise ValueError(
            "min_length and max_length must satisfy 61 <= min_length <= "
            f"max_length, got {min_length!r} and {max_length!r}"
        )
    index = {symbol: k for k, symbol in enumerate(TEMPORAL_ORDER_SYMBOLS)}
    eye = np.eye(len(TEMPORAL_ORDER_SYMBOLS))
    lengths = rng.integers(min_length, max_length + 1, size=n)
    t1 = rng.integers(10, 21, size=n) - 1
    t2 = rng.integers(50, 61, size=n) - 1
    is_y = rng.integers(0, 2, size=(n, 2))
    distractors = rng.integers(index["a"], index["d"] + 1, size=(n, max_length))
    sequences = []
    for row in range(n):
        symbols = distractors[row, : lengths[row]].copy()
        symbols[0], symbols[-1] = index["E"], index["B"]
        symbols[t1[row]] = index["Y"] if is_y[row, 0] else index["X"]
        symbols[t2[row]] = index["Y"] if is_y[row, 1] else index["X"]
        sequences.append(eye[symbols])
    targets = np.eye(4, dtype="float32")[2 * is_y[:, 0] + is_y[:, 1]]
    positions = np.stack([t1, t2], axis=1)
    return TaskBatch(_pad_start(sequences, max_length), targets, lengths, positions)


def spike_delay(rng, n, min_delay=10, max_delay=30, length=None):
    """Measuring the delay between two spikes (after Gers et al. 2002).

    One input: 1.0 at two steps, 0.0 elsewhere. The first spike is at a step
    in [0, 9], the second `d` steps later, `d` uniform in [min_delay,
    max_delay]; every sequence has the same length (`max_delay + 20` unless
    given), so only the spikes tell the time. The target at the end is
    (d - min_delay) / (max_delay - min_delay): the network must count the
    steps between the spikes and hold the count. A sequence is right when the
    output, scaled back to steps, is within half a step of d (see
    `wrong_spike_delay`).

    Args:
        rng: A `numpy.random.Generator`.
        n: Number of sequences.
        min_delay, max_delay: The range of delays, 1 <= min < max.
        length: Steps per sequence, at least max_delay + 10.

    Returns:
        A `TaskBatch` with 1 feature and 1 target; `positions` holds the
        steps of the two spikes.
    """
    _check_count(n)
    if not 1 <= min_delay < max_delay:
        raise ValueError(
            "min_delay and max_delay must satisfy 1 <= min_delay < max_delay, "
            f"got {min_delay!r} and {max_delay!r}"
        )
    length = max_delay + 20 if length is None else length
    if length < max_delay + 10:
        raise ValueError(f"length must be >= max_delay + 10, got {length!r}")
    first = rng.integers(0, 10, size=n)
    delays = rng.integers(min_delay, max_delay + 1, size=n)
    inputs = np.zeros((n, length, 1), dtype="float32")
    rows = np.arange(n)
    inputs[rows, first, 0] = 1.0
    inputs[rows, first + delays, 0] = 1.0
    targets = ((delays - min_delay) / (max_delay - min_delay)).astype("float32")
    positions = np.stack([first, first + delays], axis=1)
    return TaskBatch(inputs, targets[:, None], np.full(n, length), positions)


def wrong_adding(outputs, targets):
    """Sequences whose absolute error is >= 0.04 (the paper's criterion)."""
    error = np.abs(np.asarray(outputs) - np.asarray(targets))
    return int(np.sum(error[:, 0] >= ADDING_TOLERANCE))


def wrong_temporal_order(outputs, targets):
    """Sequences where some output's absolute error is >= 0.3."""
    error = np.abs(np.asarray(outputs) - np.asarray(targets))
    return int(np.sum(error.max(axis=1) >= TEMPORAL_ORDER_TOLERANCE))


def wrong_spike_delay(outputs, targets, min_delay=10, max_delay=30):
    """Sequences whose output is half a step or more off the true delay."""
    scale = max_delay - min_delay
    error = np.abs(np.asarray(outputs) - np.asarray(targets))[:, 0] * scale
    return int(np.sum(error >= 0.5))
