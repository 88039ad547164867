"""Gate inspection: read every gate of every time step out of a model.

The gate values live inside the RNN loop, where nothing outside can fetch
them. This module re-runs the loop of each of our layers on exactly the inputs,
mask and initial state that the layer received, with a step that returns the
whole `GateValues` tuple of the shared gate core instead of only `h`. So the
values are those the cells compute, by construction.

Three pieces, from low to high level:

* `variant_rnn_layers(model)` finds the layers that run our cells, with
  stable, unique names.
* `record_gates(model)` is a context manager: while it is open, each call of
  the model (eager or traced, so also inside a `tf.function` or a SavedModel
  signature) fills a dict `{layer name: {gate name: tensor}}`.
* `gate_activations(model, inputs)` runs the model in inference mode and
  returns NumPy arrays.

Masked steps: the inspection loop runs with the layer's own masking rule, as
`keras.layers.RNN` does: at a masked step the states are carried over
unchanged, and every returned value (gates, `cell_state`, `hidden_state`)
repeats the last unmasked step's value (zeros before the first unmasked step).
If the layer has `zero_output_for_mask=True`, masked steps hold zeros instead.
So `hidden_state` always equals the layer's output sequence.

Time order: values are in the order of the layer's output sequence. A layer
with `go_backwards=True` on its own returns them in processing (reversed) order,
like its `return_sequences` output; inside `Bidirectional` the backward layer's
values are put back in input order, like the `Bidirectional` output.
"""

import contextlib

import keras
from keras import ops
from keras.src import backend as keras_backend

from keras_lstm_variants.cells import LSTMVariantCell
from keras_lstm_variants.equations import GATE_NAMES


def _variant_cells(rnn_layer):
    """The (name suffix, cell) pairs of our cells inside one RNN layer."""
    cell = rnn_layer.cell
    if isinstance(cell, keras.layers.StackedRNNCells):
        return [
            (f"/{c.name}", c) for c in cell.cells if isinstance(c, LSTMVariantCell)
        ]
    if isinstance(cell, LSTMVariantCell):
        return [("", cell)]
    return []


def variant_rnn_layers(model):
    """Lists the RNN layers of `model` that run at least one of our cells.

    Looks inside nested models and both directions of `Bidirectional`.

    Args:
        model: A Keras model or layer.

    Returns:
        A list of `(name, rnn_layer, reverse_time)` tuples. `name` is unique
        and stable: the layer's name, prefixed by the names of the nested
        models and `Bidirectional` wrappers that hold it. `reverse_time` is
        `True` for the backward layer of a `Bidirectional`.
    """
    found = []

    def visit(layer, prefix, reverse_time=False):
        if isinstance(layer, keras.layers.Bidirectional):
            path = f"{prefix}{layer.name}/"
            visit(layer.forward_layer, path)
            visit(layer.backward_layer, path, reverse_time=True)
        elif isinstance(layer, keras.layers.RNN):
            if _variant_cells(layer):
                found.append((f"{prefix}{layer.name}", layer, reverse_time))
        elif isinstance(layer, keras.Model):
            for sub in layer.layers:
                visit(sub, f"{prefix}{layer.name}/")

    if isinstance(model, keras.Model):
        for layer in model.layers:
            visit(layer, "")
    else:
        visit(model, "")
    return found


def gate_sequences(rnn_layer, sequences, initial_state=None, mask=None):
    """Runs one RNN layer's loop and returns every gate at every step.

    Inference mode: no dropout. Uses the layer's own `go_backwards`,
    `zero_output_for_mask` and, if `stateful`, its current states.

    Args:
        rnn_layer: A built `keras.layers.RNN` (or one of our layers) whose cell
            is one of our cells or a `StackedRNNCells` holding some.
        sequences: Input tensor `(batch, time, features)`.
        initial_state: Initial states as passed to the layer, or `None`.
        mask: Boolean mask `(batch, time)`, or `None`.

    Returns:
        `{name suffix: {gate name: tensor (batch, time, units)}}`, with the
        suffix `""` for a single cell and `"/<cell name>"` for each of our
        cells in a stack.
    """
    cell = rnn_layer.cell
    stacked = isinstance(cell, keras.layers.StackedRNNCells)
    cells = cell.cells if stacked else [cell]
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    if initial_state is None:
        if rnn_layer.stateful and rnn_layer.states is not None:
            initial_state = rnn_layer.states
        else:
            initial_state = rnn_layer.get_initial_state(ops.shape(sequences)[0])
    if not isinstance(initial_state, (list, tuple)):
        initial_state = [initial_state]
    initial_state = keras.tree.map_structure(
        lambda s: ops.convert_to_tensor(s, dtype=cell.compute_dtype),
        list(initial_state),
    )
    per_cell_states = initial_state if stacked else [initial_state]

    def step(inputs, states):
        states = states if stacked else [states]
        new_states, gate_outputs = [], []
        for c, s in zip(cells, states, strict=True):
            s = list(s) if isinstance(s, (list, tuple)) else [s]
            if isinstance(c, LSTMVariantCell):
                gates = c.gate_values(inputs, s, training=False)
                inputs = gates.hidden_state
                new_states.append([gates.hidden_state, gates.cell_state])
                gate_outputs.extend(gates)
            else:
                inputs, s = c(inputs, s)
                new_states.append(list(s) if isinstance(s, (list, tuple)) else [s])
        return ops.concatenate(gate_outputs, axis=-1), (
            new_states if stacked else new_states[0]
        )

    _, outputs, _ = keras_backend.rnn(
        step,
        sequences,
        per_cell_states if stacked else per_cell_states[0],
        go_backwards=rnn_layer.go_backwards,
        mask=mask,
        unroll=rnn_layer.unroll,
        input_length=sequences.shape[1],
        zero_output_for_mask=rnn_layer.zero_output_for_mask,
        return_all_outputs=True,
    )
    result, start = {}, 0
    for suffix, c in _variant_cells(rnn_layer):
        width = c.units
        result[suffix] = {}
        for gate in GATE_NAMES:
            result[suffix][gate] = outputs[..., start : start + width]
            start += width
    return result


@contextlib.contextmanager
def record_gates(model):
    """Records the gates of every one of our layers while `model` runs.

    While open, each call of one of the model's layers that run our cells also
    runs `gate_sequences` on the same inputs, mask and initial state (before
    the layer updates any stateful states). Works eagerly and while tracing.

    Args:
        model: A Keras model (or a single RNN layer).

    Yields:
        A dict that fills up as the model runs:
        `{layer name: {gate name: tensor (batch, time, units)}}`; see
        `variant_rnn_layers` for the names.

    Raises:
        ValueError: If the model holds none of our cells.
    """
    layers = variant_rnn_layers(model)
    if not layers:
        raise ValueError(
            f"Model '{model.name}' has no layer that runs a keras_lstm_variants "
            "cell; expected at least one StandardLSTM, PeepholeLSTM or "
            "CoupledLSTM layer, or a keras.layers.RNN over one of their cells."
        )
    recorded = {}

    def wrap(name, layer, reverse_time, original):
        def call(sequences, initial_state=None, mask=None, training=False, **kw):
            for suffix, gates in gate_sequences(
                layer, sequences, initial_state, mask
            ).items():
                if reverse_time:
                    gates = {k: ops.flip(v, axis=1) for k, v in gates.items()}
                recorded[f"{name}{suffix}"] = gates
            return original(
                sequences,
                initial_state=initial_state,
                mask=mask,
                training=training,
                **kw,
            )

        return call

    originals = []
    try:
        for name, layer, reverse_time in layers:
            originals.append((layer, layer.__dict__.get("call")))
            layer.call = wrap(name, layer, reverse_time, layer.call)
        yield recorded
    finally:
        for layer, original in originals:
            if original is None:
                del layer.call
            else:
                layer.call = original
