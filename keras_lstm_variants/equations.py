"""The LSTM equations, in one place, for every variant.

A variant is data: an `LSTMStep` says which gates exist, whether the input
and forget gates are coupled, which gates have peepholes, whether the input
and output activations apply, whether the gates feed back (FGR), and the
layer normalization, projection and clipping options. `lstm_step` computes one
step of any variant from it; the cells call it once per time step, the
whole-sequence fast path calls it inside its loop (for the variants whose
step needs only `z`), and gate inspection reads the values it returns. A
reader looking for any gate's formula finds it here and nowhere else.

Pre-activations `z = x_t · kernel + h_{t-1} · recurrent_kernel + bias` are
split along the last axis into the blocks of the gates that exist, in the
order `i, f, c, o` (exactly `keras.layers.LSTMCell`'s for the standard cell;
`f, c, o` for the coupled cell and NIG, `i, c, o` for NFG, `i, f, c` for NOG).
"""

import dataclasses
from typing import NamedTuple

from keras import ops

#: Every per-step value an LSTM cell can have, in this order: what gate
#: inspection returns, the export's `gates` signature and the callback
#: write. A variant without a gate has no value for it (`value_names`).
GATE_NAMES = (
    "input_gate",
    "forget_gate",
    "output_gate",
    "candidate",
    "cell_state",
    "hidden_state",
)

#: The six values in the order the equations compute them: the order of the
#: tags inside each layer's group.
EQUATION_ORDER = (
    "input_gate",
    "forget_gate",
    "candidate",
    "cell_state",
    "output_gate",
    "hidden_state",
)

#: The LSTM's values that come out of `recurrent_activation`: the gates proper.
SIGMOID_GATE_NAMES = GATE_NAMES[:3]

#: The states an LSTM cell carries, in the order of its `states` list.
STATE_NAMES = ("hidden_state", "cell_state")

#: The third state of a cell with full gate recurrence: `[i, f, o]` of the
#: previous step.
PREVIOUS_GATES = "previous_gates"

#: Gates that can read the cell state through a peephole.
PEEPHOLE_GATES = ("input", "forget", "output")

#: Block order of the fused pre-activations, per structure.
BLOCKS_STANDARD = ("input", "forget", "candidate", "output")
BLOCKS_COUPLED = ("forget", "candidate", "output")

#: `ε` of the layer normalization (TF-Addons `LayerNormLSTMCell`'s default).
LAYER_NORM_EPSILON = 1e-3

#: The layer normalization weights, in the order the cells create them.
NORM_WEIGHTS = (
    "kernel_norm_gamma",
    "kernel_norm_beta",
    "recurrent_norm_gamma",
    "recurrent_norm_beta",
    "state_norm_gamma",
    "state_norm_beta",
)


class GateValues(NamedTuple):
    """All values of one LSTM step, each of shape `(batch, units)` (the
    hidden state `(batch, projection_units)` with a projection); a gate the
    variant lacks is `None`."""

    input_gate: object
    forget_gate: object
    output_gate: object
    candidate: object
    cell_state: object
    hidden_state: object


def block_order(coupled):
    """Names of the blocks of `z` of the standard (or coupled) structure."""
    return BLOCKS_COUPLED if coupled else BLOCKS_STANDARD


@dataclasses.dataclass(frozen=True)
class LSTMStep:
    """What one step of an LSTM cell computes, as data.

    The cells declare their step with it and run it; the TensorFlow fast path
    reads the same declaration. Defaults give the standard LSTM.

    Attributes:
        coupled: Whether the input gate is `1 − forget_gate` instead of a
            gate of its own (CIFG).
        peephole_gates: The gates that read the cell state, a tuple in the
            order of `PEEPHOLE_GATES`.
        activation: `φ`.
        recurrent_activation: `σ`.
        input_gate: Whether the input gate exists (else `i = 1`; NIG).
        forget_gate: Whether the forget gate exists (else `f = 1`; NFG).
        output_gate: Whether the output gate exists (else `o = 1`; NOG).
        input_activation: Whether `g = φ(z_c)` (else `g = z_c`; NIAF).
        output_activation: Whether `h = o ⊙ φ(c)` (else `h = o ⊙ c`; NOAF).
        full_gate_recurrence: Whether the previous step's gates feed every
            gate through `gate_recurrent_kernel` (FGR).
        layer_norm: Whether the input and recurrent products and the new
            cell state are layer-normalized.
        projection_units: Width `P` of the projected hidden state, or `None`.
        cell_clip: Bound of the cell state, or `None`.
        projection_clip: Bound of the projected hidden state, or `None`.
    """

    coupled: bool = False
    peephole_gates: tuple = ()
    activation: object = ops.tanh
    recurrent_activation: object = ops.sigmoid
    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    input_activation: bool = True
    output_activation: bool = True
    full_gate_recurrence: bool = False
    layer_norm: bool = False
    projection_units: object = None
    cell_clip: object = None
    projection_clip: object = None

    @property
    def blocks(self):
        """Names of the blocks of `z`, in order: the gates that have one."""
        has = {
            "input": self.input_gate and not self.coupled,
            "forget": self.forget_gate,
            "candidate": True,
            "output": self.output_gate,
        }
        return tuple(name for name in BLOCKS_STANDARD if has[name])

    @property
    def value_names(self):
        """The values a step has: the gates that exist (the coupled cell's
        `input_gate` is `1 − forget_gate`), the candidate and the states."""
        has = {
            "input_gate": self.input_gate,
            "forget_gate": self.forget_gate,
            "output_gate": self.output_gate,
        }
        return tuple(name for name in GATE_NAMES if has.get(name, True))

    @property
    def gate_names(self):
        """The values that are gates, so lie in [0, 1]."""
        return tuple(n for n in SIGMOID_GATE_NAMES if n in self.value_names)

    @property
    def state_names(self):
        """The states, in the order of the cell's `states` list."""
        if self.full_gate_recurrence:
            return (*STATE_NAMES, PREVIOUS_GATES)
        return STATE_NAMES


def layer_norm(v, gamma, beta):
    """`γ ⊙ (v − mean(v)) / sqrt(var(v) + ε) + β` over the last axis."""
    mean = ops.mean(v, axis=-1, keepdims=True)
    variance = ops.mean(ops.square(v - mean), axis=-1, keepdims=True)
    return gamma * (v - mean) * ops.rsqrt(variance + LAYER_NORM_EPSILON) + beta


def preactivations(step, x_kernel, h_recurrent, bias, norms=None):
    """`z` from the two products: `x·kernel + h·recurrent_kernel + bias`.

    With `step.layer_norm`, each product is normalized over all its blocks
    first, `LN_k(x·kernel) + bias + LN_r(h·recurrent_kernel)`, with `norms`
    a dict holding `kernel_norm_gamma`, `kernel_norm_beta`,
    `recurrent_norm_gamma` and `recurrent_norm_beta`: the sum of
    `input_preactivations` (which does not depend on `h`, so a whole sequence
    can have it at once) and `recurrent_preactivations`.
    """
    if step.layer_norm:
        return input_preactivations(
            step, x_kernel, bias, norms
        ) + recurrent_preactivations(step, h_recurrent, norms)
    z = x_kernel + h_recurrent
    return z if bias is None else z + bias


def input_preactivations(step, x_kernel, bias, norms=None):
    """The part of `z` that does not depend on `h`: `LN_k(x·kernel) + bias`
    with layer normalization, else `x·kernel + bias` (see `preactivations`)."""
    if step.layer_norm:
        x_kernel = layer_norm(
            x_kernel, norms["kernel_norm_gamma"], norms["kernel_norm_beta"]
        )
    return x_kernel if bias is None else x_kernel + bias


def recurrent_preactivations(step, h_recurrent, norms=None):
    """The part of `z` that depends on `h`: `LN_r(h·recurrent_kernel)` with
    layer normalization, else `h·recurrent_kernel` (see `preactivations`)."""
    if step.layer_norm:
        h_recurrent = layer_norm(
            h_recurrent, norms["recurrent_norm_gamma"], norms["recurrent_norm_beta"]
        )
    return h_recurrent


def lstm_step(
    step,
    z,
    c_prev,
    peepholes,
    gates_prev=None,
    gate_recurrent_kernel=None,
    norms=None,
    projection_kernel=None,
    feedback=None,
    cell_input=None,
):
    """Computes one step of the variant `step` from its pre-activations.

    With `a = [i, f, o]` the previous step's gates (FGR only), `σ` the
    recurrent activation, `φ` the activation, a missing gate the constant 1::

        [z_i, z_f, z_o] += a_{t-1} · gate_recurrent_kernel          (FGR)
        f = σ(z_f + p_f ⊙ c_{t-1})
        i = 1 − f (coupled)   or   σ(z_i + p_i ⊙ c_{t-1})
        g = φ(z_c)            (NIAF: g = z_c)
        c_t = f ⊙ c_{t-1} + i ⊙ g [+ cell_input], then LN_s, then clipped
        o = σ(z_o + p_o ⊙ c_t)
        h_t = o ⊙ φ(c_t)      (NOAF: o ⊙ c_t)
        h_t = clip(h_t · projection_kernel)                          (LSTMP)

    A peephole not in `peepholes` drops its term.

    Args:
        step: The `LSTMStep`.
        z: Pre-activations, shape `(batch, len(step.blocks) * units)`.
        c_prev: Previous cell state, shape `(batch, units)`.
        peepholes: Dict `{gate: (units,) vector}` of the peepholes present.
        gates_prev: FGR only: `[i, f, o]` of the previous step,
            `(batch, 3 * units)`.
        gate_recurrent_kernel: FGR only: `(3 * units, 3 * units)`.
        norms: Layer norm only: a dict with `state_norm_gamma` and
            `state_norm_beta` (and the others, see `preactivations`).
        projection_kernel: Projection only: `(units, projection_units)`.
        feedback: FGR only, optional: `gates_prev · gate_recurrent_kernel`
            if the caller has it already (the fast path's backward pass
            computes it for many steps at once).
        cell_input: A term added to the new cell state before layer norm and
            clipping, `(batch, units)`, or `None` (the Depth-Gated LSTM's
            `d_t ⊙ c_t^{l-1}`; see `depth_gated`).

    Returns:
        A `GateValues` tuple; gates the variant lacks are `None`.
    """
    split = ops.split(z, len(step.blocks), axis=-1)
    blocks = dict(zip(step.blocks, split, strict=True))
    if step.full_gate_recurrence:
        if feedback is None:
            feedback = ops.matmul(gates_prev, gate_recurrent_kernel)
        for name, term in zip(PEEPHOLE_GATES, ops.split(feedback, 3, -1), strict=True):
            blocks[name] = blocks[name] + term
    sigma = step.recurrent_activation

    def gate(name, cell_state):
        pre = blocks[name]
        if name in peepholes:
            pre = pre + peepholes[name] * cell_state
        return sigma(pre)

    f = gate("forget", c_prev) if step.forget_gate else None
    i = gate("input", c_prev) if "input" in blocks else None
    if step.coupled:
        i = 1.0 - f
    g = blocks["candidate"]
    if step.input_activation:
        g = step.activation(g)
    if step.coupled and not step.layer_norm and step.cell_clip is None:
        # f ⊙ c_{t-1} + (1 − f) ⊙ g, written with one product fewer.
        c = g + f * (c_prev - g)
    else:
        c = (c_prev if f is None else f * c_prev) + (g if i is None else i * g)
    if cell_input is not None:
        c = c + cell_input
    if step.layer_norm:
        c = layer_norm(c, norms["state_norm_gamma"], norms["state_norm_beta"])
    if step.cell_clip is not None:
        c = ops.clip(c, -step.cell_clip, step.cell_clip)
    o = gate("output", c) if step.output_gate else None
    h = step.activation(c) if step.output_activation else c
    if o is not None:
        h = o * h
    if step.projection_units is not None:
        h = ops.matmul(h, projection_kernel)
        if step.projection_clip is not None:
            h = ops.clip(h, -step.projection_clip, step.projection_clip)
    return GateValues(i, f, o, g, c, h)


def next_states(step, values):
    """The states after a step, from its `GateValues`: `[h, c]`, and with
    full gate recurrence `[h, c, a]`, `a = [i, f, o]` (`step.state_names`)."""
    states = [values.hidden_state, values.cell_state]
    if step.full_gate_recurrence:
        gates = (values.input_gate, values.forget_gate, values.output_gate)
        states.append(ops.concatenate(gates, axis=-1))
    return states
