"""Train each LSTM variant on a small synthetic sequence task and compare.

The task ("adding problem", Hochreiter & Schmidhuber 1997): each sequence holds
random numbers and two marked positions; the target is the sum of the two
marked numbers. Solving it needs memory across the whole sequence.

    python examples/synthetic_task.py [--steps 20] [--epochs 10] [--seed 0]
"""

import argparse
import sys
import time

import _common  # first: picks the TensorFlow backend before Keras loads
import keras
import numpy as np


def adding_problem(n, steps, rng):
    """Returns inputs (n, steps, 2) and targets (n, 1) of the adding problem."""
    values = rng.uniform(0.0, 1.0, (n, steps))
    markers = np.zeros((n, steps))
    for row in markers:
        row[rng.choice(steps, size=2, replace=False)] = 1.0
    x = np.stack([values, markers], axis=-1).astype("float32")
    y = (values * markers).sum(axis=1, keepdims=True).astype("float32")
    return x, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="sequence length")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x, y = adding_problem(4096, args.steps, rng)
    x_val, y_val = adding_problem(512, args.steps, rng)
    print(f"Adding problem, {args.steps} steps; predicting the mean gives "
          f"MSE {np.var(y_val):.4f}.")
    rows = []
    for name, layer_class in _common.CELLS.items():
        keras.utils.set_random_seed(args.seed)
        model = keras.Sequential(
            [
                keras.Input((args.steps, 2)),
                layer_class(args.units),
                keras.layers.Dense(1),
            ]
        )
        model.compile(keras.optimizers.Adam(0.01), "mse")
        before = model.evaluate(x_val, y_val, verbose=0)
        start = time.perf_counter()
        print(f"\n{name}: {model.count_params()} parameters")
        model.fit(x, y, epochs=args.epochs, batch_size=128, verbose=2)
        seconds = time.perf_counter() - start
        rows.append((name, before, model.evaluate(x_val, y_val, verbose=0), seconds))

    header = ("variant", "val MSE before", "val MSE after", "train s")
    print("\n{:<10} {:>15} {:>14} {:>8}".format(*header))
    for name, before, after, seconds in rows:
        print(f"{name:<10} {before:>15.4f} {after:>14.4f} {seconds:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
