"""Benchmark: our LSTM layers and cells against Keras's LSTM (TensorFlow, CPU).

Measures, at the shapes S1, S2, S3 of REFERENCE.md (float32):

* a training step: forward, backward and optimizer update, as one compiled
  `model.train_on_batch` (Adam, mean squared error);
* a forward pass: one compiled `model.predict_on_batch`;

for `keras.layers.LSTM`, our three layers (fast path, chosen automatically),
and each of our cells inside plain `keras.layers.RNN` against
`keras.layers.LSTMCell` inside `keras.layers.RNN`. Where PyTorch is installed,
`torch.nn.LSTM` runs at the same shapes for context.

Method: every contender is built and warmed up first (tracing, compilation);
then the contenders run interleaved, round after round, and each reports its
median. Ratios are to `keras.layers.LSTM` measured in the same run, so they
survive a noisy, shared machine better than the milliseconds.

Peak memory of a training step at S2: each contender runs in a fresh
subprocess with TensorFlow's BFC allocator on the CPU
(`TF_CPU_ALLOCATOR_USE_BFC=true`), which makes
`tf.config.experimental.get_memory_info("CPU:0")` count every tensor
allocation; after a warm-up step the peak is reset and one more step
measured. That is the memory of the step's tensors (activations saved for the
backward pass, gradients, temporaries) and nothing else: not Python objects,
not compiled code, not what the C allocator keeps cached, which a max-RSS
delta would mix in (and `tracemalloc` does not see TensorFlow's allocations
at all). The table also gives the peak in units of `batch × time × units`
float32 values.

Usage:
    python benchmarks/bench_layers.py            # everything, several minutes
    python benchmarks/bench_layers.py --quick    # about a minute
    python benchmarks/bench_layers.py --json results.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

#: name: (batch, time steps, input_dim, units)
SHAPES = {
    "S1": (64, 100, 32, 128),
    "S2": (32, 1000, 32, 128),
    "S3": (64, 100, 256, 512),
}
BASELINE = "keras.layers.LSTM"
CELL_BASELINE = "RNN(keras LSTMCell)"
TORCH = "torch.nn.LSTM"


def _layer_factories():
    """name -> function(units) returning a fresh RNN layer."""
    import keras

    import keras_lstm_variants as klv

    return {
        BASELINE: lambda u: keras.layers.LSTM(u),
        "StandardLSTM": lambda u: klv.StandardLSTM(u),
        "PeepholeLSTM": lambda u: klv.PeepholeLSTM(u),
        "CoupledLSTM": lambda u: klv.CoupledLSTM(u),
        "PeepholeLSTM (generic loop)": lambda u: klv.PeepholeLSTM(
            u, use_fast_path=False
        ),
        CELL_BASELINE: lambda u: keras.layers.RNN(keras.layers.LSTMCell(u)),
        "RNN(StandardLSTMCell)": lambda u: keras.layers.RNN(klv.StandardLSTMCell(u)),
        "RNN(PeepholeLSTMCell)": lambda u: keras.layers.RNN(klv.PeepholeLSTMCell(u)),
        "RNN(CoupledLSTMCell)": lambda u: keras.layers.RNN(klv.CoupledLSTMCell(u)),
    }


#: Contenders at S2 and S3 in --quick mode (all of them run at S1; PyTorch
#: only at S1).
QUICK_ALL_SHAPES = (BASELINE, "PeepholeLSTM", "CoupledLSTM")


def _keras_contender(factory, shape, seed=0):
    """Returns (train_step, forward) callables for one Keras layer."""
    import keras

    batch, steps, features, units = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    y = rng.standard_normal((batch, units)).astype("float32")
    model = keras.Sequential([keras.Input((steps, features)), factory(units)])
    model.compile(optimizer="adam", loss="mse")
    return (lambda: model.train_on_batch(x, y)), (lambda: model.predict_on_batch(x))


def _torch_contender(shape, seed=0):
    """Returns (train_step, forward) for `torch.nn.LSTM`, or None."""
    try:
        import torch
    except ImportError:
        return None
    batch, steps, features, units = shape
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(features, units, batch_first=True)
    optimizer = torch.optim.Adam(lstm.parameters())
    x = torch.randn(batch, steps, features)
    y = torch.randn(batch, units)

    def train_step():
        optimizer.zero_grad()
        _, (h, _) = lstm(x)
        loss = torch.nn.functional.mse_loss(h[-1], y)
        loss.backward()
        optimizer.step()

    def forward():
        with torch.no_grad():
            lstm(x)

    return train_step, forward


def time_interleaved(contenders, rounds, warmup):
    """Runs `{name: (train, forward)}` round after round, interleaved, after
    `warmup` untimed rounds; returns `{(name, "train" | "forward"): median
    milliseconds}`."""
    times = {(n, k): [] for n in contenders for k in ("train", "forward")}
    for _ in range(warmup):
        for train, forward in contenders.values():
            train()
            forward()
    for _ in range(rounds):
        for name, (train, forward) in contenders.items():
            for kind, fn in (("train", train), ("forward", forward)):
                start = time.perf_counter()
                fn()
                times[(name, kind)].append(time.perf_counter() - start)
    return {key: 1000 * statistics.median(v) for key, v in times.items()}


def measure(shapes, names, rounds, warmup, torch_shapes=()):
    """Times every contender at every shape; returns a list of result rows."""
    factories = _layer_factories()
    rows = []
    for shape_name in shapes:
        shape = SHAPES[shape_name]
        contenders = {}
        for name in names[shape_name]:
            contenders[name] = _keras_contender(factories[name], shape)
        if shape_name in torch_shapes:
            torch_fns = _torch_contender(shape)
            if torch_fns is not None:
                contenders[TORCH] = torch_fns
        medians = time_interleaved(contenders, rounds, warmup)
        for name in contenders:
            row = {"shape": shape_name, "contender": name}
            for kind in ("train", "forward"):
                ms = medians[(name, kind)]
                row[f"{kind}_ms"] = ms
                row[f"{kind}_ratio"] = ms / medians[(BASELINE, kind)]
                if name.startswith("RNN(") and (CELL_BASELINE, kind) in medians:
                    row[f"{kind}_ratio_to_cell"] = ms / medians[(CELL_BASELINE, kind)]
                row[f"{kind}_ms_per_step"] = ms / shape[1]
            rows.append(row)
    return rows


def _peak_memory_child(name):
    """Runs in a subprocess: prints the tensor memory peak of one train step."""
    import tensorflow as tf

    train, _ = _keras_contender(_layer_factories()[name], SHAPES["S2"])
    train()
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    train()
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    print(json.dumps({"peak_bytes": peak - before}))


def peak_memory(names):
    """Peak tensor memory of a training step at S2, one subprocess each."""
    batch, steps, _, units = SHAPES["S2"]
    activation_floats = batch * steps * units
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    results = []
    for name in names:
        out = subprocess.run(
            [sys.executable, __file__, "--peak-memory-child", name],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]
        results.append(
            {
                "contender": name,
                "peak_mb": peak / 2**20,
                "peak_in_btu_floats": peak / (4 * activation_floats),
            }
        )
    return results


def format_table(rows, memory):
    """The results as Markdown tables."""
    lines = [
        "| shape | contender | train ms | train × LSTM | forward ms "
        "| forward × LSTM | train ms/step |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cell = ""
        if "train_ratio_to_cell" in r:
            cell = (
                f" ({r['train_ratio_to_cell']:.2f} / "
                f"{r['forward_ratio_to_cell']:.2f} × LSTMCell)"
            )
        lines.append(
            f"| {r['shape']} | {r['contender']}{cell} | {r['train_ms']:.1f} "
            f"| {r['train_ratio']:.2f} | {r['forward_ms']:.1f} "
            f"| {r['forward_ratio']:.2f} | {r['train_ms_per_step']:.3f} |"
        )
    if memory:
        lines += [
            "",
            "Peak tensor memory of one training step at S2 "
            "(batch 32, 1000 steps, 128 units):",
            "",
            "| contender | peak MiB | in batch×time×units floats |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {m['contender']} | {m['peak_mb']:.0f} "
            f"| {m['peak_in_btu_floats']:.1f} |"
            for m in memory
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--json", metavar="FILE", help="write results as JSON")
    parser.add_argument("--rounds", type=int, help="timed rounds per contender")
    parser.add_argument("--no-memory", action="store_true", help="skip memory")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument(
        "--shapes", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES)
    )
    parser.add_argument("--peak-memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_memory_child:
        _peak_memory_child(args.peak_memory_child)
        return None

    everyone = tuple(_layer_factories())
    names = {
        s: everyone if (s == "S1" or not args.quick) else QUICK_ALL_SHAPES
        for s in args.shapes
    }
    rounds = args.rounds or (5 if args.quick else 15)
    torch_shapes = () if args.no_torch else ("S1",) if args.quick else args.shapes
    rows = measure(args.shapes, names, rounds, 1 if args.quick else 2, torch_shapes)
    memory = []
    if not args.no_memory:
        memory_names = (BASELINE, "PeepholeLSTM", "PeepholeLSTM (generic loop)")
        memory = peak_memory(memory_names if args.quick else everyone)
    print(format_table(rows, memory))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"timings": rows, "peak_memory_s2": memory}, f, indent=2)
    return rows, memory


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
