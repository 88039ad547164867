"""Benchmark: our GRU layer against Keras's GRU (TensorFlow, CPU).

A training step (one compiled `model.train_on_batch`, Adam, mean squared
error) and a forward pass (one compiled `model.predict_on_batch`) of
`keras_lstm_variants.GRU` (fast path, and the generic loop) against
`keras.layers.GRU`, both with `reset_after=True` (Keras's default) and
`False`, at S1 of REFERENCE.md (batch 64, 100 steps, 32 features, 128 units;
float32) unless told otherwise. Keras's GRU runs cuDNN only on a GPU; on a CPU
it runs its generic loop.

Method as `bench_layers.py` (whose timing loop it uses): every contender is
built and warmed up first, then all run interleaved, round after round, and
each reports its median; ratios are to `keras.layers.GRU` with the same
`reset_after`, measured in the same run.

Usage:
    python benchmarks/bench_gru.py              # S1, 15 rounds
    python benchmarks/bench_gru.py --rounds 5 --shapes S1 S2
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_layers  # noqa: E402

SHAPES = bench_layers.SHAPES


def _factories():
    """name -> (function(units) returning a fresh layer, name of its baseline)."""
    import keras

    import keras_lstm_variants as klv

    factories = {}
    for reset_after in (True, False):
        baseline = f"keras.layers.GRU(reset_after={reset_after})"
        factories[baseline] = (
            lambda u, r=reset_after: keras.layers.GRU(u, reset_after=r),
            baseline,
        )
        factories[f"GRU(reset_after={reset_after})"] = (
            lambda u, r=reset_after: klv.GRU(u, reset_after=r),
            baseline,
        )
        factories[f"GRU(reset_after={reset_after}, generic loop)"] = (
            lambda u, r=reset_after: klv.GRU(u, reset_after=r, use_fast_path=False),
            baseline,
        )
    return factories


def measure(shapes, rounds, warmup, names=None):
    """Times the contenders (all, or `names`) at each shape; returns rows."""
    factories = _factories()
    names = names or tuple(factories)
    rows = []
    for shape_name in shapes:
        shape = SHAPES[shape_name]
        contenders = {
            name: bench_layers._keras_contender(factories[name][0], shape)
            for name in names
        }
        medians = bench_layers.time_interleaved(contenders, rounds, warmup)
        for name in names:
            baseline = factories[name][1]
            row = {"shape": shape_name, "contender": name}
            for kind in ("train", "forward"):
                row[f"{kind}_ms"] = medians[(name, kind)]
                row[f"{kind}_ratio"] = medians[(name, kind)] / medians[(baseline, kind)]
            rows.append(row)
    return rows


def format_table(rows):
    """The results as a Markdown table."""
    lines = [
        "| shape | contender | train ms | train × Keras GRU | forward ms "
        "| forward × Keras GRU |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['shape']} | {r['contender']} | {r['train_ms']:.1f} "
        f"| {r['train_ratio']:.2f} | {r['forward_ms']:.1f} "
        f"| {r['forward_ratio']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds")
    parser.add_argument(
        "--shapes", nargs="+", choices=sorted(SHAPES), default=["S1"]
    )
    args = parser.parse_args(argv)
    rows = measure(args.shapes, args.rounds, warmup=2)
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
