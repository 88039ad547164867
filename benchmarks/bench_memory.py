"""Benchmark: peak memory of one training step, our layers against Keras's LSTM.

Measures, for `keras.layers.LSTM`, our `StandardLSTM`, `PeepholeLSTM` and
`CoupledLSTM` (fast path, chosen automatically) and `PeepholeLSTM` on the
generic `keras.layers.RNN` loop (`use_fast_path=False`), the memory of one
compiled `model.train_on_batch` (forward, backward, Adam update; mean squared
error on the last output), float32, TensorFlow backend, CPU, at:

* batch 8, 8 features, 64 units and T = 1,000, 10,000 and 100,000 steps
  (`--quick` skips 100,000, which takes minutes on the generic loops);
* S2 of REFERENCE.md (batch 32, 1,000 steps, 32 features, 128 units).

Every contender runs in two fresh subprocesses of its own, so that peaks do
not mix:

* tensors: with TensorFlow's BFC allocator on the CPU
  (`TF_CPU_ALLOCATOR_USE_BFC=true`), `tf.config.experimental.get_memory_info`
  counts every tensor allocation, XLA's buffers included. After a warm-up
  step the peak is reset and one more step measured; its peak minus the
  memory in use before it is the step's own tensor memory: what the forward
  pass keeps for the backward pass, gradients, temporaries. Also given in
  units of `batch × time × units` float32 values, the size of one per-step
  state sequence;
* RSS: with TensorFlow's default allocator, the process's peak resident set
  (`resource.getrusage(...).ru_maxrss`) over a warm-up step at 16 time steps
  and one step at the full length, and that peak minus the resident set
  before the full-length step (so the libraries, the model and the compiled
  functions count in the first figure only; the fast path's XLA compilation
  for the full length still counts in the second). RSS also holds what the
  C allocator keeps cached; it is what the operating system sees.

Ratios are to `keras.layers.LSTM` at the same shape.

Usage:
    python benchmarks/bench_memory.py            # everything, many minutes
    python benchmarks/bench_memory.py --quick    # without T = 100,000
    python benchmarks/bench_memory.py --json results.json
"""

import argparse
import json
import os
import resource
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

#: name: (batch, time steps, input_dim, units)
SHAPES = {
    "T=1,000": (8, 1_000, 8, 64),
    "T=10,000": (8, 10_000, 8, 64),
    "T=100,000": (8, 100_000, 8, 64),
    "S2": (32, 1000, 32, 128),
}
QUICK_SKIPS = ("T=100,000",)
BASELINE = "keras.layers.LSTM"
GENERIC = "PeepholeLSTM (generic loop)"
#: The contenders, in table order (`_layer_factories` builds them).
CONTENDERS = (BASELINE, "StandardLSTM", "PeepholeLSTM", "CoupledLSTM", GENERIC)
#: Time steps of the warm-up step of the RSS measurement.
WARMUP_STEPS = 16


def _layer_factories():
    """name -> function(units) returning a fresh RNN layer."""
    import keras

    import keras_lstm_variants as klv

    return {
        BASELINE: lambda u: keras.layers.LSTM(u),
        "StandardLSTM": lambda u: klv.StandardLSTM(u),
        "PeepholeLSTM": lambda u: klv.PeepholeLSTM(u),
        "CoupledLSTM": lambda u: klv.CoupledLSTM(u),
        GENERIC: lambda u: klv.PeepholeLSTM(u, use_fast_path=False),
    }


def _rss_bytes():
    """The current resident set of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _max_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(name, shape_name, kind):
    """Runs in a subprocess: prints one contender's peak as JSON."""
    import keras
    import tensorflow as tf

    batch, steps, features, units = SHAPES[shape_name]
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [keras.Input((None, features)), _layer_factories()[name](units)]
    )
    model.compile(optimizer="adam", loss="mse")
    y = rng.standard_normal((batch, units)).astype("float32")

    def batch_of(length):
        return rng.standard_normal((batch, length, features)).astype("float32")

    if kind == "tensors":
        x = batch_of(steps)
        model.train_on_batch(x, y)
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        model.train_on_batch(x, y)
        peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
        result = {"tensor_peak": peak - before}
    else:
        model.train_on_batch(batch_of(WARMUP_STEPS), y)
        x = batch_of(steps)
        before = _rss_bytes()
        model.train_on_batch(x, y)
        peak = _max_rss_bytes()
        result = {"rss_peak": peak, "rss_step": peak - before}
    print(json.dumps(result))


def _run_child(name, shape_name, kind):
    env = dict(os.environ)
    if kind == "tensors":
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    else:
        env.pop("TF_CPU_ALLOCATOR_USE_BFC", None)
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, shape_name, kind],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"{name} at {shape_name} ({kind}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(shape_names, names, kinds):
    """Every contender at every shape, one subprocess each; result rows."""
    rows = []
    for shape_name in shape_names:
        batch, steps, _, units = SHAPES[shape_name]
        floats = batch * steps * units
        for name in names:
            row = {"shape": shape_name, "contender": name}
            for kind in kinds:
                row.update(_run_child(name, shape_name, kind))
            if "tensor_peak" in row:
                row["tensor_btu_floats"] = row["tensor_peak"] / (4 * floats)
            rows.append(row)
            print(f"# {row}", file=sys.stderr, flush=True)
    for row in rows:
        base = next(
            r for r in rows if r["shape"] == row["shape"] and r["contender"] == BASELINE
        )
        for key in ("tensor_peak", "rss_peak", "rss_step"):
            if key in row:
                row[f"{key}_ratio"] = row[key] / base[key]
    return rows


def format_table(rows):
    """The results as one Markdown table (MiB = 2^20 bytes)."""

    def cell(row, key, ratio=True):
        if key not in row:
            return "–"
        text = f"{row[key] / 2**20:.0f}"
        return f"{text} ({row[f'{key}_ratio']:.2f}×)" if ratio else text

    lines = [
        "| shape | contender | tensors MiB (× LSTM) | batch×time×units floats "
        "| peak RSS MiB (× LSTM) | RSS step MiB (× LSTM) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        floats = f"{r['tensor_btu_floats']:.1f}" if "tensor_btu_floats" in r else "–"
        lines.append(
            f"| {r['shape']} | {r['contender']} | {cell(r, 'tensor_peak')} "
            f"| {floats} | {cell(r, 'rss_peak')} | {cell(r, 'rss_step')} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip T = 100,000")
    parser.add_argument("--json", metavar="FILE", help="write results as JSON")
    parser.add_argument(
        "--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES)
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=list(CONTENDERS),
        default=None,
        help="a subset (default: all; keras.layers.LSTM always runs)",
    )
    parser.add_argument(
        "--kinds", nargs="+", choices=("tensors", "rss"), default=("tensors", "rss")
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return None
    shapes = [s for s in args.shapes if not (args.quick and s in QUICK_SKIPS)]
    names = [BASELINE] + [n for n in (args.contenders or CONTENDERS) if n != BASELINE]
    rows = measure(shapes, names, args.kinds)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
