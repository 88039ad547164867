"""Pieces shared by the examples: flags, cell lookup, run directories, summary.

Each example builds its parser with `make_parser` and `add_common_arguments`,
raises `ExampleError` for bad input it finds itself, and runs through
`run_main`, which turns that error into one line on stderr and exit status 2.
"""

import argparse
import datetime
import os
import sys
from pathlib import Path

# The examples log to TensorBoard and export SavedModels: TensorFlow backend.
# Set before Keras is first imported (the examples import this module first).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_lstm_variants as klv  # noqa: E402

#: The `--cell` choices and the layer each one builds.
CELLS = {
    "standard": klv.StandardLSTM,
    "peephole": klv.PeepholeLSTM,
    "coupled": klv.CoupledLSTM,
}

#: Exit status for bad input, as argparse uses.
USAGE_ERROR = 2


class ExampleError(Exception):
    """Bad input found by an example; reported as one line, no traceback."""


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def make_parser(prog, doc):
    """A parser named `prog` whose description is the first line of `doc`."""
    return OneLineParser(
        prog=prog,
        description=doc.strip().splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def add_common_arguments(parser, units, epochs):
    """Adds the flags every example takes.

    Args:
        parser: An `argparse.ArgumentParser`.
        units: Default of `--units`.
        epochs: Default of `--epochs`.
    """
    parser.add_argument(
        "--cell", default="peephole", choices=sorted(CELLS), help="LSTM variant"
    )
    parser.add_argument("--units", type=positive_int, default=units)
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="demo size: a smaller model and less data (about a minute on 2 cores)",
    )
    parser.add_argument(
        "--logdir",
        default="runs",
        help="TensorBoard root; each run writes to its own subdirectory",
    )
    parser.add_argument(
        "--out", default="artifacts", help="directory for the model files"
    )


def positive_int(text):
    """`argparse` type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def parse_with_quick(parser, argv, quick_defaults):
    """Parses `argv`; under `--quick`, `quick_defaults` replace the defaults.

    Flags given explicitly always win, also when they equal a default.

    Args:
        parser: A parser with the common arguments.
        argv: The arguments (`None` for `sys.argv[1:]`).
        quick_defaults: `{dest: value}` for demo size.

    Returns:
        The parsed `argparse.Namespace`.
    """
    known, _ = parser.parse_known_args(argv)
    if known.quick:
        parser.set_defaults(**quick_defaults)
    return parser.parse_args(argv)


def run_log_dir(root, example, cell):
    """A fresh log directory for one run: `<root>/<example>/<cell>-<time>`.

    Args:
        root: The TensorBoard root (`--logdir`).
        example: The example's name.
        cell: The `--cell` name.

    Returns:
        The new directory's `Path` (created; a suffix keeps it unique).
    """
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / example / f"{cell}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def training_callbacks(log_dir, probe_inputs):
    """Keras's TensorBoard logging plus gate histograms, in one log directory.

    Args:
        log_dir: The run's log directory.
        probe_inputs: The batch the gate histograms are computed on.

    Returns:
        A list of callbacks for `model.fit`.
    """
    return [
        keras.callbacks.TensorBoard(log_dir=str(log_dir)),
        gate_histograms(probe_inputs, log_dir),
    ]


def gate_histograms(probe_inputs, log_dir):
    """The package's `GateHistograms` callback, every epoch."""
    return klv.GateHistograms(probe_inputs, str(log_dir), every_n_epochs=1)


def save_model(model, out_dir, stem):
    """Saves `model` as `<stem>.keras` and exports `<stem>_savedmodel`.

    The SavedModel has a `gates` signature. A previous SavedModel there is
    replaced; anything else there is an `ExampleError`.

    Returns:
        The two paths, as `Path`s: the `.keras` file and the SavedModel.
    """
    model_path = Path(out_dir) / f"{stem}.keras"
    export_path = Path(out_dir) / f"{stem}_savedmodel"
    model.save(model_path)
    try:
        klv.export_saved_model(model, str(export_path), gates=True, overwrite=True)
    except FileExistsError as error:
        raise ExampleError(str(error)) from None
    return model_path, export_path


def prepare_out_dir(out):
    """Creates the `--out` directory, or raises `ExampleError`."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExampleError(f"cannot create --out directory {out!r}: {error}") from None
    return path


class Summary:
    """The closing summary of a run: what ran, the files written, the logs.

    Args:
        title: One line naming what ran and its headline numbers.
        files: `(label, path)` pairs of what was written.
        log_root: The TensorBoard root to name in the command.
    """

    def __init__(self, title, files, log_root):
        self.title = title
        self.files = list(files)
        self.log_root = log_root

    def file_lines(self):
        """One indented `label  path` line per file written."""
        width = max(len(label) for label, _ in self.files)
        return [f"  {label:<{width}}  {path}" for label, path in self.files]

    def __str__(self):
        lines = [f"== {self.title} ==", *self.file_lines()]
        lines.append(tensorboard_hint(self.log_root))
        return "\n".join(lines)


def tensorboard_hint(log_root):
    """The line that tells how to look at the logs."""
    return f"See the curves and gates with:  tensorboard --logdir {log_root}"


def run_main(function, prog, argv):
    """Runs `function(argv)` and prints its `Summary`; bad input is one line.

    Args:
        function: The example's work, taking `argv`, returning a `Summary`.
        prog: The program name, to prefix the error message.
        argv: The arguments (`None` for `sys.argv[1:]`).

    Returns:
        The exit status: 0, or 2 after an `ExampleError`.
    """
    try:
        summary = function(argv)
    except ExampleError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    print(f"\n{summary}")
    return 0


def progress_verbosity():
    """`verbose` for `model.fit`: live progress bars on a terminal, else a line
    per epoch (so logs and pipes stay readable)."""
    return 1 if sys.stdout.isatty() else 2
