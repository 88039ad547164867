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
from keras_lstm_variants.equations import EQUATION_ORDER
from keras_lstm_variants.equations import SIGMOID_GATE_NAMES
from keras_lstm_variants.sites import summary_tag

#: Values that come out of `recurrent_activation` (the sigmoid by default),
#: so lie in [0, 1]: the gates proper. For the coupled cell `input_gate` is
#: `1 - forget_gate`.
SIGMOID_GATES = SIGMOID_GATE_NAMES


#: A gate value below the first or above the second counts as saturated.
SATURATION_BOUNDS = (0.05, 0.95)


#: Allowed ranges `(low, high)` of the callback's size arguments.
HISTOGRAM_BUCKETS_RANGE = (1, 1000)
HEATMAP_SCALE_RANGE = (1, 16)

#: Bounds in pixels of the heatmap image: `(min, max)` width of the plotting
#: area, and `(min, max)` height of each gate's panel.
HEATMAP_WIDTH_RANGE = (640, 1600)
HEATMAP_PANEL_HEIGHT_RANGE = (100, 400)

#: Descriptions shown next to the scalar charts in TensorBoard.
SCALAR_DESCRIPTIONS = {
    "mean": "Mean over the probe batch, all time steps and units. It often "
    "moves in the second or third decimal: set Smoothing to 0 to see it.",
    "saturated_fraction": "Fraction of values below 0.05 or above 0.95: "
    "gates that act as hard switches.",
    "mean_abs": "Mean of |c_t| over the probe batch, time steps and units.",
    "nonfinite_fraction": "Fraction of NaN or infinite values (left out of "
    "the histogram and the other scalars).",
}

#: Readable stand-ins for characters that would be invisible on an axis.
_VISIBLE = {"\n": "\u21b5", " ": "\u2423", "\t": "\u21e5", "\r": "\u240d"}


def finite_values(values):
    """The finite entries of `values`, flattened, and how many were not finite."""
    values = np.asarray(values).ravel()
    finite = np.isfinite(values)
    if finite.all():
        return values, 0
    return values[finite], int(values.size - finite.sum())


def gate_statistics(gates):
    """The scalar summaries of one layer's gates, over their finite values.

    Args:
        gates: `{gate name: array (batch, time, units)}`, as returned by
            `gate_activations` for one layer.

    Returns:
        `{(value, statistic): float}`: for each gate in `SIGMOID_GATES`,
        `(gate, "mean")` (its mean over batch, time and units) and
        `(gate, "saturated_fraction")` (the fraction of its values below
        0.05 or above 0.95); and `("cell_state", "mean_abs")`, the mean of
        `|c_t|`. NaN and infinite values are left out; a value with no
        finite entry at all has no statistics.
    """
    low, high = SATURATION_BOUNDS
    stats = {}
    for gate in (g for g in SIGMOID_GATES if g in gates):
        values, _ = finite_values(gates[gate])
        if values.size:
            stats[gate, "mean"] = float(values.mean(dtype=np.float64))
            stats[gate, "saturated_fraction"] = float(
                np.mean((values < low) | (values > high))
            )
    values, _ = finite_values(gates["cell_state"])
    if values.size:
        stats["cell_state", "mean_abs"] = float(np.abs(values).mean(dtype=np.float64))
    return stats


def histogram_tensor(values, buckets):
    """Buckets the finite `values` the way TensorBoard's histograms store them.

    Args:
        values: Array of any shape. NaN and infinite values are left out
            (`np.histogram` cannot place them).
        buckets: Number of equal-width buckets between the smallest and the
            largest finite value.

    Returns:
        A float64 array `(buckets, 3)` of `(left edge, right edge, count)`
        rows (a single row if all finite values are equal, no row if there
        is none, as `tf.summary.histogram` writes for empty data): the tensor
        format of TensorBoard's histograms plugin. `np.histogram` does the
        counting: about ten times faster on probe-sized data than the
        plugin's own `histogram_pb` or `tf.summary.histogram`.
    """
    values, _ = finite_values(values)
    if not values.size:
        return np.zeros((0, 3), dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if low == high:
        return np.array([[low, high, values.size]], dtype=np.float64)
    counts, edges = np.histogram(values, bins=buckets, range=(low, high))
    return np.stack([edges[:-1], edges[1:], counts], axis=1).astype(np.float64)


def switch_order(forget_gate):
    """Unit order by when each unit's forget gate switches, earliest first.

    Args:
        forget_gate: Array `(time, units)` of one sequence.

    Returns:
        A permutation of the units: by the time step of the largest change
        of the forget gate from one step to the next (ties keep unit order).
    """
    values = np.nan_to_num(np.asarray(forget_gate, dtype=np.float64))
    if values.shape[0] < 2:
        return np.arange(values.shape[1])
    when = np.argmax(np.abs(np.diff(values, axis=0)), axis=0)
    return np.argsort(when, kind="stable")


def _axis_labels(time_labels, steps):
    """`(tick positions, tick texts, axis title)` of the heatmap's time axis."""
    if time_labels is None:
        every = max(1, int(np.ceil(steps / 16)))
        ticks = np.arange(0, steps, every)
        return ticks, [str(t) for t in ticks], "time step"
    texts = [str(label) for label in time_labels]
    characters = all(len(text) == 1 for text in texts)
    if characters:
        texts = [_VISIBLE.get(text, text) for text in texts]
        every = max(1, int(np.ceil(steps / 160)))
        title = "time step: the probe's characters (\u21b5 line break, \u2423 space)"
    else:
        width = max(len(text) for text in texts)
        every = max(1, int(np.ceil(steps * width / 180)))
        title = "time: the first probe sequence's steps"
    ticks = np.arange(0, steps, every)
    return ticks, [texts[t] for t in ticks], title


def heatmap_figure(
    gates,
    scale=2,
    time_labels=None,
    title=None,
    sort_units=False,
):
    """Draws one layer's gates for the first probe sequence with matplotlib.

    One panel per gate, top to bottom `input_gate`, `forget_gate`,
    `output_gate` (the order of the equations), each named, with one row per
    unit and one column per time step; the time axis carries `time_labels`
    (the probe's characters or dates) or the step numbers; one colour bar
    (viridis: dark purple 0, closed; yellow 1, open). NaN and infinite
    values are drawn in red and counted in the panel's name.

    The size follows the data within fixed bounds: `scale` pixels per time
    step and per unit, but the plotting area is 640 to 1600 pixels wide
    (at least 10 pixels per character label) and each panel 100 to 400
    pixels high, so the image stays legible and bounded for any model.

    Args:
        gates: `{gate name: array (batch, time, units)}` for one layer.
        scale: Integer in [1, 16], pixels per unit and per time step before
            the bounds apply.
        time_labels: `None`, or one label per time step (a string gives one
            character per step). Labels of another length than the layer's
            time axis (a layer after a strided convolution) are not used:
            the axis then shows step numbers.
        title: The figure's title, or `None`.
        sort_units: If true, the units are ordered by when their forget gate
            switches (`switch_order`), the same order in every panel.

    Returns:
        A `matplotlib.figure.Figure` (not registered with pyplot).
    """
    import matplotlib
    from matplotlib.figure import Figure

    names = [g for g in SIGMOID_GATES if g in gates]  # a variant may lack some
    panels = [np.asarray(gates[g][0], dtype=np.float64) for g in names]
    steps, units = panels[0].shape
    if time_labels is not None and len(time_labels) != steps:
        time_labels = None
    sorter = panels[names.index("forget_gate")] if "forget_gate" in names else panels[0]
    order = switch_order(sorter) if sort_units else np.arange(units)

    width = scale * steps
    if time_labels is not None:
        width = max(width, 10 * steps)
    width = int(np.clip(width, *HEATMAP_WIDTH_RANGE))
    panel = int(np.clip(scale * units, *HEATMAP_PANEL_HEIGHT_RANGE))
    left, right, top, bottom, gap = 80, 130, 64, 90, 34
    fig_w = left + width + right
    fig_h = top + len(panels) * panel + (len(panels) - 1) * gap + bottom
    dpi = 100
    fig = Figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="red")
    ticks, texts, axis_title = _axis_labels(time_labels, steps)
    characters = time_labels is not None and all(len(str(t)) == 1 for t in time_labels)
    axes = []
    for k, (gate, values) in enumerate(zip(names, panels, strict=True)):
        y0 = bottom + (len(panels) - 1 - k) * (panel + gap)
        ax = fig.add_axes((left / fig_w, y0 / fig_h, width / fig_w, panel / fig_h))
        shown = np.ma.masked_invalid(values[:, order].T)  # units x time
        image = ax.imshow(
            shown,
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
            aspect="auto",
            interpolation="nearest",
            origin="upper",
        )
        bad = int(np.ma.count_masked(shown))
        name = gate.replace("_", " ")
        if bad:
            name += (
                f"  ({bad} NaN or infinite {'value' if bad == 1 else 'values'}, in red)"
            )
        ax.set_title(name, loc="left", fontsize=11, fontweight="bold")
        ax.set_ylabel("unit (sorted)" if sort_units else "unit")
        unit_every = max(1, int(np.ceil(units / 8)))
        unit_ticks = np.arange(0, units, unit_every)
        ax.set_yticks(unit_ticks, [str(u) for u in order[unit_ticks]], fontsize=8)
        ax.set_xticks(ticks, texts if k == 2 else [], fontsize=9)
        if k == 2:
            if characters:
                ax.tick_params(axis="x", length=2, pad=2)
            else:
                for label in ax.get_xticklabels():
                    label.set_rotation(45)
                    label.set_horizontalalignment("right")
            ax.set_xlabel(axis_title)
        axes.append(ax)
    cbar_ax = fig.add_axes(
        (
            (left + width + 24) / fig_w,
            bottom / fig_h,
            16 / fig_w,
            (3 * panel + 2 * gap) / fig_h,
        )
    )
    fig.colorbar(image, cax=cbar_ax, label="gate value (0 closed, 1 open)")
    if title:
        fig.suptitle(
            title, x=left / fig_w, y=1 - 12 / fig_h, ha="left", va="top", fontsize=12
        )
    return fig


def gate_heatmap(gates, scale=2, time_labels=None, title=None, sort_units=False):
    """`heatmap_figure` rendered to an RGB image.

    Returns:
        A `uint8` array `(height, width, 3)`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = heatmap_figure(gates, scale, time_labels, title, sort_units)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


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
      each value over the whole probe batch, all steps and units.
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
        with self._writer.as_default(step=step):
            for name, gates in recorded.items():
                nonfinite = {}
                for value in (v for v in EQUATION_ORDER if v in gates):
                    histogram = histogram_tensor(gates[value], self.histogram_buckets)
                    tf.summary.write(
                        summary_tag(name, value), histogram, metadata=histogram_kind
                    )
                    bad = gates[value].size - int(histogram[:, 2].sum())
                    if bad:
                        nonfinite[value] = bad / gates[value].size
                for (value, statistic), number in gate_statistics(gates).items():
                    tf.summary.scalar(
                        summary_tag(name, value, statistic),
                        number,
                        description=SCALAR_DESCRIPTIONS[statistic],
                    )
                for value, fraction in nonfinite.items():
                    tf.summary.scalar(
                        summary_tag(name, value, "nonfinite_fraction"),
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
                if not any(gate in gates for gate in SIGMOID_GATES):
                    continue  # a cell without gates has no heatmap
                png, width, height = self._heatmap_png(name, gates, step)
                tf.summary.write(
                    summary_tag(name, "heatmap"),
                    tf.stack([tf.as_string(width), tf.as_string(height), png]),
                    metadata=image_kind,
                )
        self._writer.flush()
        return recorded

    def _heatmap_png(self, name, gates, step):
        """`(PNG bytes, width, height)` of one layer's heatmap at `step`."""
        import tensorflow as tf

        image = gate_heatmap(
            gates,
            self.heatmap_scale,
            time_labels=self.time_labels,
            title=f"{name}: gates of the first probe sequence, epoch {step + 1}",
            sort_units=self.sort_units,
        )
        height, width = image.shape[:2]
        return tf.image.encode_png(image, compression=1), width, height
