"""A Keras callback that logs our layers' gates to TensorBoard while training.

`GateHistograms` runs a fixed probe batch through the model at the end of the
chosen epochs, reads every gate of every step with the gate-inspection core
(`keras_lstm_variants.inspection`) and writes histograms, scalars and heatmap
images into a `gates` run next to `keras.callbacks.TensorBoard`'s `train` and
`validation` runs. TensorFlow is imported only when the callback writes, so
the package itself does not need it; matplotlib draws the heatmaps.
"""

import os
import tempfile
import warnings

import keras
import numpy as np

from keras_lstm_variants import inspection
from keras_lstm_variants import sites as sites_lib
from keras_lstm_variants import validation
from keras_lstm_variants.heatmaps import gate_heatmap
from keras_lstm_variants.sites import summary_tag
from keras_lstm_variants.summaries import SCALAR_DESCRIPTIONS
from keras_lstm_variants.summaries import gate_statistics
from keras_lstm_variants.summaries import histogram_tensor

#: Allowed ranges `(low, high)` of the callback's size arguments.
HISTOGRAM_BUCKETS_RANGE = (1, 1000)
HEATMAP_SCALE_RANGE = (1, 16)

def _check_bounded_int(name, value, bounds):
    """Returns `value` as an `int`, or raises naming `name`, the value and `bounds`."""
    low, high = bounds
    value = validation.check_positive_int(name, value)
    if not low <= value <= high:
        raise ValueError(
            f"Argument `{name}` must be an integer in [{low}, {high}]; "
            f"received {name}={value}."
        )
    return value


def _check_time_labels(time_labels):
    """Returns the labels as a tuple of strings (`None` stays `None`)."""
    if time_labels is None:
        return None
    if isinstance(time_labels, str):
        return tuple(time_labels)
    if isinstance(time_labels, (bytes, dict, set)) or not hasattr(
        time_labels, "__len__"
    ):
        raise TypeError(
            "Argument `time_labels` must be a string (one character per time "
            "step) or a sequence of labels, one per time step of the probe; "
            f"received time_labels={time_labels!r} of type "
            f"{type(time_labels).__name__}."
        )
    return tuple(str(label) for label in time_labels)


def _probe_steps(probe):
    """The time length of the probe's first array, or `None` if unknown."""
    leaves = keras.tree.flatten(probe)
    if leaves and np.ndim(leaves[0]) >= 2:
        return int(np.shape(leaves[0])[1])
    return None


def _writable_directory(path):
    """Creates `path` if needed; raises a `ValueError` if it cannot be written."""
    if "://" in path:  # a remote file system: TensorFlow's writer checks it
        return
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(
            f"Argument `log_dir`: cannot write event files to {path!r} "
            f"({type(error).__name__}: {error}); expected a writable directory "
            "(or one that can be created)."
        ) from error


class GateHistograms(keras.callbacks.Callback):
    """Logs the gates of every one of our LSTM layers to TensorBoard.

    At the end of every `every_n_epochs`-th epoch the callback runs
    `probe_inputs` through the model in inference mode (no dropout), reads
    every gate at every step of each layer that runs one of our cells
    (see `gate_activations`; also stacked cells and both directions of a
    `Bidirectional`) and writes, at step `epoch` (0-based, the step that
    `keras.callbacks.TensorBoard` uses for its epoch summaries), one tag
    group per layer, `gates.<layer name>` (see `gate_tag`), with the tags in
    the order of the equations:

    * `0_heatmap` (Images): the input, forget and output gates of the first
      probe sequence, one named panel each, units by time steps, with
      `time_labels` along the time axis and a colour bar (see
      `heatmap_figure`).
    * `1_input_gate`, `2_forget_gate`, `3_candidate`, `4_cell_state`,
      `5_output_gate`, `6_hidden_state` (Histograms and Distributions):
      each value over the whole probe batch, all steps and units. Other
      cell families number their own values (`cell.value_names`,
      `cell.tag_position`); their gates (`cell.gate_names`) make the
      heatmap's panels and get the gate scalars.
    * Scalars `<n>_<gate>/mean` and `<n>_<gate>/saturated_fraction`
      (fraction of values below 0.05 or above 0.95) for the three gates,
      and `4_cell_state/mean_abs`, the mean of `|c_t|`.

    NaN and infinite values (a diverging model, or a NaN in the probe) never
    end training: histograms and scalars are computed over the finite
    values, the heatmap draws the others in red, and the callback writes
    `<n>_<value>/nonfinite_fraction` for each value that had any and warns
    with a `RuntimeWarning`.

    Event files go to `<log_dir>/<run_name>` (default `<log_dir>/gates`),
    next to the `train` and `validation` runs of a
    `keras.callbacks.TensorBoard(log_dir)`, so one `tensorboard --logdir
    <log_dir>` shows loss curves and gates side by side.

    The probe runs in its own `tf.function` (traced on the first logged
    epoch) with the TensorFlow backend, eagerly with the others; the model's
    training step is untouched, so the model may be compiled with
    `jit_compile=True`. TensorFlow is imported when training starts.

    Checked at the start of training, each with a `ValueError`: the model
    must hold at least one of our layers, `probe_inputs` must fit the model's
    input shape (the message names the expected shape), `time_labels` must
    have one label per time step of the probe, and `log_dir` must be
    writable.

    Callbacks are not part of a saved model, so this class is not registered
    as a Keras serializable: create it again when training resumes.

    Args:
        probe_inputs: The probe batch: an array `(batch, timesteps,
            features)` the model accepts (a list or dict of arrays for a model
            with several inputs). Keep it small; it runs once per logged
            epoch.
        log_dir: Directory of the TensorBoard logs, the same as given to
            `keras.callbacks.TensorBoard`. Default: `"logs"`.
        every_n_epochs: Positive integer: log after epochs `n - 1`,
            `2n - 1`, ... (0-based). Default: 1, every epoch.
        histogram_buckets: Integer in [1, 1000], buckets per histogram.
            Default: 30.
        heatmap_scale: Integer in [1, 16], pixels per unit and time step in
            the heatmap before its size bounds apply (the plotting area is
            640 to 1600 pixels wide, each panel 100 to 400 high). Default: 2.
        run_name: Name of the run (subdirectory of `log_dir`). Default:
            `"gates"`.
        time_labels: Labels of the time axis of the heatmap, one per time
            step of the first probe sequence: a string (one character per
            step, for a text model) or a sequence such as dates. Default:
            `None`, the step numbers.
        sort_units: If true, the heatmap orders the units by when their
            forget gate switches. Default: `False`, unit order.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((50, 3)),
    ...     PeepholeLSTM(16),
    ...     keras.layers.Dense(1),
    ... ])
    >>> model.compile("adam", "mse")
    >>> x, y = np.random.rand(64, 50, 3), np.random.rand(64, 1)
    >>> callbacks = [
    ...     keras.callbacks.TensorBoard("logs"),
    ...     GateHistograms(x[:8], "logs"),
    ... ]
    >>> history = model.fit(x, y, epochs=2, callbacks=callbacks, verbose=0)
    """

    def __init__(
        self,
        probe_inputs,
        log_dir="logs",
        every_n_epochs=1,
        histogram_buckets=30,
        heatmap_scale=2,
        run_name="gates",
        time_labels=None,
        sort_units=False,
    ):
        super().__init__()
        if probe_inputs is None:
            raise ValueError(
                "Argument `probe_inputs` must be an array of input sequences; "
                "received None."
            )
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise TypeError(
                "Argument `log_dir` must be a non-empty string or path; "
                f"received log_dir={log_dir!r}."
            )
        if not isinstance(run_name, str) or not run_name:
            raise TypeError(
                "Argument `run_name` must be a non-empty string; "
                f"received run_name={run_name!r}."
            )
        self.probe_inputs = probe_inputs
        self.log_dir = os.fspath(log_dir)
        self.run_name = run_name
        self.every_n_epochs = validation.check_positive_int(
            "every_n_epochs", every_n_epochs
        )
        self.histogram_buckets = _check_bounded_int(
            "histogram_buckets", histogram_buckets, HISTOGRAM_BUCKETS_RANGE
        )
        self.heatmap_scale = _check_bounded_int(
            "heatmap_scale", heatmap_scale, HEATMAP_SCALE_RANGE
        )
        self.time_labels = _check_time_labels(time_labels)
        if not isinstance(sort_units, (bool, np.bool_)):
            raise TypeError(
                "Argument `sort_units` must be True or False; received "
                f"sort_units={sort_units!r} of type {type(sort_units).__name__}."
            )
        self.sort_units = bool(sort_units)
        self._writer = None
        self._probe = None
        self._run = None
        self._sites = None

    @property
    def run_dir(self):
        """The directory the event files go to: `<log_dir>/<run_name>`."""
        return os.path.join(self.log_dir, self.run_name)

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self._sites = sites_lib.find_sites(self.model)
        sites_lib.require_ours(self.model, self._sites)
        self._probe = inspection.check_model_inputs(
            self.model, self.probe_inputs, self._sites, argument="probe_inputs"
        )
        steps = _probe_steps(self._probe)
        if self.time_labels is not None and len(self.time_labels) != steps:
            raise ValueError(
                f"Argument `time_labels` holds {len(self.time_labels)} labels; "
                f"expected one per time step of `probe_inputs`, {steps}."
            )
        _writable_directory(self.run_dir)
        self._writer = tf.summary.create_file_writer(self.run_dir)
        self._run = self._probe_function()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.write_gates(step=epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _probe_function(self):
        """Returns a function `() -> {layer: {gate: tensor}}` over the probe."""
        model, sites = self.model, self._sites

        def probe(inputs):
            # The probe is a sequence of its own: stateful layers start it
            # from zeros, and their training states stay untouched.
            return inspection.record_call(model, inputs, sites, "zeros")

        if keras.backend.backend() != "tensorflow":
            return probe
        import tensorflow as tf

        return tf.function(probe)

    def write_gates(self, step):
        """Runs the probe batch and writes all summaries at `step`.

        Called by `on_epoch_end`; call it yourself for extra points (only
        between `on_train_begin` and `on_train_end`).

        Args:
            step: Integer step of the summaries.

        Returns:
            The gate values written, `{layer name: {gate name: NumPy array}}`.
        """
        import tensorflow as tf
        from tensorboard.plugins.histogram import metadata as histogram_metadata
        from tensorboard.plugins.image import metadata as image_metadata

        if self._writer is None:
            raise RuntimeError(
                "GateHistograms.write_gates needs an open writer: it runs "
                "between on_train_begin and on_train_end (inside model.fit)."
            )
        recorded = {
            name: {
                gate: np.asarray(keras.ops.convert_to_numpy(value), np.float32)
                for gate, value in gates.items()
            }
            for name, gates in self._run(self._probe).items()
        }
        # The summaries are written as tensors in the plugins' own formats
        # (what tf.summary.histogram and tf.summary.image write), bucketed
        # with np.histogram: several times quicker than those two functions.
        histogram_kind = histogram_metadata.create_summary_metadata(
            display_name=None, description=""
        )
        image_kind = image_metadata.create_summary_metadata(
            display_name=None, description=""
        )
        cells = {c.name: c.cell for site in self._sites for c in site.ours}
        with self._writer.as_default(step=step):
            for name, gates in recorded.items():
                cell, nonfinite = cells[name], {}
                for value in sorted(gates, key=cell.tag_position):
                    histogram = histogram_tensor(gates[value], self.histogram_buckets)
                    tf.summary.write(
                        summary_tag(name, value, cell=cell),
                        histogram,
                        metadata=histogram_kind,
                    )
                    bad = gates[value].size - int(histogram[:, 2].sum())
                    if bad:
                        nonfinite[value] = bad / gates[value].size
                statistics = gate_statistics(gates, cell.gate_names)
                for (value, statistic), number in statistics.items():
                    tf.summary.scalar(
                        summary_tag(name, value, statistic, cell),
                        number,
                        description=SCALAR_DESCRIPTIONS[statistic],
                    )
                for value, fraction in nonfinite.items():
                    tf.summary.scalar(
                        summary_tag(name, value, "nonfinite_fraction", cell),
                        fraction,
                        description=SCALAR_DESCRIPTIONS["nonfinite_fraction"],
                    )
                if nonfinite:
                    warnings.warn(
                        f"GateHistograms: at step {step}, layer {name!r} has NaN "
                        "or infinite values in "
                        + ", ".join(
                            f"{value} ({fraction:.1%})"
                            for value, fraction in nonfinite.items()
                        )
                        + "; logged the finite values only.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                if not any(gate in gates for gate in cell.gate_names):
                    continue  # a cell without gates has no heatmap
                png, width, height = self._heatmap_png(name, gates, step, cell)
                tf.summary.write(
                    summary_tag(name, "heatmap"),
                    tf.stack([tf.as_string(width), tf.as_string(height), png]),
                    metadata=image_kind,
                )
        self._writer.flush()
        return recorded

    def _heatmap_png(self, name, gates, step, cell):
        """`(PNG bytes, width, height)` of one layer's heatmap at `step`."""
        import tensorflow as tf

        image = gate_heatmap(
            gates,
            self.heatmap_scale,
            time_labels=self.time_labels,
            title=f"{name}: gates of the first probe sequence, epoch {step + 1}",
            sort_units=self.sort_units,
            gate_names=cell.gate_names,
        )
        height, width = image.shape[:2]
        return tf.image.encode_png(image, compression=1), width, height
