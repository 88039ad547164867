"""Overhead of the GateHistograms callback per logged epoch, against the epoch.

Trains one of our layers (128 units, 100 time steps, 32 features, batches of
64, as shape S1 of the reference) for a few epochs with the callback logging
every epoch on a probe batch of 32 sequences, and times, in the same run:

* the epoch itself (from `on_epoch_begin` to `on_epoch_end`, before the
  callback writes), and
* the callback's `write_gates` (probe run, histograms, scalars, images,
  flush).

The first logged epoch also traces the probe function; it is reported apart.
The figures are medians over the other epochs; only the ratio is meaningful
on a shared machine.

Usage::

    python benchmarks/bench_gate_histograms.py [--layer peephole] [--quick]
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm_variants as klv  # noqa: E402

LAYERS = {
    "standard": klv.StandardLSTM,
    "peephole": klv.PeepholeLSTM,
    "coupled": klv.CoupledLSTM,
}
TIME_STEPS, FEATURES, UNITS, BATCH, PROBE_BATCH = 100, 32, 128, 64, 32


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch, up to (not including) the callbacks after it."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


class TimedGateHistograms(klv.GateHistograms):
    """The callback, timing each `write_gates`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.times = []

    def write_gates(self, step):
        start = time.perf_counter()
        result = super().write_gates(step)
        self.times.append(time.perf_counter() - start)
        return result


def measure(layer, epochs, batches, jit_compile=False):
    keras.utils.clear_session()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batches * BATCH, TIME_STEPS, FEATURES)).astype("float32")
    y = x.mean(axis=(1, 2))[:, None]
    model = keras.Sequential(
        [
            keras.Input((TIME_STEPS, FEATURES)),
            LAYERS[layer](UNITS),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse", jit_compile=jit_compile)
    with tempfile.TemporaryDirectory() as log_dir:
        timer = EpochTimer()
        gates = TimedGateHistograms(x[:PROBE_BATCH], log_dir)
        model.fit(
            x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer, gates]
        )
    return timer.times, gates.times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", choices=sorted(LAYERS), default="standard")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batches", type=int, default=16, help="batches per epoch")
    parser.add_argument("--jit", action="store_true", help="jit_compile the model")
    parser.add_argument("--quick", action="store_true", help="3 epochs of 4 batches")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.batches = 3, 4
    epoch_times, callback_times = measure(
        args.layer, args.epochs, args.batches, args.jit
    )
    print(
        f"{args.layer} layer, {UNITS} units, {TIME_STEPS} steps, {FEATURES} "
        f"features; epoch = {args.batches} batches of {BATCH}; probe batch "
        f"{PROBE_BATCH}; jit_compile={args.jit}"
    )
    print(
        f"first epoch: {epoch_times[0]:.2f} s, callback {callback_times[0]:.3f} s "
        "(includes tracing both functions)"
    )
    epochs = epoch_times[1:]
    callbacks = callback_times[1:]
    ratios = [c / e for c, e in zip(callbacks, epochs, strict=True)]
    print(
        f"later epochs (median of {len(epochs)}): epoch {statistics.median(epochs):.3f}"
        f" s, callback {statistics.median(callbacks) * 1e3:.1f} ms, overhead "
        f"{statistics.median(ratios):.1%} of the epoch "
        f"(per training batch: {statistics.median(epochs) / args.batches * 1e3:.0f} ms)"
    )


if __name__ == "__main__":
    main()
