"""Views of Keras's own recurrent cells through the `InspectableCell` protocol.

Keras's `keras.layers.LSTMCell` and `keras.layers.GRUCell` (inside
`keras.layers.LSTM`, `GRU` or `RNN`) are read through `KerasLSTMCellView` and
`KerasGRUCellView`, which compute their values from the cell's own weights
and activations with this package's equations: our standard LSTM cell and our
GRU cell share Keras's weight layouts exactly. `inspectable(cell)` gives what
inspection reads for any cell: the cell itself, a view, or `None`.
"""

import keras
from keras import ops

from keras_lstm_variants.equations import LSTMStep
from keras_lstm_variants.equations import lstm_step
from keras_lstm_variants.equations import preactivations
from keras_lstm_variants.gru import GRUCell
from keras_lstm_variants.gru import gru_step
from keras_lstm_variants.gru import split_bias
from keras_lstm_variants.value_cells import InspectableCell
from keras_lstm_variants.value_cells import LSTMValues


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
    >>> h = c = np.zeros((2, 3), "float32")
    >>> values = view.gate_values(np.ones((2, 5), "float32"), [h, c])
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
        states = [ops.cast(state, cell.compute_dtype) for state in states]
        z = preactivations(
            self.step,
            ops.matmul(inputs, cell.kernel),
            ops.matmul(states[0], cell.recurrent_kernel),
            cell.bias if cell.use_bias else None,
        )
        return lstm_step(self.step, z, states[1], {})

    def next_states(self, values):
        return [values.hidden_state, values.cell_state]


class KerasGRUCellView(InspectableCell):
    """Reads the values of a `keras.layers.GRUCell` from its weights.

    Our `GRUCell` has Keras's weights (blocks z, r, h; the `(2, 3·units)`
    bias with `reset_after`), so the view runs `gru.gru_step` on the Keras
    cell's own weights and activations, in inference mode (no dropout), and
    changes nothing in the cell. Values: those of our `GRUCell`.

    Args:
        cell: A built `keras.layers.GRUCell` (exactly that class).

    Example:

    >>> cell = keras.layers.GRUCell(3)
    >>> _ = keras.layers.RNN(cell)(np.ones((2, 4, 5)))
    >>> view = KerasGRUCellView(cell)
    >>> h = np.zeros((2, 3), "float32")
    >>> values = view.gate_values(np.ones((2, 5), "float32"), [h])
    >>> view.value_names, tuple(values.update_gate.shape)
    (('update_gate', 'reset_gate', 'candidate', 'hidden_state'), (2, 3))
    """

    value_names = GRUCell.value_names
    gate_names = GRUCell.gate_names
    state_names = GRUCell.state_names

    def __init__(self, cell):
        self.cell = cell
        self.name = cell.name
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
        states = [ops.cast(state, cell.compute_dtype) for state in states]
        input_bias, recurrent_bias = split_bias(
            cell.bias if cell.use_bias else None, cell.reset_after
        )
        x_part = ops.matmul(inputs, cell.kernel)
        if input_bias is not None:
            x_part = x_part + input_bias
        return gru_step(
            x_part,
            states[0],
            cell.recurrent_kernel,
            recurrent_bias,
            cell.reset_after,
            cell.activation,
            cell.recurrent_activation,
        )

    def next_states(self, values):
        return [values.hidden_state]


#: Keras's own cells that inspection can read, and their views. Only these
#: exact classes: a subclass may change the step (its `call`) in ways a view
#: computed from the weights cannot know.
KERAS_CELL_VIEWS = {"LSTMCell": KerasLSTMCellView, "GRUCell": KerasGRUCellView}


def inspectable(cell):
    """The view through which inspection reads `cell`, or `None`.

    Args:
        cell: A recurrent cell.

    Returns:
        The cell itself if it is an `InspectableCell` (every cell of this
        package), a view for Keras's own `LSTMCell` and `GRUCell` (see
        `KERAS_CELL_VIEWS`),
        else `None` (the cell runs, but its values are not read).
    """
    if isinstance(cell, InspectableCell):
        return cell
    for class_name, view in KERAS_CELL_VIEWS.items():
        if type(cell) is getattr(keras.layers, class_name, None):
            return view(cell)
    return None
