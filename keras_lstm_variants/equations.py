"""The LSTM gate equations, in one place.

Every variant in this package runs through `lstm_gates`: the cells call it once
per time step, the whole-sequence fast path calls it inside its loop, and gate
inspection calls it to read the gates out. A reader looking for any gate's
formula finds it here and nowhere else.

Pre-activations `z = x_t · kernel + h_{t-1} · recurrent_kernel + bias` arrive
already fused; they are split along the last axis in the variant's block order:
`i, f, c, o` for the standard and peephole cells (exactly as
`keras.layers.LSTMCell`), `f, c, o` for the coupled cell.
"""

import dataclasses
from typing import NamedTuple

from keras import ops

#: The per-step values of an LSTM cell, in the order of `GateValues`: what
#: gate inspection returns, the export's `gates` signature and the callback
#: write. Another cell family declares its own names (`cell.value_names`).
GATE_NAMES = (
    "input_gate",
    "forget_gate",
    "output_gate",
    "candidate",
    "cell_state",
    "hidden_state",
)

#: The LSTM's values that come out of `recurrent_activation`: the gates proper.
SIGMOID_GATE_NAMES = GATE_NAMES[:3]

#: The states an LSTM cell carries, in the order of its `states` list.
STATE_NAMES = ("hidden_state", "cell_state")

#: Gates that can read the cell state through a peephole.
PEEPHOLE_GATES = ("input", "forget", "output")

#: Block order of the fused pre-activations, per structure.
BLOCKS_STANDARD = ("input", "forget", "candidate", "output")
BLOCKS_COUPLED = ("forget", "candidate", "output")


class GateValues(NamedTuple):
    """All values of one LSTM step, each of shape `(batch, units)`."""

    input_gate: object
    forget_gate: object
    output_gate: object
    candidate: object
    cell_state: object
    hidden_state: object


def block_order(coupled):
    """Names of the blocks of `z`, in the order they are stacked."""
    return BLOCKS_COUPLED if coupled else BLOCKS_STANDARD


@dataclasses.dataclass(frozen=True)
class LSTMStep:
    """What one step of an LSTM cell computes, as data.

    The cells declare their step with it and run it; the TensorFlow fast path
    reads the same declaration, so both compute `lstm_gates` with the same
    structure and activations.

    Attributes:
        coupled: Whether the input gate is `1 − forget_gate` (blocks `f, c,
            o`) instead of a gate of its own (blocks `i, f, c, o`).
        peephole_gates: The gates that read the cell state, a tuple in the
            order of `PEEPHOLE_GATES`.
        activation: `φ`.
        recurrent_activation: `σ`.
    """

    coupled: bool
    peephole_gates: tuple
    activation: object
    recurrent_activation: object

    @property
    def blocks(self):
        """Names of the blocks of `z`, in order."""
        return block_order(self.coupled)

    def __call__(self, z, c_prev, peepholes):
        """Runs `lstm_gates` on `z` with `peepholes` (`{gate: vector}`)."""
        return lstm_gates(
            z,
            c_prev,
            coupled=self.coupled,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            input_peephole=peepholes.get("input"),
            forget_peephole=peepholes.get("forget"),
            output_peephole=peepholes.get("output"),
        )


def lstm_gates(
    z,
    c_prev,
    *,
    coupled,
    activation,
    recurrent_activation,
    input_peephole=None,
    forget_peephole=None,
    output_peephole=None,
):
    """Computes one LSTM step from its fused pre-activations.

    Standard and peephole (block order `i, f, c, o`)::

        i = σ(z_i [+ p_i ⊙ c_{t-1}])      f = σ(z_f [+ p_f ⊙ c_{t-1}])
        g = φ(z_c)                         c_t = f ⊙ c_{t-1} + i ⊙ g
        o = σ(z_o [+ p_o ⊙ c_t])           h_t = o ⊙ φ(c_t)

    Coupled input and forget gate (block order `f, c, o`): the same, with
    `i = 1 − f`, so `c_t = f ⊙ c_{t-1} + (1 − f) ⊙ g`.

    A peephole left at `None` drops its term. The input and forget peepholes
    read the previous cell state, the output peephole the new one.

    Args:
        z: Pre-activations, shape `(batch, blocks * units)`.
        c_prev: Previous cell state, shape `(batch, units)`.
        coupled: Whether the input gate is the complement of the forget gate.
        activation: `φ`, applied to the candidate and to the new cell state.
        recurrent_activation: `σ`, applied to the gates.
        input_peephole: `p_i`, shape `(units,)`, or `None`.
        forget_peephole: `p_f`, shape `(units,)`, or `None`.
        output_peephole: `p_o`, shape `(units,)`, or `None`.

    Returns:
        A `GateValues` tuple.
    """
    if coupled:
        z_f, z_c, z_o = ops.split(z, 3, axis=-1)
    else:
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
    if forget_peephole is not None:
        z_f = z_f + forget_peephole * c_prev
    f = recurrent_activation(z_f)
    g = activation(z_c)
    if coupled:
        i = 1.0 - f
        # f ⊙ c_{t-1} + (1 − f) ⊙ g, written with one product fewer.
        c = g + f * (c_prev - g)
    else:
        if input_peephole is not None:
            z_i = z_i + input_peephole * c_prev
        i = recurrent_activation(z_i)
        c = f * c_prev + i * g
    if output_peephole is not None:
        z_o = z_o + output_peephole * c
    o = recurrent_activation(z_o)
    h = o * activation(c)
    return GateValues(i, f, o, g, c, h)
