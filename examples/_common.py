"""Helper module of the examples: flags, cell lookup, run directories, saving.

Not an example itself: `text_char_lm.py`, `time_series_forecast.py` and
`demo.py` import it from the same directory (run them as files, e.g. `python
examples/text_char_lm.py`). Each example builds its parser with `make_parser`
and `add_common_arguments`, raises `ExampleError` for bad input it finds
itself, and runs through `run_main`, which turns that error into one line on
stderr and exit status 2.
"""

import argparse
import contextlib
import datetime
import os
import sys
from pathlib import Path

# The examples log to TensorBoard and export SavedModels: TensorFlow backend.
# Set before Keras is first imported (the examples import this module first).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _quiet_stderr():
    """Sends file descriptor 2 to /dev/null inside the block.

    TensorFlow's C++ start-up messages (absl's "All log messages before
    absl::InitializeLog()", oneDNN, "Could not find cuda drivers", "failed
    call to cuInit") ignore TF_CPP_MIN_LOG_LEVEL on a CPU-only machine; a
    Python exception raised inside still reaches stderr, after the block.
    """
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


if os.environ["KERAS_BACKEND"] == "tensorflow":
    with _quiet_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # probes for GPUs now, quietly

import keras  # noqa: E402

import keras_lstm_variants as klv  # noqa: E402

#: Greff et al.'s variants that no preset covers ("vanilla" is the peephole
#: cell, "NP" the standard one).
GREFF = ("NIG", "NFG", "NOG", "NIAF", "NOAF", "CIFG", "FGR")


def _variant(name, **switches):
    """A layer factory for one point of the LSTM variant space."""

    def build(units, **kwargs):
        return klv.LSTMVariant(units, variant=name, **switches, **kwargs)

    return build


#: The `--cell` choices and the layer each one builds: the three presets,
#: Greff et al.'s variants by their paper names (lower case), layer
#: normalization, and the tutorial's other variations.
CELLS = {
    "standard": klv.StandardLSTM,
    "peephole": klv.PeepholeLSTM,
    "coupled": klv.CoupledLSTM,
    **{name.lower(): _variant(name) for name in GREFF},
    "layer-norm": _variant(None, layer_norm=True),
    "gru": klv.GRU,
    "depth-gated": klv.DepthGatedLSTM,
    "clockwork": klv.ClockworkRNN,
}

#: How the examples' reports name each `--cell` choice.
LABELS = {
    **{name: f"{name} LSTM" for name in CELLS},
    **{name.lower(): f"{name} LSTM" for name in GREFF},
    "gru": "GRU",
    "depth-gated": "depth-gated LSTM",
    "clockwork": "Clockwork RNN",
}

#: Exit status for bad input, as argparse uses.
USAGE_ERROR = 2


class ExampleError(Exception):
    """Bad input found by an example; reported as one line, no traceback."""


class DefaultsOnceFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" to an option's help once: not when the help
    already names its default, nor for flags and options without one."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        if (
            "default" in help_text
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
            or isinstance(action, argparse._StoreTrueAction)
        ):
            return help_text
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def make_parser(prog, doc):
    """A parser named `prog` whose description is the first line of `doc`
    (without its `Title: `)."""
    return OneLineParser(
        prog=prog,
        description=doc.strip().splitlines()[0].removeprefix("Title: "),
        formatter_class=DefaultsOnceFormatter,
    )


def add_common_arguments(parser, units, epochs):
    """Adds the flags every example takes.

    Args:
        parser: An `argparse.ArgumentParser`.
        units: Default of `--units`.
        epochs: Default of `--epochs`.
    """
    parser.add_argument(
        "--cell",
        default="peephole",
        choices=sorted(CELLS),
        help="recurrent cell: an LSTM variant, a GRU, a depth-gated LSTM or a "
        "Clockwork RNN (units must be a multiple of 4 for its 4 modules)",
    )
    parser.add_argument(
        "--units", type=positive_int, default=units, help="units of each LSTM layer"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=epochs, help="training epochs"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="demo size: a smaller model, less data and fewer epochs",
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


def training_callbacks(log_dir, probe_inputs, time_labels=None):
    """Keras's TensorBoard logging plus gate histograms, in one log directory.

    Args:
        log_dir: The run's log directory.
        probe_inputs: The batch the gate histograms are computed on.
        time_labels: Labels of the heatmap's time axis, one per step of the
            first probe sequence (its characters, or its dates).

    Returns:
        A list of callbacks for `model.fit`.
    """
    return [
        keras.callbacks.TensorBoard(log_dir=str(log_dir)),
        klv.GateHistograms(
            probe_inputs,
            str(log_dir),
            every_n_epochs=1,
            time_labels=time_labels,
            sort_units=True,
        ),
    ]


def save_model(model, out_dir, stem, serving):
    """Saves the model three ways; returns the paths as `(label, Path)` pairs.

    * `<stem>.keras`: the Keras model; loads with `keras.saving.load_model`
      after `import keras_lstm_variants`, nothing else.
    * `<stem>_savedmodel`: `serving`, a `tf.Module` whose signatures take
      raw input (text, a window of raw values) and give named outputs:
      what to deploy.
    * `<stem>_gates_savedmodel`: the Keras model on its own inputs, with a
      `gates` signature (`keras_lstm_variants.export_saved_model`).

    A previous SavedModel there is replaced; anything else in the way is an
    `ExampleError`.
    """
    import shutil

    import tensorflow as tf

    out_dir = Path(out_dir)
    model_path = out_dir / f"{stem}.keras"
    serving_path = out_dir / f"{stem}_savedmodel"
    gates_path = out_dir / f"{stem}_gates_savedmodel"
    model.save(model_path)
    if serving_path.exists():
        if not (serving_path / "saved_model.pb").exists():
            raise ExampleError(
                f"{serving_path} exists and is not a SavedModel; not replacing it"
            )
        shutil.rmtree(serving_path)
    tf.saved_model.save(serving, str(serving_path), signatures=serving.signatures())
    try:
        klv.export_saved_model(model, str(gates_path), gates=True, overwrite=True)
    except FileExistsError as error:
        raise ExampleError(str(error)) from None
    return [
        ("Keras model", model_path),
        ("SavedModel (serving)", serving_path),
        ("SavedModel (gates)", gates_path),
    ]


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


def print_section(title):
    """Prints a section heading of an example's output."""
    print(f"\n--- {title} ---", flush=True)


def progress_verbosity():
    """`verbose` for `model.fit`: live progress bars on a terminal, else a line
    per epoch (so logs and pipes stay readable)."""
    return 1 if sys.stdout.isatty() else 2
