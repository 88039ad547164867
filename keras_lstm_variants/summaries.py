"""What the callback logs of one layer's values: histograms and scalars.

Plain NumPy on the arrays of `gate_activations`; NaN and infinite values are
left out and counted.
"""

import numpy as np

from keras_lstm_variants.equations import SIGMOID_GATE_NAMES

#: Values that come out of `recurrent_activation` (the sigmoid by default),
#: so lie in [0, 1]: the gates proper. For the coupled cell `input_gate` is
#: `1 - forget_gate`.
SIGMOID_GATES = SIGMOID_GATE_NAMES


#: A gate value below the first or above the second counts as saturated.
SATURATION_BOUNDS = (0.05, 0.95)


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

def finite_values(values):
    """The finite entries of `values`, flattened, and how many were not finite."""
    values = np.asarray(values).ravel()
    finite = np.isfinite(values)
    if finite.all():
        return values, 0
    return values[finite], int(values.size - finite.sum())


def gate_statistics(gates, gate_names=SIGMOID_GATES):
    """The scalar summaries of one layer's gates, over their finite values.

    Args:
        gates: `{gate name: array (batch, time, units)}`, as returned by
            `gate_activations` for one layer.
        gate_names: The values that are gates (the cell's `gate_names`).

    Returns:
        `{(value, statistic): float}`: for each gate of `gate_names`,
        `(gate, "mean")` (its mean over batch, time and units) and
        `(gate, "saturated_fraction")` (the fraction of its values below
        0.05 or above 0.95); and `("cell_state", "mean_abs")`, the mean of
        `|c_t|` where the cell has one. NaN and infinite values are left
        out; a value with no finite entry at all has no statistics.
    """
    low, high = SATURATION_BOUNDS
    stats = {}
    for gate in (g for g in gate_names if g in gates):
        values, _ = finite_values(gates[gate])
        if values.size:
            stats[gate, "mean"] = float(values.mean(dtype=np.float64))
            stats[gate, "saturated_fraction"] = float(
                np.mean((values < low) | (values > high))
            )
    values, _ = finite_values(gates.get("cell_state", ()))
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
