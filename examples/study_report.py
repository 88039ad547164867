"""The study's reporting: TensorBoard (HParams and gradient curves), tables, plots.

Helper module of `study.py` (run that as a file). Nothing here trains.
"""

import json

import matplotlib
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: The HParams metrics: the test error (mean squared error at the sequence
#: ends, over the 2560 test sequences) and the paper's count of wrong ones.
METRIC_ERROR = "test/error"
METRIC_WRONG = "test/wrong_of_2560"


def write_hparams_config(log_dir, variants, tasks, seeds):
    """The HParams dashboard's columns, written once at the root of the runs."""
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hp.hparams_config(
            hparams=[
                hp.HParam("variant", hp.Discrete(list(variants))),
                hp.HParam("task", hp.Discrete(list(tasks))),
                hp.HParam("seed", hp.Discrete(list(seeds))),
            ],
            metrics=[
                hp.Metric(METRIC_ERROR, display_name="test MSE"),
                hp.Metric(METRIC_WRONG, display_name="wrong of 2560"),
                hp.Metric("train/loss", display_name="training loss"),
            ],
        )


class RunLog:
    """One training run's TensorBoard log: its hparams, loss curve and metrics.

    Args:
        log_dir: The run's own directory (under the HParams root).
        variant, task, seed: The run's hyperparameters.
    """

    def __init__(self, log_dir, variant, task, seed):
        self.writer = tf.summary.create_file_writer(str(log_dir))
        with self.writer.as_default():
            hp.hparams(
                {"variant": variant, "task": task, "seed": seed},
                trial_id=f"{task}/{variant}/seed{seed}",
            )

    def loss(self, step, value):
        with self.writer.as_default():
            tf.summary.scalar("train/loss", value, step=step)

    def close(self, step, error, wrong):
        with self.writer.as_default():
            tf.summary.scalar(METRIC_ERROR, error, step=step)
            tf.summary.scalar(METRIC_WRONG, wrong, step=step)
        self.writer.close()


def log_gradient_curves(log_dir, curves):
    """The gradient norms as TensorBoard scalars, one point per lag.

    Writes the runs `<log_dir>/init` and `<log_dir>/trained`, tags
    `dL_dx/<model>` and `dL_dc/<model>` with the lag k as the step (switch
    the y axis to log scale in TensorBoard's settings).

    Args:
        log_dir: Root of the two runs.
        curves: `{phase: {model: (dx, dc or None)}}`.
    """
    for phase, models in curves.items():
        with tf.summary.create_file_writer(str(log_dir / phase)).as_default():
            for model, (dx, dc) in models.items():
                for k, value in enumerate(dx):
                    tf.summary.scalar(f"dL_dx/{model}", value, step=k)
                if dc is not None:
                    for k in range(1, len(dc)):
                        tf.summary.scalar(f"dL_dc/{model}", dc[k], step=k)


def plot_gradients(path, curves, T):
    """A PNG of the gradient norms against the lag, log scale.

    Rows: `dL/dx` and (LSTMs) `dL/dc`; columns: at initialization, trained.
    """
    phases = list(curves)
    fig, axes = plt.subplots(2, len(phases), figsize=(6 * len(phases), 8.5), dpi=100)
    axes = np.asarray(axes).reshape(2, len(phases))
    colors = plt.get_cmap("tab10")
    for col, phase in enumerate(phases):
        for row, (index, name) in enumerate(((0, "x_{T-k}"), (1, "c_{T-k}"))):
            ax = axes[row, col]
            for n, (model, pair) in enumerate(curves[phase].items()):
                values = pair[index]
                if values is None:
                    continue
                lags = np.arange(len(values))
                style = {"ls": "--"} if n >= 10 else {}
                ax.plot(lags, values, label=model, color=colors(n % 10), **style)
            ax.set_yscale("log")
            ax.set_xlabel("lag k (steps before the end)")
            ax.set_ylabel(f"mean ||dL/d{name}||")
            ax.set_title(f"dL/d{name}, {phase} (adding problem, T = {T})")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_boxes(path, results, tasks, variants):
    """A PNG: per task, each variant's test error over the seeds (box plot)."""
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(5.5 * len(tasks), 4.8), dpi=100, squeeze=False
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        names = [v for v in variants if any(r for r in results if _is(r, task, v))]
        data = [[r["test_error"] for r in results if _is(r, task, v)] for v in names]
        ax.boxplot(data)
        # Labels set here, not by boxplot's keyword (renamed in matplotlib 3.9).
        ax.set_xticks(range(1, len(names) + 1), names)
        for n, values in enumerate(data, start=1):
            ax.plot(np.full(len(values), n), values, "o", ms=3, color="tab:red")
        ax.set_yscale("log")
        ax.set_title(task)
        ax.set_ylabel("test MSE at the sequence end")
        ax.tick_params(axis="x", rotation=45)
        ax.grid(alpha=0.3, axis="y", which="both")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _is(result, task, variant):
    return result["task"] == task and result["variant"] == variant


def comparison_rows(results, tasks, variants):
    """One row per (task, variant): the seeds' wrong counts and their summary."""
    rows = []
    for task in tasks:
        for variant in variants:
            runs = [r for r in results if _is(r, task, variant)]
            if not runs:
                continue
            wrong = [r["wrong"] for r in runs]
            error = [r["test_error"] for r in runs]
            rows.append(
                {
                    "task": task,
                    "variant": variant,
                    "wrong": wrong,
                    "median_wrong": float(np.median(wrong)),
                    "solved": sum(w == 0 for w in wrong),
                    "seeds": len(runs),
                    "median_error": float(np.median(error)),
                    "min_error": float(np.min(error)),
                    "max_error": float(np.max(error)),
                    "median_sequences": float(
                        np.median([r["sequences"] for r in runs])
                    ),
                }
            )
    return rows


def markdown_table(rows):
    """The comparison as a Markdown table."""
    lines = [
        "| task | variant | wrong of 2560 per seed | median wrong | seeds with 0 wrong "
        "| test MSE median (min–max) | training sequences (median) |",
        "| --- | --- | --- | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['task']} | {row['variant']} | "
            f"{', '.join(str(w) for w in row['wrong'])} | {row['median_wrong']:g} | "
            f"{row['solved']} of {row['seeds']} | {row['median_error']:.2e} "
            f"({row['min_error']:.1e}–{row['max_error']:.1e}) | "
            f"{row['median_sequences']:,.0f} |"
        )
    return "\n".join(lines)


def gradient_table(curves, lags):
    """Markdown: each model's gradient norms at a few lags, and decay per step."""
    from study_gradients import decay_per_step

    header = " | ".join(f"k = {k}" for k in lags)
    lines = [
        f"| phase | model | value | {header} | factor per step |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in lags) + " | ---: |",
    ]
    for phase, models in curves.items():
        for model, (dx, dc) in models.items():
            for name, values in (("dL/dx", dx), ("dL/dc", dc)):
                if values is None:
                    continue
                cells = " | ".join(f"{values[k]:.1e}" for k in lags)
                factor = decay_per_step(values, first=1)
                lines.append(f"| {phase} | {model} | {name} | {cells} | {factor:.3f} |")
    return "\n".join(lines)


def write_json(path, payload):
    """Writes `payload` (floats, lists, dicts) as indented JSON."""
    path.write_text(json.dumps(payload, indent=1, default=_plain) + "\n")


def _plain(value):
    if isinstance(value, np.ndarray):
        return [None if not np.isfinite(v) else float(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
