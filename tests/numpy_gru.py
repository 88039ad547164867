"""An independent float64 NumPy implementation of REFERENCE.md's GRU equations
("Other variations"), written from the formulas, not from the package."""

import numpy as np
from numpy_reference import sigmoid
from numpy_reference import to_numpy


def gru_step(x, h, weights, reset_after):
    """One step; returns a dict of update_gate, reset_gate, candidate and
    hidden_state as float64 arrays."""
    kernel = np.asarray(weights["kernel"], np.float64)
    recurrent = np.asarray(weights["recurrent_kernel"], np.float64)
    bias = weights.get("bias")
    units = recurrent.shape[0]

    def blocks(v):
        return [v[:, k * units : (k + 1) * units] for k in range(3)]

    x_all = x @ kernel
    if reset_after:
        u_all = h @ recurrent
        if bias is not None:
            bias = np.asarray(bias, np.float64)
            x_all = x_all + bias[0]
            u_all = u_all + bias[1]
        (x_z, x_r, x_h), (u_z, u_r, u_h) = blocks(x_all), blocks(u_all)
        z = sigmoid(x_z + u_z)
        r = sigmoid(x_r + u_r)
        candidate = np.tanh(x_h + r * u_h)
    else:
        if bias is not None:
            x_all = x_all + np.asarray(bias, np.float64)
        x_z, x_r, x_h = blocks(x_all)
        r_z, r_r, r_h = blocks(recurrent)
        z = sigmoid(x_z + h @ r_z)
        r = sigmoid(x_r + h @ r_r)
        candidate = np.tanh(x_h + (r * h) @ r_h)
    h_new = z * h + (1.0 - z) * candidate
    return {
        "update_gate": z,
        "reset_gate": r,
        "candidate": candidate,
        "hidden_state": h_new,
    }


def gru_sequence(
    x,
    weights,
    reset_after=True,
    h0=None,
    mask=None,
    go_backwards=False,
    zero_output_for_mask=False,
    first_output=None,
):
    """Runs a sequence `(batch, time, features)` with `keras.layers.RNN`'s
    masking rule (masked steps keep the state; the output repeats the previous
    one, or is zero with `zero_output_for_mask`). `first_output` is the
    output that masked steps before any unmasked one repeat (default zeros;
    Keras's JAX backend repeats the initial state there).

    Returns:
        `(outputs (batch, time, units) in processing order, h_T, values)`,
        `values` a dict of `(batch, time, units)` arrays of each step's
        values (unmasked, in processing order).
    """
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    units = np.asarray(weights["recurrent_kernel"]).shape[0]
    h = np.zeros((batch, units)) if h0 is None else np.asarray(h0, np.float64)
    order = range(time - 1, -1, -1) if go_backwards else range(time)
    outputs, steps = [], []
    previous_output = np.zeros((batch, units))
    if first_output is not None:
        previous_output = np.asarray(first_output, np.float64)
    for t in order:
        values = gru_step(x[:, t], h, weights, reset_after)
        h_new = values["hidden_state"]
        out = h_new
        if mask is not None:
            keep = np.asarray(mask[:, t], bool)[:, None]
            h_new = np.where(keep, h_new, h)
            masked_out = 0.0 if zero_output_for_mask else previous_output
            out = np.where(keep, out, masked_out)
        h, previous_output = h_new, out
        outputs.append(out)
        steps.append(values)
    stacked = {k: np.stack([s[k] for s in steps], axis=1) for k in steps[0]}
    return np.stack(outputs, axis=1), h, stacked


def gru_weights(cell):
    """A GRU cell's weights (ours or Keras's) as NumPy arrays."""
    bias = getattr(cell, "bias", None)
    return {
        "kernel": to_numpy(cell.kernel),
        "recurrent_kernel": to_numpy(cell.recurrent_kernel),
        "bias": None if bias is None else to_numpy(bias),
    }
