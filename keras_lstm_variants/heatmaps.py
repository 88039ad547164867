"""The gate heatmap image the callback logs, drawn with matplotlib.

One panel per gate of one layer for the first probe sequence: units by time
steps, the probe's characters or dates along the time axis, a colour bar.
"""

import numpy as np

from keras_lstm_variants.summaries import SIGMOID_GATES

#: Bounds in pixels of the heatmap image: `(min, max)` width of the plotting
#: area, and `(min, max)` height of each gate's panel.
HEATMAP_WIDTH_RANGE = (640, 1600)
HEATMAP_PANEL_HEIGHT_RANGE = (100, 400)

#: Readable stand-ins for characters that would be invisible on an axis.
_VISIBLE = {"\n": "\u21b5", " ": "\u2423", "\t": "\u21e5", "\r": "\u240d"}


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
    gate_names=SIGMOID_GATES,
):
    """Draws one layer's gates for the first probe sequence with matplotlib.

    One panel per gate of `gate_names` (for the LSTM family, top to bottom
    `input_gate`, `forget_gate`, `output_gate`), each named, with one row per
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
            (else the first gate) switches (`switch_order`), the same order
            in every panel.
        gate_names: The values to draw, in panel order: the cell's
            `gate_names` (values in [0, 1]); those missing from `gates` are
            left out.

    Returns:
        A `matplotlib.figure.Figure` (not registered with pyplot).
    """
    import matplotlib
    from matplotlib.figure import Figure

    names = [g for g in gate_names if g in gates]  # a variant may lack some
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


def gate_heatmap(
    gates,
    scale=2,
    time_labels=None,
    title=None,
    sort_units=False,
    gate_names=SIGMOID_GATES,
):
    """`heatmap_figure` rendered to an RGB image.

    Returns:
        A `uint8` array `(height, width, 3)`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = heatmap_figure(gates, scale, time_labels, title, sort_units, gate_names)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
