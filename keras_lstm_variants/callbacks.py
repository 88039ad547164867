"""A Keras callback that logs our layers' gates to TensorBoard while training.

`GateHistograms` runs a fixed probe batch through the model at the end of the
chosen epochs, reads every gate of every step with the gate-inspection core
(`keras_lstm_variants.inspection`) and writes histograms, scalars and heatmap
images into a `gates` run next to `keras.callbacks.TensorBoard`'s `train` and
`validation` runs. TensorFlow is imported only when the callback writes, so
the package itself does not need it.
"""

import os
import tempfile

import keras
import numpy as np

from keras_lstm_variants import inspection
from keras_lstm_variants import sites as sites_lib
from keras_lstm_variants import validation
from keras_lstm_variants.equations import SIGMOID_GATE_NAMES

#: Values that come out of `recurrent_activation` (the sigmoid by default),
#: so lie in [0, 1]: the gates proper. For the coupled cell `input_gate` is
#: `1 - forget_gate`.
SIGMOID_GATES = SIGMOID_GATE_NAMES

#: A gate value below the first or above the second counts as saturated.
SATURATION_BOUNDS = (0.05, 0.95)


def gate_statistics(gates):
    """The scalar summaries of one layer's gates.

    Args:
        gates: `{gate name: array (batch, time, units)}`, as returned by
            `gate_activations` for one layer.

    Returns:
        `{tag suffix: float}`: for each gate in `SIGMOID_GATES`,
        `"<gate>/mean"` (its mean over batch, time and units) and
        `"<gate>/saturated_fraction"` (the fraction of its values below 0.05
        or above 0.95); and `"cell_state/mean_abs"`, the mean of `|c_t|`.
    """
    low, high = SATURATION_BOUNDS
    stats = {}
    for gate in SIGMOID_GATES:
        values = np.asarray(gates[gate])
        stats[f"{gate}/mean"] = float(values.mean(dtype=np.float64))
        stats[f"{gate}/saturated_fraction"] = float(
            np.mean((values < low) | (values > high))
        )
    stats["cell_state/mean_abs"] = float(
        np.abs(np.asarray(gates["cell_state"])).mean(dtype=np.float64)
    )
    return stats


def histogram_tensor(values, buckets):
    """Buckets `values` the way TensorBoard's histogram summaries store them.

    Args:
        values: Array of any shape.
        buckets: Number of equal-width buckets between the smallest and the
            largest value.

    Returns:
        A float64 array `(buckets, 3)` of `(left edge, right edge, count)`
        rows (a single row if all values are equal): the tensor format of
        TensorBoard's histograms plugin. `np.histogram` does the counting:
        about ten times faster on probe-sized data than the plugin's own
        `histogram_pb` or `tf.summary.histogram`.
    """
    values = np.asarray(values).ravel()
    low, high = float(values.min()), float(values.max())
    if low == high:
        return np.array([[low, high, values.size]], dtype=np.float64)
    counts, edges = np.histogram(values, bins=buckets, range=(low, high))
    return np.stack([edges[:-1], edges[1:], counts], axis=1).astype(np.float64)


def heatmap_shape(units, timesteps, scale):
    """`(height, width)` in pixels of the heatmap `gate_heatmap` draws."""
    panels = len(SIGMOID_GATES)
    return (scale * (panels * units + panels - 1), scale * timesteps)


def gate_heatmap(gates, scale=2):
    """Draws one layer's gates for the first sequence as an RGB image.

    The image stacks one panel per gate, top to bottom `input_gate`,
    `forget_gate`, `output_gate`, each with one row per unit and one column
    per time step (units by time), separated by white bands one unit high.
    Colours follow viridis: dark purple for 0 (closed), yellow for 1 (open).
    Each value is a `scale` by `scale` block of pixels.

    Args:
        gates: `{gate name: array (batch, time, units)}` for one layer.
        scale: Positive integer, pixels per unit and per time step.

    Returns:
        A `uint8` array `(height, width, 3)`, with `(height, width)` equal
        to `heatmap_shape(units, time, scale)`.
    """
    panels = []
    for gate in SIGMOID_GATES:
        values = np.asarray(gates[gate][0], dtype=np.float64).T  # units x time
        panels.append(_colorize(values))
        panels.append(np.full((1, values.shape[1], 3), 255, dtype=np.uint8))
    image = np.concatenate(panels[:-1], axis=0)
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def _colorize(values):
    """Maps values in [0, 1] to matplotlib's viridis colours, `uint8 (..., 3)`."""
    import matplotlib

    viridis = matplotlib.colormaps["viridis"]
    return viridis(np.clip(np.nan_to_num(values), 0.0, 1.0), bytes=True)[..., :3]


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
    `keras.callbacks.TensorBoard` uses for its epoch summaries):

    * Histograms (Histograms and Distributions tabs), tag
      `gates/<layer name>/<gate name>` for the six values `input_gate`,
      `forget_gate`, `output_gate`, `candidate`, `cell_state` and
      `hidden_state`, over the whole probe batch, all steps and units.
    * Scalars (Scalars tab): `gates/<layer name>/<gate>/mean` and
      `gates/<layer name>/<gate>/saturated_fraction` (fraction of values
      below 0.05 or above 0.95) for the three gates, and
      `gates/<layer name>/cell_state/mean_abs`, the mean of `|c_t|`.
    * One image per layer (Images tab), tag `gates/<layer name>/heatmap`:
      the input, forget and output gates of the first probe sequence, top to
      bottom, units by time steps (see `gate_heatmap`).

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
    input shape (the message names the expected shape), and `log_dir` must
    be writable.

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
        histogram_buckets: Positive integer, buckets per histogram.
            Default: 30.
        heatmap_scale: Positive integer, pixels per unit and time step in
            the heatmap images. Default: 2.
        run_name: Name of the run (subdirectory of `log_dir`). Default:
            `"gates"`.

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
        check = validation.check_positive_int
        self.every_n_epochs = check("every_n_epochs", every_n_epochs)
        self.histogram_buckets = check("histogram_buckets", histogram_buckets)
        self.heatmap_scale = check("heatmap_scale", heatmap_scale)
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
        # with np.histogram and encoded with a fast PNG compression: several
        # times quicker than those two functions on probe-sized data.
        histogram_kind = histogram_metadata.create_summary_metadata(
            display_name=None, description=""
        )
        image_kind = image_metadata.create_summary_metadata(
            display_name=None, description=""
        )
        with self._writer.as_default(step=step):
            for name, gates in recorded.items():
                for gate in gates:
                    tf.summary.write(
                        sites_lib.summary_tag(name, gate),
                        histogram_tensor(gates[gate], self.histogram_buckets),
                        metadata=histogram_kind,
                    )
                for suffix, value in gate_statistics(gates).items():
                    tf.summary.scalar(sites_lib.summary_tag(name, suffix), value)
                image = gate_heatmap(gates, self.heatmap_scale)
                height, width = image.shape[:2]
                png = tf.image.encode_png(image, compression=1)
                tf.summary.write(
                    sites_lib.summary_tag(name, "heatmap"),
                    tf.stack([tf.as_string(width), tf.as_string(height), png]),
                    metadata=image_kind,
                )
        self._writer.flush()
        return recorded
