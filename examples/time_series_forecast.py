"""
Title: Forecasting the Mauna Loa CO2 record with an LSTM variant
Description: Trains a peephole (or standard, coupled) LSTM to forecast the
    next 13 weeks of atmospheric CO2 from the past 104 weeks, compares it
    with two baselines, logs its gates to TensorBoard, plots its forecasts
    and exports a SavedModel that takes a raw window in ppm.
Result: `--quick` (15 epochs, under a minute on 2 CPU cores) reaches
    a test MAE of about 0.4 ppm over all 13 steps, against about 1.7 ppm for
    the seasonal-naive and the persistence forecasts.
Needs: its helper module `_common.py` from the same directory: run it as a
    file, `python examples/time_series_forecast.py --quick`, with the
    `examples` extra installed.

What it shows:

* Setup: the TensorFlow backend (for TensorBoard and the SavedModel).
* Data: the weekly CO2 record of Mauna Loa, 1958-2001, that ships inside
  statsmodels (`statsmodels.datasets.co2`, no download), gaps filled by time
  interpolation; or any numeric column of a CSV file (`--csv FILE --column
  NAME`). Each example is a window of `--window` past values and the next
  `--horizon` values. The split is by time: the first 70% trains, the next
  15% validates, the final 15% is the held-out test period (a window belongs
  to the part its targets fall in). The model sees each window relative to
  its last value and predicts the change from it, both divided by one
  constant fitted on the training part, so the rising level never has to be
  extrapolated.
* Model: one LSTM variant layer named `series_lstm` and a `Dense` read-out
  of all horizon steps; `model.summary()` is printed.
* Training: `model.fit` with `keras.callbacks.TensorBoard` and
  `keras_lstm_variants.GateHistograms` (the gates of 32 validation windows,
  the heatmap labelled with the first window's dates).
* Evaluation: test MAE and RMSE beside persistence (the last value,
  repeated) and seasonal naive (the value one season, 52 weeks, earlier);
  a PNG of the forecasts on the test period.
* Saving: `<out>/time_series_forecast_<cell>.keras` (loads with only
  `import keras_lstm_variants`), `<out>/time_series_forecast_<cell>_savedmodel`
  (`serving_default`: a raw `window` `(batch, 104)` in ppm in, `forecast`
  `(batch, 13)` in ppm out; the scaling is inside) and
  `<out>/time_series_forecast_<cell>_gates_savedmodel` (scaled windows in,
  with a `gates` signature).
* TensorBoard (`tensorboard --logdir runs`, Time Series tab): the group
  `gates.series_lstm`, whose `0_heatmap` shows each unit's gates over the two
  years of the probe window (look for units that follow the yearly cycle),
  then each gate's histogram and mean in the order of the equations;
  `epoch_loss` and `epoch_mae` for the `train` and `validation` runs.

The default (40 epochs) takes about two minutes on 2 CPU cores.

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
import tensorflow as tf

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROG = "time_series_forecast"
#: Name of the LSTM layer, and so of its group of gate tags in TensorBoard.
LAYER_NAME = "series_lstm"
#: Fractions of the series for training and validation; the rest is the test.
TRAIN_FRACTION, VALIDATION_FRACTION = 0.70, 0.15


"""
## Data
"""


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


def time_labels(steps):
    """Heatmap labels of a window's steps: dates as `YYYY-MM-DD`, else numbers."""
    steps = np.asarray(steps)
    if np.issubdtype(steps.dtype, np.datetime64):
        return [str(day) for day in steps.astype("datetime64[D]")]
    return [str(step) for step in steps]


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


"""
## Model
"""


def build_model(cell, units, window, horizon):
    """One LSTM variant layer and a linear read-out of all horizon steps."""
    inputs = keras.Input((window, 1), name="window")
    h = _common.CELLS[cell](units, name=LAYER_NAME)(inputs)
    outputs = keras.layers.Dense(horizon, name="forecast")(h)
    return keras.Model(inputs, outputs, name=f"forecaster_{cell}")


class ForecastServing(tf.Module):
    """The trained model with its scaling: raw windows in, raw forecasts out.

    `serving_default(window)`: `window`, float32 `(batch, window length)`, the
    past values in the series' own unit (ppm for CO2), oldest first; returns
    `forecast`, float32 `(batch, horizon)`, the next values in that unit.
    """

    def __init__(self, model, scale, window):
        super().__init__()
        self.model = model
        self.scale = tf.constant(scale, tf.float32)
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None, window], tf.float32, name="window")],
        )

    def signatures(self):
        """The signatures to save, by name."""
        return {"serving_default": self.serve.get_concrete_function()}

    def _serve(self, window):
        last = window[:, -1:]
        change = self.model(((window - last) / self.scale)[..., None], training=False)
        return {"forecast": last + self.scale * change}


"""
## Evaluation: the forecast plot
"""


def plot_forecasts(
    path,
    index,
    values,
    origins,
    truth_start,
    forecasts,
    horizon,
    value_label="value",
    step_name="step",
):
    """Saves a PNG of the test period: the truth and non-overlapping forecasts.

    Args:
        path: Output file.
        index: x-axis values of the whole series (dates or positions).
        values: The whole series.
        origins: Origins of the test windows, increasing.
        truth_start: First index of the plotted truth.
        forecasts: `{label: array (len(origins), horizon)}`.
        horizon: Steps per forecast.
        value_label: Label of the y axis (the quantity and its unit).
        step_name: What one step is (`"week"`), for the title.

    Returns:
        The (closed) matplotlib figure.
    """
    fig, ax = plt.subplots(figsize=(11, 5), dpi=100)
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
    first = origins[0] + 1
    ax.axvline(index[first], color="grey", lw=1, ls="-.")
    ax.annotate(
        " test period starts",
        (index[first], 0.02),
        xycoords=("data", "axes fraction"),
        color="dimgrey",
    )
    starts = [origins[i] for i in chosen]
    ax.plot(
        index[starts],
        values[starts],
        "o",
        color="black",
        ms=4,
        mfc="white",
        label="forecast origins (last value seen)",
    )
    ax.set_title(
        f"Test period: {horizon}-{step_name} forecasts, one from every "
        f"{horizon}th {step_name}"
    )
    is_date = np.issubdtype(np.asarray(index).dtype, np.datetime64)
    ax.set_xlabel("year" if is_date else step_name)
    ax.set_ylabel(value_label)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return fig


"""
## Training and evaluation
"""


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
    parser.add_argument(
        "--batch-size", type=_common.positive_int, default=32, help="batch size"
    )
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
    _common.print_section("Data")
    print(f"Series: {description}, {n} values.")
    print(
        f"Windows of {args.window} steps forecasting {args.horizon}: "
        + ", ".join(f"{mask.sum()} {name}" for name, mask in parts.items())
        + " (split by time)."
    )

    scaler = Scaler(x[train], y[train])
    _common.print_section("Model")
    keras.utils.set_random_seed(args.seed)
    model = build_model(args.cell, args.units, args.window, args.horizon)
    model.summary()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.003),
        loss="mse",
        metrics=["mae"],
    )
    log_dir = _common.run_log_dir(args.logdir, PROG, args.cell)
    index = series.index.to_numpy()
    first_probe = origins[val][0]
    probe_steps = index[first_probe - args.window + 1 : first_probe + 1]
    _common.print_section("Training")
    start = time.perf_counter()
    model.fit(
        scaler.inputs(x[train]),
        scaler.targets(x[train], y[train]),
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(scaler.inputs(x[val]), scaler.targets(x[val], y[val])),
        callbacks=_common.training_callbacks(
            log_dir, scaler.inputs(x[val][:32]), time_labels=time_labels(probe_steps)
        ),
        verbose=_common.progress_verbosity(),
    )
    train_seconds = time.perf_counter() - start

    _common.print_section("Evaluation")
    x_test, y_test, test_origins = x[test], y[test], origins[test]
    predicted = model.predict(scaler.inputs(x_test), verbose=0)
    forecasts = {
        _common.LABELS[args.cell]: scaler.forecast(x_test, predicted),
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

    plot_path = out_dir / f"{PROG}_{args.cell}.png"
    plot_forecasts(
        plot_path,
        index,
        values,
        test_origins,
        max(0, test_origins[0] - args.window),
        forecasts,
        args.horizon,
        value_label=f"{args.column} (CSV column)" if args.csv else "CO2 (ppm)",
        step_name="step" if args.csv else "week",
    )
    _common.print_section("Saving")
    files = _common.save_model(
        model,
        out_dir,
        f"{PROG}_{args.cell}",
        ForecastServing(model, scaler.scale, args.window),
    )
    _common.print_section("What to look at in TensorBoard")
    print(
        f"Time Series tab, group gates.{LAYER_NAME}: 0_heatmap (the gates over "
        "the probe window's dates), then each gate's histogram and mean in the "
        "order of the equations; epoch_loss and epoch_mae for train and "
        "validation."
    )
    model_mae = scores[_common.LABELS[args.cell]][0]
    naive_mae = scores[f"seasonal naive ({args.season} back)"][0]
    return _common.Summary(
        f"{PROG}: {_common.LABELS[args.cell]}, {args.epochs} epochs in "
        f"{train_seconds:.0f} s; "
        f"test MAE {model_mae:.3f} vs seasonal naive {naive_mae:.3f}",
        [("Forecast plot", plot_path), *files, ("TensorBoard logs", log_dir)],
        args.logdir,
    )


def main(argv=None):
    """Runs the example; returns the exit status (2 on bad input)."""
    return _common.run_main(run, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
