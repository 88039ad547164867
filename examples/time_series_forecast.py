"""Multi-step forecasting of the weekly Mauna Loa CO2 series, with gate logging.

Data: the weekly atmospheric CO2 record of Mauna Loa, 1958-2001, that ships
inside statsmodels (`statsmodels.datasets.co2`, no download), its gaps filled
by time interpolation; or any numeric column of a CSV file (`--csv FILE
--column NAME`). Each example is a window of `--window` past values and the
next `--horizon` values to forecast. The split is by time: the first 70% of the
series trains, the next 15% validates, the final 15% is the held-out test
period (a window belongs to the part its forecast targets fall in).

The model sees each window relative to its last value and predicts the change
from that value, both scaled by one constant fitted on the training part: the
level of the series (which keeps rising) never has to be extrapolated.

Prints the test MAE and RMSE of the model beside two baselines: persistence
(the last value, repeated) and seasonal naive (the value one season earlier,
52 weeks by default). Logs loss and gate histograms to TensorBoard, exports a
SavedModel and saves a plot of the forecasts on the test period.

On 2 CPU cores, `--quick` (15 epochs) takes about half a minute, the default
(40 epochs) about a minute and a half.

    python examples/time_series_forecast.py --quick
    python examples/time_series_forecast.py --csv data.csv --column load --season 24
"""

import sys
import time

import _common  # first: picks the TensorFlow backend before Keras loads
import keras
import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROG = "time_series_forecast"
#: Fractions of the series for training and validation; the rest is the test.
TRAIN_FRACTION, VALIDATION_FRACTION = 0.70, 0.15


def load_co2():
    """Weekly Mauna Loa CO2 (ppm) from statsmodels, gaps interpolated in time."""
    from statsmodels.datasets import co2

    series = co2.load_pandas().data["co2"].interpolate(method="time")
    return series.bfill(), "weekly Mauna Loa CO2 (ppm), statsmodels.datasets.co2"


def load_csv(path, column):
    """One numeric column of a CSV file, gaps interpolated.

    Raises:
        ExampleError: If the file cannot be read, the column does not exist or
            holds no numbers.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise _common.ExampleError(f"cannot read --csv {path!r}: {reason}") from None
    if column not in frame.columns:
        raise _common.ExampleError(
            f"--column {column!r} is not in {path!r}; its columns are "
            + ", ".join(repr(str(c)) for c in frame.columns)
        )
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.notna().sum() < 2:
        raise _common.ExampleError(
            f"--column {column!r} of {path!r} holds fewer than 2 numbers"
        )
    series = values.interpolate().bfill().ffill()
    return series.reset_index(drop=True), f"column {column!r} of {path}"


def make_windows(values, window, horizon):
    """All `(inputs, targets, origin)` windows of a 1D series.

    Returns:
        `x` of shape `(n, window)`, `y` of shape `(n, horizon)` and `origins`,
        the index of each window's last input value.
    """
    origins = np.arange(window - 1, len(values) - horizon)
    x = np.stack([values[t - window + 1 : t + 1] for t in origins])
    y = np.stack([values[t + 1 : t + 1 + horizon] for t in origins])
    return x, y, origins


def split_by_time(n, origins, horizon):
    """Boolean masks of the training, validation and test windows.

    A window belongs to the part that holds all of its targets; windows whose
    targets straddle two parts are left out.
    """
    train_end = int(n * TRAIN_FRACTION)
    test_start = int(n * (TRAIN_FRACTION + VALIDATION_FRACTION))
    first, last = origins + 1, origins + horizon
    return (
        last < train_end,
        (first >= train_end) & (last < test_start),
        first >= test_start,
    )


def persistence_forecast(x, horizon):
    """Forecasts the last input value for every future step."""
    return np.repeat(x[:, -1:], horizon, axis=1)


def seasonal_naive_forecast(values, origins, horizon, season):
    """Forecasts each step with the value one season (or whole seasons) earlier.

    The step `h` ahead of origin `t` gets `values[t + h - k * season]`, with the
    smallest `k` that makes that a past value (`k = 1` while `h <= season`).
    """
    steps = np.arange(1, horizon + 1)
    back = season * np.ceil(steps / season).astype(int)
    return values[origins[:, None] + steps[None, :] - back[None, :]]


def errors(truth, forecast):
    """`(MAE, RMSE)` over all windows and steps."""
    diff = forecast - truth
    return float(np.abs(diff).mean()), float(np.sqrt((diff**2).mean()))


class Scaler:
    """Windows relative to their last value, divided by one fitted scale."""

    def __init__(self, x_train, y_train):
        self.scale = float(np.std(y_train - x_train[:, -1:])) or 1.0

    def inputs(self, x):
        return ((x - x[:, -1:]) / self.scale)[..., None].astype("float32")

    def targets(self, x, y):
        return ((y - x[:, -1:]) / self.scale).astype("float32")

    def forecast(self, x, predicted):
        return x[:, -1:] + self.scale * predicted


def build_model(cell, units, window, horizon):
    """One LSTM variant layer and a linear read-out of all horizon steps."""
    inputs = keras.Input((window, 1), name="window")
    h = _common.CELLS[cell](units, name=f"{cell}_lstm")(inputs)
    outputs = keras.layers.Dense(horizon, name="forecast")(h)
    return keras.Model(inputs, outputs, name=f"forecaster_{cell}")


def plot_forecasts(path, index, values, origins, truth_start, forecasts, horizon):
    """Saves a PNG of the test period: the truth and non-overlapping forecasts.

    Args:
        path: Output file.
        index: x-axis values of the whole series (dates or positions).
        values: The whole series.
        origins: Origins of the test windows, increasing.
        truth_start: First index of the plotted truth.
        forecasts: `{label: array (len(origins), horizon)}`.
        horizon: Steps per forecast.
    """
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    ax.plot(
        index[truth_start:], values[truth_start:], color="black", lw=1.2, label="truth"
    )
    chosen = range(0, len(origins), horizon)
    styles = [
        {"color": "tab:red"},
        {"color": "tab:blue", "ls": "--"},
        {"color": "tab:green", "ls": ":"},
    ]
    for (label, forecast), style in zip(forecasts.items(), styles, strict=False):
        for n, i in enumerate(chosen):
            steps = slice(origins[i] + 1, origins[i] + 1 + horizon)
            ax.plot(
                index[steps],
                forecast[i],
                lw=1.4,
                label=label if n == 0 else None,
                **style,
            )
    ax.set_title(
        f"Test period: forecasts {horizon} steps ahead from every {horizon}th origin"
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def parse_args(argv):
    parser = _common.make_parser(PROG, __doc__)
    _common.add_common_arguments(parser, units=32, epochs=40)
    parser.add_argument("--csv", help="CSV file (default: the CO2 series)")
    parser.add_argument("--column", help="numeric column of --csv to forecast")
    parser.add_argument(
        "--window",
        type=_common.positive_int,
        default=104,
        help="past steps the model sees",
    )
    parser.add_argument(
        "--horizon",
        type=_common.positive_int,
        default=13,
        help="future steps to forecast",
    )
    parser.add_argument(
        "--season",
        type=_common.positive_int,
        default=52,
        help="season length of the seasonal-naive baseline",
    )
    parser.add_argument("--batch-size", type=_common.positive_int, default=32)
    args = _common.parse_with_quick(parser, argv, {"epochs": 15})
    if bool(args.csv) != bool(args.column):
        parser.error("--csv and --column go together")
    return args


def run(argv=None):
    """Trains, evaluates and exports; returns the run's `_common.Summary`.

    Raises:
        ExampleError: On bad input.
    """
    args = parse_args(argv)
    series, description = load_csv(args.csv, args.column) if args.csv else load_co2()
    values = series.to_numpy(dtype="float64")
    n = len(values)
    if args.window + args.horizon > n:
        raise _common.ExampleError(
            f"--window {args.window} + --horizon {args.horizon} is longer than "
            f"the series ({n} values)"
        )
    x, y, origins = make_windows(values, args.window, args.horizon)
    train, val, test = split_by_time(n, origins, args.horizon)
    parts = {"training": train, "validation": val, "test": test}
    empty = [name for name, mask in parts.items() if not mask.any()]
    if empty:
        raise _common.ExampleError(
            f"--window {args.window} and --horizon {args.horizon} leave no "
            f"{' or '.join(empty)} window in a series of {n} values"
        )
    if origins[test][0] + 1 < args.season:
        raise _common.ExampleError(
            f"--season {args.season} reaches before the start of the series"
        )
    out_dir = _common.prepare_out_dir(args.out)
    print(f"Series: {description}, {n} values.")
    print(
        f"Windows of {args.window} steps forecasting {args.horizon}: "
        + ", ".join(f"{mask.sum()} {name}" for name, mask in parts.items())
        + " (split by time)."
    )

    scaler = Scaler(x[train], y[train])
    keras.utils.set_random_seed(args.seed)
    model = build_model(args.cell, args.units, args.window, args.horizon)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.003),
        loss="mse",
        metrics=["mae"],
    )
    log_dir = _common.run_log_dir(args.logdir, PROG, args.cell)
    print(f"Model: {args.cell} LSTM, {model.count_params():,} weights.")
    start = time.perf_counter()
    model.fit(
        scaler.inputs(x[train]),
        scaler.targets(x[train], y[train]),
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(scaler.inputs(x[val]), scaler.targets(x[val], y[val])),
        callbacks=_common.training_callbacks(log_dir, scaler.inputs(x[val][:32])),
        verbose=_common.progress_verbosity(),
    )
    train_seconds = time.perf_counter() - start

    x_test, y_test, test_origins = x[test], y[test], origins[test]
    predicted = model.predict(scaler.inputs(x_test), verbose=0)
    forecasts = {
        f"{args.cell} LSTM": scaler.forecast(x_test, predicted),
        f"seasonal naive ({args.season} back)": seasonal_naive_forecast(
            values, test_origins, args.horizon, args.season
        ),
        "persistence": persistence_forecast(x_test, args.horizon),
    }
    scores = {name: errors(y_test, f) for name, f in forecasts.items()}
    print(
        f"\nTest period: the last {n - int(n * (TRAIN_FRACTION + VALIDATION_FRACTION))}"
        f" values, {len(x_test)} windows, every step 1..{args.horizon} ahead:"
    )
    width = max(map(len, scores))
    print(f"  {'forecast':<{width}}  {'MAE':>8}  {'RMSE':>8}")
    for name, (mae, rmse) in scores.items():
        print(f"  {name:<{width}}  {mae:8.3f}  {rmse:8.3f}")

    index = series.index.to_numpy()
    plot_path = out_dir / f"{PROG}_{args.cell}.png"
    plot_forecasts(
        plot_path,
        index,
        values,
        test_origins,
        max(0, test_origins[0] - args.window),
        forecasts,
        args.horizon,
    )
    model_path, export_path = _common.save_model(
        model, out_dir, f"{PROG}_{args.cell}"
    )
    model_mae = scores[f"{args.cell} LSTM"][0]
    naive_mae = scores[f"seasonal naive ({args.season} back)"][0]
    return _common.Summary(
        f"{PROG}: {args.cell} LSTM, {args.epochs} epochs in {train_seconds:.0f} s; "
        f"test MAE {model_mae:.3f} vs seasonal naive {naive_mae:.3f}",
        [
            ("Forecast plot", plot_path),
            ("Keras model", model_path),
            ("SavedModel", export_path),
            ("TensorBoard logs", log_dir),
        ],
        args.logdir,
    )


def main(argv=None):
    """Runs the example; returns the exit status (2 on bad input)."""
    return _common.run_main(run, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
