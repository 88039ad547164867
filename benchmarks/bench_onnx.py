"""Benchmark: ONNX Runtime on `export_onnx`'s file against Keras's
`predict_on_batch` of the same model (TensorFlow, CPU, float32).

At the shapes S1, S2, S3 of REFERENCE.md, for `keras.layers.LSTM` and our
standard, peephole (all three peepholes) and coupled layers (each
`Sequential([Input((None, features)), layer(units)])`, the last output), the
model is exported with `klv.export_onnx` (one native ONNX `LSTM` node) and run
by an `onnxruntime.InferenceSession` on the same input. The two run in
blocks of calls, round after round (`time_in_blocks` says why blocks); the
ratio ONNX Runtime / Keras is measured in the same run, and the table also
checks that both give the same outputs. ONNX Runtime uses its default threads (one
per core) unless `--ort-threads` says otherwise; so does TensorFlow. Next to
the wall time (the median of the rounds) the table gives the CPU time the
process spent per call (all threads): on a machine shared with other work the
wall time also counts the time others hold the cores, the CPU time does not.

Usage:
    python benchmarks/bench_onnx.py            # S1, S2, S3, a few minutes
    python benchmarks/bench_onnx.py --quick    # S1 only, fewer rounds
    python benchmarks/bench_onnx.py --json results.json
"""

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_layers import SHAPES  # noqa: E402

#: The target of issue 16: ONNX Runtime at most half of Keras's time at S1.
TARGET_AT_S1 = 0.5


def _layers():
    import keras

    import keras_lstm_variants as klv

    return {
        "keras.layers.LSTM": lambda u: keras.layers.LSTM(u),
        "StandardLSTM": lambda u: klv.StandardLSTM(u),
        "PeepholeLSTM": lambda u: klv.PeepholeLSTM(u),
        "CoupledLSTM": lambda u: klv.CoupledLSTM(
            u, peephole_gates=("forget", "output")
        ),
    }


def _contenders(factory, shape, directory, ort_threads=0, seed=0):
    """`(keras forward, onnx forward, largest difference)` for one layer."""
    import keras
    import onnxruntime as ort

    import keras_lstm_variants as klv

    batch, steps, features, units = shape
    x = np.random.default_rng(seed).standard_normal((batch, steps, features))
    x = x.astype("float32")
    model = keras.Sequential([keras.Input((None, features), name="x"), factory(units)])
    path = klv.export_onnx(model, os.path.join(directory, f"{model.name}.onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = ort_threads  # 0: ONNX Runtime's default
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    difference = float(
        np.abs(session.run(None, {"x": x})[0] - model.predict_on_batch(x)).max()
    )
    return (
        lambda: model.predict_on_batch(x),
        lambda: session.run(None, {"x": x}),
        difference,
    )


def time_in_blocks(contenders, rounds, block):
    """Times `{name: {engine: fn}}`: round after round, each name's engines
    in turn, each engine a block of `block` timed calls after one untimed
    one. Returns `{(name, engine): (wall seconds, CPU seconds)}`, one entry
    per timed call; the CPU time is this process's (all its threads): unlike
    the wall time, it does not count the time other processes hold the cores.

    Blocks, not single calls in turn: TensorFlow's and ONNX Runtime's thread
    pools spin-wait for a while after a call, and a call of the other engine
    right after it shares the cores with them (measured here at S1: ONNX
    Runtime 14-20 ms when its calls alternate with Keras's, 6-7 ms in a
    block). A server runs one engine, call after call.
    """
    times = {
        (name, engine): ([], []) for name, fns in contenders.items() for engine in fns
    }
    for _ in range(rounds):
        for name, fns in contenders.items():
            for engine, fn in fns.items():
                fn()
                wall, cpu = times[(name, engine)]
                for _ in range(block):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    fn()
                    wall.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
    return times


def measure(shapes, rounds, block, ort_threads=0):
    """Times every layer at every shape; returns a list of result rows."""
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for shape_name in shapes:
            contenders, differences = {}, {}
            for name, factory in _layers().items():
                keras_fn, onnx_fn, difference = _contenders(
                    factory, SHAPES[shape_name], directory, ort_threads
                )
                contenders[name] = {"keras": keras_fn, "onnxruntime": onnx_fn}
                differences[name] = difference
            times = time_in_blocks(contenders, rounds, block)
            for name in contenders:
                (keras_ms, keras_cpu), (onnx_ms, onnx_cpu) = (
                    tuple(1000 * statistics.median(t) for t in times[(name, engine)])
                    for engine in ("keras", "onnxruntime")
                )
                rows.append(
                    {
                        "shape": shape_name,
                        "layer": name,
                        "keras_ms": keras_ms,
                        "onnxruntime_ms": onnx_ms,
                        "ratio": onnx_ms / keras_ms,
                        "keras_cpu_ms": keras_cpu,
                        "onnxruntime_cpu_ms": onnx_cpu,
                        "cpu_ratio": onnx_cpu / keras_cpu,
                        "max_abs_difference": differences[name],
                    }
                )
    return rows


def format_table(rows):
    lines = [
        "ONNX Runtime on the exported file vs Keras predict_on_batch "
        "(ratio < 1: ONNX Runtime faster)",
        f"{'shape':<6}{'layer':<20}{'keras ms':>10}{'ORT ms':>10}{'ratio':>8}"
        f"{'keras cpu':>11}{'ORT cpu':>9}{'ratio':>7}{'max |diff|':>12}",
    ]
    for r in rows:
        lines.append(
            f"{r['shape']:<6}{r['layer']:<20}{r['keras_ms']:>10.2f}"
            f"{r['onnxruntime_ms']:>10.2f}{r['ratio']:>8.2f}"
            f"{r['keras_cpu_ms']:>11.2f}{r['onnxruntime_cpu_ms']:>9.2f}"
            f"{r['cpu_ratio']:>7.2f}{r['max_abs_difference']:>12.1e}"
        )
    s1 = [r["ratio"] for r in rows if r["shape"] == "S1"]
    if s1:
        verdict = "met" if max(s1) <= TARGET_AT_S1 else "NOT met"
        lines.append(
            f"Target at S1: ratio <= {TARGET_AT_S1} for every layer: {verdict} "
            f"(worst {max(s1):.2f})."
        )
    return "\n".join(lines)


def main(argv=None):
    # Each contender's model traces its own predict function: not a problem.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="S1 only")
    parser.add_argument("--json", metavar="FILE", help="write results as JSON")
    parser.add_argument("--rounds", type=int, help="rounds of blocks per contender")
    parser.add_argument(
        "--block", type=int, default=5, help="timed calls per block (default 5)"
    )
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES))
    parser.add_argument(
        "--ort-threads",
        type=int,
        default=0,
        help="ONNX Runtime intra-op threads (0: its default, one per core)",
    )
    args = parser.parse_args(argv)
    shapes = args.shapes or (["S1"] if args.quick else sorted(SHAPES))
    rounds = args.rounds or (3 if args.quick else 6)
    rows = measure(shapes, rounds, args.block, args.ort_threads)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
