"""An independent float64 NumPy implementation of the equations in REFERENCE.md.

Written from the formulas, not from the package: the tests compare the package
against it. Keep it plain and obvious.
"""

import keras
import numpy as np


def to_numpy(x):
    """Any backend's tensor or variable as a NumPy array."""
    return keras.ops.convert_to_numpy(x)


def assert_allclose(actual, desired, **kwargs):
    np.testing.assert_allclose(to_numpy(actual), to_numpy(desired), **kwargs)


def assert_array_equal(actual, desired, **kwargs):
    np.testing.assert_array_equal(to_numpy(actual), to_numpy(desired), **kwargs)

GATES = ("input", "forget", "output")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_step(x, h, c, weights, coupled):
    """One step; returns (i, f, o, g, c_new, h_new) as float64 arrays."""
    kernel = np.asarray(weights["kernel"], np.float64)
    recurrent = np.asarray(weights["recurrent_kernel"], np.float64)
    units = recurrent.shape[0]
    z = x @ kernel + h @ recurrent
    if weights.get("bias") is not None:
        z = z + np.asarray(weights["bias"], np.float64)
    p = {
        gate: np.asarray(weights[gate], np.float64)
        if weights.get(gate) is not None
        else np.zeros(units)
        for gate in GATES
    }
    if coupled:
        z_f, z_c, z_o = (z[:, k * units : (k + 1) * units] for k in range(3))
        f = sigmoid(z_f + p["forget"] * c)
        i = 1.0 - f
    else:
        z_i, z_f, z_c, z_o = (z[:, k * units : (k + 1) * units] for k in range(4))
        i = sigmoid(z_i + p["input"] * c)
        f = sigmoid(z_f + p["forget"] * c)
    g = np.tanh(z_c)
    c_new = f * c + i * g
    o = sigmoid(z_o + p["output"] * c_new)
    h_new = o * np.tanh(c_new)
    return i, f, o, g, c_new, h_new


def lstm_sequence(
    x, weights, coupled=False, h0=None, c0=None, mask=None, go_backwards=False
):
    """Runs a sequence (batch, time, features).

    Masked steps keep the states and repeat the previous output, as
    `keras.layers.RNN` does with `zero_output_for_mask=False`.

    Returns:
        (outputs (batch, time, units) in processing order, h_T, c_T).
    """
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    units = np.asarray(weights["recurrent_kernel"]).shape[0]
    h = np.zeros((batch, units)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((batch, units)) if c0 is None else np.asarray(c0, np.float64)
    order = range(time - 1, -1, -1) if go_backwards else range(time)
    outputs = []
    previous_output = np.zeros((batch, units))
    for t in order:
        *_, c_new, h_new = lstm_step(x[:, t], h, c, weights, coupled)
        if mask is not None:
            keep = np.asarray(mask[:, t], bool)[:, None]
            c_new = np.where(keep, c_new, c)
            h_new = np.where(keep, h_new, h)
            out = np.where(keep, h_new, previous_output)
        else:
            out = h_new
        h, c = h_new, c_new
        previous_output = out
        outputs.append(out)
    return np.stack(outputs, axis=1), h, c


def cell_weights(cell):
    """The weights of one of our cells as a dict of NumPy arrays (None if absent)."""
    weights = {
        "kernel": to_numpy(cell.kernel),
        "recurrent_kernel": to_numpy(cell.recurrent_kernel),
        "bias": None if cell.bias is None else to_numpy(cell.bias),
    }
    for gate in GATES:
        w = getattr(cell, f"{gate}_gate_peephole_weights")
        weights[gate] = None if w is None else to_numpy(w)
    return weights
