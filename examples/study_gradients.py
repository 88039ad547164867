"""How far back the error reaches: gradient norms against the lag.

Helper module of `study.py` (run that as a file). For a trained or fresh
recurrent layer and its read-out, `gradient_norms` measures, on fixed-length
sequences of T steps and the squared error L of each sequence at its end:

* `dL/dx_{T-k}`: the norm of the gradient with respect to the input k steps
  before the end (k = 0 is the last input), for any Keras RNN layer;
* `dL/dc_{T-k}`: for the LSTM cells of this package, the norm of the
  gradient with respect to the cell state carried out of step T - k (k = T
  is the initial state), that is, with respect to an additive perturbation
  of `c` on its way to the next step. This is the path of the "constant
  error carousel": `c_T = f_T * ... * f_{T-k+1} * c_{T-k} + ...`.

The perturbation is injected by `CellStateProbe`, a cell that wraps the
layer's own cell (same weights) and reads, besides `x_t`, a perturbation
`delta_t` that it adds to the incoming cell state; with `delta = 0` it
computes exactly the layer, and the gradient with respect to `delta_t` is
the gradient with respect to the cell state carried into step t.
"""

import keras
import numpy as np
import tensorflow as tf

import keras_lstm_variants as klv


class CellStateProbe(keras.layers.Layer):
    """Wraps an LSTM cell; adds the last `units` inputs to the incoming `c`.

    Args:
        cell: A built cell of this package (`LSTMVariantCell` or a preset),
            whose state is `[h, c, ...]`.
        input_dim: Features of `x_t`; the step input is `[x_t, delta_t]`.
    """

    def __init__(self, cell, input_dim, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.input_dim = input_dim
        self.state_size = cell.state_size
        self.output_size = cell.output_size

    def call(self, inputs, states, training=False):
        x, delta = inputs[:, : self.input_dim], inputs[:, self.input_dim :]
        states = list(states)
        states[1] = states[1] + delta
        return self.cell(x, states, training=training)


def has_cell_state(layer):
    """Whether `layer` runs one of this package's LSTM cells."""
    return isinstance(getattr(layer, "cell", None), klv.LSTMVariantCell)


def gradient_norms(layer, readout, inputs, targets):
    """Mean norms of `dL/dx_{T-k}` and `dL/dc_{T-k}` over the sequences.

    Args:
        layer: A built Keras RNN layer returning its last output (trained
            or not); its cell is run again on `inputs` with the same weights.
        readout: The layer after it (for example a `Dense`), built.
        inputs: `(n, T, features)`, no padding (cast to the layer's dtype).
        targets: `(n, outputs)`; L is the squared error of each sequence,
            summed over its outputs.

    Returns:
        `(dx, dc)`: `dx[k]` for k = 0 .. T-1 is the mean over the sequences
        of the norm of the gradient with respect to `x_{T-k}` (k = 0: the last
        input); `dc[k]` for k = 1 .. T likewise for the cell state carried out
        of step T - k (`dc[0]` is NaN; k = T is the initial state), or `None`
        for a layer without a cell state.
    """
    dtype = layer.compute_dtype
    inputs = tf.constant(inputs, dtype)
    targets = tf.constant(targets, dtype)
    n, steps, features = inputs.shape
    if has_cell_state(layer):
        rnn = keras.layers.RNN(
            CellStateProbe(layer.cell, features), dtype=layer.dtype_policy
        )
        delta = tf.zeros((n, steps, layer.cell.units), dtype)
    else:
        rnn = keras.layers.RNN(layer.cell, dtype=layer.dtype_policy)
        delta = None
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        if delta is None:
            outputs = rnn(inputs)
        else:
            tape.watch(delta)
            outputs = rnn(tf.concat([inputs, delta], axis=-1))
        loss = 0.5 * tf.reduce_sum((readout(outputs) - targets) ** 2)
    watched = [inputs] if delta is None else [inputs, delta]
    grads = tape.gradient(loss, watched)
    # Each sequence's loss depends only on its own inputs: the gradient of
    # the sum holds every sequence's own gradient.
    dx = tf.norm(grads[0], axis=-1).numpy().mean(axis=0)[::-1]
    if delta is None:
        return dx.astype("float64"), None
    # delta_t (t = 0 .. T-1) perturbs the state carried out of step t, c_t,
    # c_0 the initial state; its lag from the end is k = T - t.
    by_step = tf.norm(grads[1], axis=-1).numpy().mean(axis=0)
    dc = np.full(steps + 1, np.nan)
    dc[steps - np.arange(steps)] = by_step
    return dx.astype("float64"), dc


def decay_per_step(norms, first=1, last=None):
    """The geometric mean factor by which `norms` shrink per lag step.

    A least-squares line through `log(norms[first:last])` against the lag;
    returns `exp(slope)`: below 1 the gradient vanishes exponentially.
    """
    values = np.asarray(norms[first:last], dtype="float64")
    lags = np.arange(first, first + len(values))
    keep = np.isfinite(values) & (values > 0)
    if keep.sum() < 2:
        return float("nan")
    slope = np.polyfit(lags[keep], np.log(values[keep]), 1)[0]
    return float(np.exp(slope))
