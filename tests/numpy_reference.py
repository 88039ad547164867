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
    """The weights of an LSTM cell as a dict of NumPy arrays (None if absent).

    One of our standard, peephole or coupled cells, or Keras's `LSTMCell`."""
    weights = {
        "kernel": to_numpy(cell.kernel),
        "recurrent_kernel": to_numpy(cell.recurrent_kernel),
        "bias": None if getattr(cell, "bias", None) is None else to_numpy(cell.bias),
    }
    for gate in GATES:
        w = getattr(cell, f"{gate}_gate_peephole_weights", None)
        weights[gate] = None if w is None else to_numpy(w)
    return weights


# The variant space (REFERENCE.md, "The variant space"), written from the
# equations there: a missing gate is the constant 1 and has no block.

GREFF = {
    "vanilla": {"peepholes": ("input", "forget", "output")},
    "NIG": {"input_gate": False, "peepholes": ("forget", "output")},
    "NFG": {"forget_gate": False, "peepholes": ("input", "output")},
    "NOG": {"output_gate": False, "peepholes": ("input", "forget")},
    "NIAF": {"input_activation": False, "peepholes": ("input", "forget", "output")},
    "NOAF": {"output_activation": False, "peepholes": ("input", "forget", "output")},
    "NP": {"peepholes": ()},
    "CIFG": {"coupled": True, "peepholes": ("forget", "output")},
    "FGR": {"fgr": True, "peepholes": ("input", "forget", "output")},
}


def layer_norm(v, gamma, beta, eps=1e-3):
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return gamma * (v - mean) / np.sqrt(var + eps) + beta


def variant_step(x, h, c, a, w, options):
    """One step of a variant; returns (values dict, h, c, a) in float64.

    `options`: input_gate, forget_gate, output_gate, input_activation,
    output_activation, coupled, fgr, layer_norm, cell_clip, projection_clip
    (missing keys: the standard LSTM). `w`: the weights by their names in
    REFERENCE.md, `peepholes` a dict gate -> vector.
    """
    o_ = {
        "input_gate": True, "forget_gate": True, "output_gate": True,
        "input_activation": True, "output_activation": True, "coupled": False,
        "fgr": False, "layer_norm": False, "cell_clip": None,
        "projection_clip": None, **options,
    }
    f64 = lambda v: None if v is None else np.asarray(v, np.float64)  # noqa: E731
    units = c.shape[-1]
    names = [
        n for n, has in (
            ("i", o_["input_gate"] and not o_["coupled"]),
            ("f", o_["forget_gate"]),
            ("c", True),
            ("o", o_["output_gate"]),
        ) if has
    ]
    xk = x @ f64(w["kernel"])
    hr = h @ f64(w["recurrent_kernel"])
    if o_["layer_norm"]:
        xk = layer_norm(xk, f64(w["kernel_norm_gamma"]), f64(w["kernel_norm_beta"]))
        hr = layer_norm(
            hr, f64(w["recurrent_norm_gamma"]), f64(w["recurrent_norm_beta"])
        )
    z = xk + hr
    if w.get("bias") is not None:
        z = z + f64(w["bias"])
    zs = {n: z[:, k * units : (k + 1) * units] for k, n in enumerate(names)}
    if o_["fgr"]:
        feedback = a @ f64(w["gate_recurrent_kernel"])
        for k, n in enumerate(("i", "f", "o")):
            zs[n] = zs[n] + feedback[:, k * units : (k + 1) * units]
    p = {g[0]: f64(v) for g, v in w.get("peepholes", {}).items()}
    values = {}
    f = sigmoid(zs["f"] + p.get("f", 0.0) * c) if o_["forget_gate"] else 1.0
    if o_["coupled"]:
        i = 1.0 - f
    elif o_["input_gate"]:
        i = sigmoid(zs["i"] + p.get("i", 0.0) * c)
    else:
        i = 1.0
    g = np.tanh(zs["c"]) if o_["input_activation"] else zs["c"]
    c_new = f * c + i * g
    if o_["layer_norm"]:
        c_new = layer_norm(
            c_new, f64(w["state_norm_gamma"]), f64(w["state_norm_beta"])
        )
    if o_["cell_clip"] is not None:
        c_new = np.clip(c_new, -o_["cell_clip"], o_["cell_clip"])
    o = sigmoid(zs["o"] + p.get("o", 0.0) * c_new) if o_["output_gate"] else 1.0
    h_new = o * (np.tanh(c_new) if o_["output_activation"] else c_new)
    if w.get("projection_kernel") is not None:
        h_new = h_new @ f64(w["projection_kernel"])
        if o_["projection_clip"] is not None:
            h_new = np.clip(h_new, -o_["projection_clip"], o_["projection_clip"])
    for name, value, exists in (
        ("input_gate", i, o_["input_gate"]),
        ("forget_gate", f, o_["forget_gate"]),
        ("output_gate", o, o_["output_gate"]),
    ):
        if exists:
            values[name] = value
    values.update(candidate=g, cell_state=c_new, hidden_state=h_new)
    a_new = None
    if o_["fgr"]:
        a_new = np.concatenate([i, f, o], axis=-1)
    return values, h_new, c_new, a_new


def variant_sequence(x, w, options, units, out_units):
    """All steps of a sequence: (values dict of (batch, time, .), h, c)."""
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    h = np.zeros((batch, out_units))
    c = np.zeros((batch, units))
    a = np.zeros((batch, 3 * units))
    steps = []
    for t in range(time):
        values, h, c, a = variant_step(x[:, t], h, c, a, w, options)
        steps.append(values)
    stacked = {k: np.stack([s[k] for s in steps], axis=1) for k in steps[0]}
    return stacked, h, c


def variant_weights(cell):
    """A variant cell's weights as NumPy arrays, by REFERENCE.md's names."""
    names = (
        "kernel", "recurrent_kernel", "bias", "gate_recurrent_kernel",
        "projection_kernel", "kernel_norm_gamma", "kernel_norm_beta",
        "recurrent_norm_gamma", "recurrent_norm_beta", "state_norm_gamma",
        "state_norm_beta",
    )
    w = {n: None if getattr(cell, n) is None else to_numpy(getattr(cell, n))
         for n in names}
    w["peepholes"] = {
        g: to_numpy(getattr(cell, f"{g}_gate_peephole_weights"))
        for g in GATES
        if getattr(cell, f"{g}_gate_peephole_weights") is not None
    }
    return w
