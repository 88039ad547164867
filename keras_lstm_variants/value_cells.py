"""What a recurrent cell offers gate inspection, and views of Keras's own cells.

Gate inspection (`gate_activations`), the `GateHistograms` callback, the
heatmap and the SavedModel `gates` signature read a cell only through the
protocol of `InspectableCell`. Each cell family brings its own vocabulary of
values (an LSTM's gates and states, a GRU's update and reset gates, a
Clockwork RNN's active modules, ...): keys, signature keys, TensorBoard tags
and heatmap bands all come from the cell, never from a global list.

Keras's own `keras.layers.LSTMCell` (inside `keras.layers.LSTM` or `RNN`) is
read through `KerasLSTMCellView`, which computes its values from its weights
with this package's equations (the standard cell shares Keras's weight layout
exactly). `inspectable(cell)` gives the view to use for any cell, or `None`.
"""

import keras
from keras import ops

from keras_lstm_variants.equations import EQUATION_ORDER
from keras_lstm_variants.equations import LSTMStep
from keras_lstm_variants.equations import lstm_step
from keras_lstm_variants.equations import preactivations


class InspectableCell:
    """The protocol of a recurrent cell whose values can be inspected.

    A mixin for `keras.layers.Layer` cells (list it after the layer class).
    A subclass provides:

    * `value_names`: the names of one step's values, in the order
      `gate_activations` returns them; they are also the last part of the
      `gates` signature keys and of the TensorBoard tags, so use ASCII
      letters, digits and `_` only.
    * `gate_names`: the values that lie in [0, 1] (the gates): the heatmap's
      bands, and the values that get saturation statistics.
    * `state_names`: one name per entry of the flattened `state_size`.
    * `value_size(name)`: the width of the value `name` of one step.
    * `gate_values(inputs, states, training=False)`: one step's values, an
      object with one attribute per value name, computed by the same code
      as `call`.
    * `next_states(values)`: the new states (the structure `call` returns).

    and may override `output_of(values)` (default: `values.hidden_state`)
    and `tag_position(name)` (default: the place of `name` in
    `value_names`, counted from 1). `call(inputs, states)` must return
    `output_of(v), next_states(v)` with `v = gate_values(inputs, states)`.
    """

    value_names = ()
    gate_names = ()
    state_names = ()

    def output_of(self, values):
        """The cell's output at a step, from that step's values."""
        return values.hidden_state

    def tag_position(self, name):
        """The number in front of the value `name` in its TensorBoard tag."""
        return self.value_names.index(name) + 1


class LSTMValues(InspectableCell):
    """The LSTM family's vocabulary: tags numbered in equation order
    (`1_input_gate`, `2_forget_gate`, `3_candidate`, `4_cell_state`,
    `5_output_gate`, `6_hidden_state`), also where a variant lacks a gate."""

    def tag_position(self, name):
        return EQUATION_ORDER.index(name) + 1


class KerasLSTMCellView(LSTMValues):
    """Reads the values of a `keras.layers.LSTMCell` from its weights.

    Keras's cell computes `i, f, c, o` from one fused product in that block
    order, exactly as the standard cell of this package; the view runs this
    package's equations on the Keras cell's own weights and activations, in
    inference mode (no dropout), and changes nothing in the cell.

    Args:
        cell: A built `keras.layers.LSTMCell` (exactly that class: a subclass
            may compute something else, see `inspectable`).

    Example:

    >>> cell = keras.layers.LSTMCell(3)
    >>> _ = keras.layers.RNN(cell)(np.ones((2, 4, 5)))
    >>> view = KerasLSTMCellView(cell)
    >>> values = view.gate_values(np.ones((2, 5)), [np.zeros((2, 3))] * 2)
    >>> tuple(values.forget_gate.shape)
    (2, 3)
    """

    def __init__(self, cell):
        self.cell = cell
        self.name = cell.name
        self.step = LSTMStep(
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
        )
        self.value_names = self.step.value_names
        self.gate_names = self.step.gate_names
        self.state_names = self.step.state_names
        self.state_size = cell.state_size

    @property
    def input_dim(self):
        """The width of the cell's inputs (known once it is built)."""
        return int(self.cell.kernel.shape[0]) if self.cell.built else None

    def value_size(self, name):
        return self.cell.units

    def gate_values(self, inputs, states, training=False):
        cell = self.cell
        inputs = ops.cast(inputs, cell.compute_dtype)
        z = preactivations(
            self.step,
            ops.matmul(inputs, cell.kernel),
            ops.matmul(states[0], cell.recurrent_kernel),
            cell.bias if cell.use_bias else None,
        )
        return lstm_step(self.step, z, states[1], {})

    def next_states(self, values):
        return [values.hidden_state, values.cell_state]


#: Keras's own cells that inspection can read, and their views. Only these
#: exact classes: a subclass may change the step (its `call`) in ways a view
#: computed from the weights cannot know.
KERAS_CELL_VIEWS = {"LSTMCell": KerasLSTMCellView}


def inspectable(cell):
    """The view through which inspection reads `cell`, or `None`.

    Args:
        cell: A recurrent cell.

    Returns:
        The cell itself if it is an `InspectableCell` (every cell of this
        package), a view for Keras's own `LSTMCell` (see `KERAS_CELL_VIEWS`),
        else `None` (the cell runs, but its values are not read).
    """
    if isinstance(cell, InspectableCell):
        return cell
    for class_name, view in KERAS_CELL_VIEWS.items():
        if type(cell) is getattr(keras.layers, class_name, None):
            return view(cell)
    return None
