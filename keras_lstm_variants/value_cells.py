"""What a recurrent cell offers gate inspection: the `InspectableCell` protocol.

Gate inspection (`gate_activations`), the `GateHistograms` callback, the
heatmap and the SavedModel `gates` signature read a cell only through this
protocol. Each cell family brings its own vocabulary of values (an LSTM's
gates and states, a GRU's update and reset gates, a Clockwork RNN's active
modules, ...): keys, signature keys, TensorBoard tags and heatmap bands all
come from the cell, never from a global list. Keras's own cells are read
through views that offer the same protocol (`keras_cell_views`).
"""

from keras_lstm_variants.equations import EQUATION_ORDER


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

    Example:

    >>> from keras_lstm_variants.sites import summary_tag
    >>> cell = GRUCell(4)
    >>> isinstance(cell, InspectableCell), cell.gate_names
    (True, ('update_gate', 'reset_gate'))
    >>> summary_tag("gru", "candidate", cell=cell)
    'gates.gru/3_candidate'
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
