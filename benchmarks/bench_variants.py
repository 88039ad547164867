"""Benchmark: each option of the variant space against `StandardLSTM`.

For every Greff variant and for layer normalization, projection (to half the
units) and clipping, a compiled training step (`train_on_batch`, Adam, MSE)
and a forward pass (`predict_on_batch`) of `LSTMVariant`, at S1 and S2 of
REFERENCE.md (TensorFlow backend, CPU, float32), as ratios to `StandardLSTM`
(on its fast path) measured in the same run. Contenders are built and warmed
up first, then run interleaved, round after round; medians are reported.
Where an option runs the generic loop instead of the fast path, the table
says so (`fast_path_fallback_reason()`).

Targets (issue 12): layer normalization at most 1.5x, projection to units/2 at
most 0.9x, clipping and the Greff switches at most 1.1x (FGR reported); the
table's last column says whether the training step and the forward pass of
each option meet its target.

Usage:
    python benchmarks/bench_variants.py --quick     # S1 only, a few minutes
    python benchmarks/bench_variants.py --json results.json
    python benchmarks/bench_variants.py --options layer_norm FGR --shapes S1
"""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from bench_layers import SHAPES  # noqa: E402
from bench_layers import time_interleaved  # noqa: E402

BASELINE = "StandardLSTM"

#: name -> LSTMVariant arguments (besides units); the projection is to units/2.
OPTIONS = {
    "NP (= standard)": {"variant": "NP"},
    "vanilla": {"variant": "vanilla"},
    "NIG": {"variant": "NIG"},
    "NFG": {"variant": "NFG"},
    "NOG": {"variant": "NOG"},
    "NIAF": {"variant": "NIAF"},
    "NOAF": {"variant": "NOAF"},
    "CIFG": {"variant": "CIFG"},
    "FGR": {"variant": "FGR"},
    "layer_norm": {"layer_norm": True},
    "projection (units/2)": {"projection_units": "half"},
    "projection (units/2) + clip": {"projection_units": "half", "projection_clip": 0.5},
    "cell_clip": {"cell_clip": 3.0},
}

#: Issue 12's bound on both ratios, per option (`None`: reported only).
TARGETS = {"FGR": None, "layer_norm": 1.5} | {
    name: 0.9 for name in OPTIONS if name.startswith("projection")
}


def target(name):
    """The bound on `name`'s ratios (1.1 for the switches and clipping)."""
    return TARGETS.get(name, 1.1)


def _factories(names=None):
    import keras_lstm_variants as klv

    def variant(options):
        def make(units):
            kwargs = dict(options)
            if kwargs.get("projection_units") == "half":
                kwargs["projection_units"] = units // 2
            return klv.LSTMVariant(units, **kwargs)

        return make

    return {BASELINE: lambda u: klv.StandardLSTM(u)} | {
        name: variant(OPTIONS[name]) for name in (names or OPTIONS)
    }


def keras_contender(factory, shape, seed=0):
    """Returns (train_step, forward) callables for one layer; the targets
    have the layer's output width (half the units with the projection)."""
    import keras

    batch, steps, features, units = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    model = keras.Sequential([keras.Input((steps, features)), factory(units)])
    y = rng.standard_normal((batch, model.output_shape[-1])).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    return (lambda: model.train_on_batch(x, y)), (lambda: model.predict_on_batch(x))


def measure(shape_names, rounds, warmup, options=None):
    """Times the baseline and `options` (names of `OPTIONS`; default: all) at
    every shape; returns a list of result rows."""
    factories = _factories(options)
    rows = []
    for shape_name in shape_names:
        shape = SHAPES[shape_name]
        contenders, paths = {}, {}
        for name, factory in factories.items():
            contenders[name] = keras_contender(factory, shape)
            layer = factory(shape[-1])
            layer.build((None, shape[1], shape[2]))
            paths[name] = layer.fast_path_fallback_reason() is None
        medians = time_interleaved(contenders, rounds, warmup)
        for name in contenders:
            rows.append(
                {
                    "shape": shape_name,
                    "contender": name,
                    "fast_path": paths[name],
                    **{
                        f"{kind}_{what}": value
                        for kind in ("train", "forward")
                        for what, value in (
                            ("ms", medians[(name, kind)]),
                            (
                                "ratio",
                                medians[(name, kind)] / medians[(BASELINE, kind)],
                            ),
                        )
                    },
                }
            )
    return rows


def format_table(rows):
    lines = [
        "| shape | option | path | train ms | train × standard | forward ms "
        "| forward × standard | target |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        bound = None if r["contender"] == BASELINE else target(r["contender"])
        met = ""
        if bound is not None:
            worst = max(r["train_ratio"], r["forward_ratio"])
            met = f"≤ {bound}: {'met' if worst <= bound else 'missed'}"
        lines.append(
            f"| {r['shape']} | {r['contender']} | "
            f"{'fast' if r['fast_path'] else 'generic'} | {r['train_ms']:.1f} | "
            f"{r['train_ratio']:.2f} | {r['forward_ms']:.1f} | "
            f"{r['forward_ratio']:.2f} | {met} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="S1 only, fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument(
        "--shapes", nargs="+", default=None, choices=sorted(SHAPES), help="shapes"
    )
    parser.add_argument(
        "--options",
        nargs="+",
        default=None,
        choices=list(OPTIONS),
        metavar="OPTION",
        help="only these options (default: all): " + ", ".join(map(repr, OPTIONS)),
    )
    args = parser.parse_args(argv)
    shapes = args.shapes or (["S1"] if args.quick else ["S1", "S2"])
    rounds = args.rounds or (5 if args.quick else 10)
    rows = measure(shapes, rounds=rounds, warmup=2, options=args.options)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
