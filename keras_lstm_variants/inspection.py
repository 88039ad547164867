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
* `gate_activations(model, inputs, batch_size=None)` checks the inputs, runs
  the model in inference mode (in batches) and returns NumPy arrays.

Helpers shared with the `GateHistograms` callback: `require_variant_rnn_layers`
(raises if there are none), `check_model_inputs` (inputs against the model's
input shapes) and `record_call` (one inference call under `record_gates`).

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
import numbers
import operator

import keras
import numpy as np
from keras import ops
from keras.src import backend as keras_backend

from keras_lstm_variants.cells import LSTMVariantCell
from keras_lstm_variants.equations import GATE_NAMES


def rnn_cells(rnn_layer):
    """The cells an RNN layer runs: those of its stack, or its one cell."""
    cell = rnn_layer.cell
    if isinstance(cell, keras.layers.StackedRNNCells):
        return list(cell.cells)
    return [cell]


def variant_cells(rnn_layer):
    """The `(name suffix, cell)` pairs of our cells inside one RNN layer.

    The suffix is `""` for a layer's single cell and `"/<cell name>"` for a
    cell in a stack; appended to the layer's name from `variant_rnn_layers` it
    names that cell's gates.
    """
    stacked = isinstance(rnn_layer.cell, keras.layers.StackedRNNCells)
    return [
        (f"/{c.name}" if stacked else "", c)
        for c in rnn_cells(rnn_layer)
        if isinstance(c, LSTMVariantCell)
    ]


@contextlib.contextmanager
def replaced_calls(replacements):
    """Temporarily replaces the `call` of some layers.

    Args:
        replacements: `(layer, make_call)` pairs; `make_call(original)`
            returns the function to use as the layer's `call` while the
            context is open.
    """
    originals = []
    try:
        for layer, make_call in replacements:
            originals.append((layer, layer.__dict__.get("call")))
            layer.call = make_call(layer.call)
        yield
    finally:
        for layer, original in reversed(originals):
            if original is None:
                del layer.call
            else:
                layer.call = original


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
            if variant_cells(layer):
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


def require_variant_rnn_layers(model, argument="model"):
    """Like `variant_rnn_layers`, but raises if there are none.

    Args:
        model: A Keras model or layer.
        argument: The argument name to use in the error message.

    Returns:
        The non-empty list of `variant_rnn_layers(model)`.

    Raises:
        ValueError: If the model holds none of our cells.
    """
    layers = variant_rnn_layers(model)
    if not layers:
        raise ValueError(
            f"Argument `{argument}` ({type(model).__name__} "
            f"'{getattr(model, 'name', model)}') has no layer that runs a "
            "keras_lstm_variants cell; expected at least one StandardLSTM, "
            "PeepholeLSTM or CoupledLSTM layer, or a keras.layers.RNN (possibly "
            "inside Bidirectional) over one of their cells."
        )
    return layers


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
    cells = rnn_cells(rnn_layer)
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
    ours = variant_cells(rnn_layer)
    width = len(GATE_NAMES) * sum(c.units for _, c in ours)
    # The loop's first state is the previous step's gate values, the loop's
    # output: JAX's masked loop repeats `states[0]` at a masked step, where
    # the others repeat the previous output; this way they agree.
    no_gates = ops.zeros((ops.shape(sequences)[0], width), cell.compute_dtype)

    def step(inputs, loop_states):
        _, states = loop_states
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
        gate_outputs = ops.concatenate(gate_outputs, axis=-1)
        return gate_outputs, [gate_outputs, new_states if stacked else new_states[0]]

    _, outputs, _ = keras_backend.rnn(
        step,
        sequences,
        [no_gates, per_cell_states if stacked else per_cell_states[0]],
        go_backwards=rnn_layer.go_backwards,
        mask=mask,
        unroll=rnn_layer.unroll,
        input_length=sequences.shape[1],
        zero_output_for_mask=rnn_layer.zero_output_for_mask,
        return_all_outputs=True,
    )
    result, start = {}, 0
    for suffix, c in ours:
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
    layers = require_variant_rnn_layers(model)
    recorded = {}

    def wrap(name, layer, reverse_time):
        def make_call(original):
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

        return layer, make_call

    with replaced_calls([wrap(*found) for found in layers]):
        yield recorded


def expected_input_shapes(model):
    """The input shapes `model` expects, or `None` where they are not known.

    Args:
        model: A Keras model or layer.

    Returns:
        A list of shape tuples (one per model input, `None` for free axes), or
        `None` if the model does not declare its inputs (a subclassed model
        that was never built). A single RNN layer expects
        `(batch, timesteps, features)`, with `features` known once built.
    """
    if isinstance(model, keras.layers.RNN) and not isinstance(model, keras.Model):
        features = None
        for _, cell in variant_cells(model):
            features = cell.input_dim
            break
        return [(None, None, features)]
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    return [tuple(t.shape) for t in keras.tree.flatten(inputs)]


def check_model_inputs(model, inputs, argument="inputs"):
    """Checks that `inputs` fit `model`, and returns them as NumPy arrays.

    Args:
        model: A Keras model or layer.
        inputs: An array or tensor, or a list/dict of them for a model with
            several inputs.
        argument: The argument name to use in error messages.

    Returns:
        `inputs` with every leaf converted to a NumPy array (same structure).

    Raises:
        ValueError: If the number of inputs, a rank, a fixed dimension or the
            batch sizes do not fit, naming the shape the model expects.
    """
    if inputs is None:
        raise ValueError(f"Argument `{argument}` must be an array; received None.")
    try:
        arrays = keras.tree.map_structure(ops.convert_to_numpy, inputs)
    except Exception as error:  # any backend's conversion error
        raise ValueError(
            f"Argument `{argument}` must be an array or tensor (or a list or "
            f"dict of them); received {type(inputs).__name__}: {error}"
        ) from error
    leaves = keras.tree.flatten(arrays)
    expected = expected_input_shapes(model)
    name = f"{type(model).__name__} '{model.name}'"
    if expected is not None and len(leaves) != len(expected):
        raise ValueError(
            f"Argument `{argument}` holds {len(leaves)} array(s) but {name} has "
            f"{len(expected)} input(s), of shapes {expected}."
        )
    for k, array in enumerate(leaves):
        if array.dtype.kind not in "biuf":
            raise ValueError(
                f"Argument `{argument}` must hold numbers; received an array "
                f"of dtype {array.dtype}."
            )
        if expected is None:
            continue
        want = expected[k]
        fits = array.ndim == len(want) and all(
            w is None or w == a for w, a in zip(want[1:], array.shape[1:], strict=True)
        )
        if not fits:
            which = "" if len(expected) == 1 else f" (input {k})"
            raise ValueError(
                f"Argument `{argument}`{which} has shape {array.shape}, but "
                f"{name} expects inputs of shape {want} (None: any size)."
            )
    batch_sizes = {array.shape[0] if array.ndim else None for array in leaves}
    if len(batch_sizes) != 1 or not all(batch_sizes):
        raise ValueError(
            f"Argument `{argument}` must hold at least one sequence, with the "
            "same batch size (first axis) in every array; received shapes "
            f"{[a.shape for a in leaves]}."
        )
    return arrays


def record_call(model, inputs):
    """Calls `model` once in inference mode and returns the recorded gates.

    Backend-neutral; call it eagerly or inside a traced function (the
    `GateHistograms` callback runs it inside a `tf.function`).

    Args:
        model: A Keras model or layer holding our cells.
        inputs: Inputs the model accepts.

    Returns:
        `{layer name: {gate name: tensor (batch, time, units)}}`.
    """
    with record_gates(model) as recorded:
        model(inputs, training=False)
    return dict(recorded)


def gate_activations(model, inputs, batch_size=None):
    """Returns every gate of every time step, for each of our layers.

    Runs `model` in inference mode (no dropout) on `inputs` and reads, for
    every layer that runs one of our cells (our three layers, a
    `keras.layers.RNN` over one of our cells, each of our cells in a
    `StackedRNNCells`, both directions of a `Bidirectional`, also in nested
    models), the values the cell computes at each step. They come from the
    cells' own gate core, so `hidden_state` equals the layer's output sequence
    and `cell_state[t] = forget_gate[t] * cell_state[t-1] + input_gate[t] *
    candidate[t]`. For `CoupledLSTMCell`, `input_gate` is `1 - forget_gate`.

    Layer names are unique and stable: the layer's name, prefixed by the
    names of the nested models and `Bidirectional` wrappers around it
    (`"bidirectional/forward_coupled_lstm"`), and followed by the cell's name
    for a cell in a stack (`"rnn/peephole_lstm_cell"`).

    Masked steps (from `Masking` or `Embedding(mask_zero=True)`): the states
    are carried over unchanged, as `keras.layers.RNN` does, and every value
    (gates included) at a masked step repeats the last unmasked step's value,
    or zeros before the first unmasked step. With `zero_output_for_mask=True`
    masked steps hold zeros.

    Time order: that of the layer's output sequence. A layer with
    `go_backwards=True` on its own gives its values in processing order
    (reversed, like its output); the backward layer of a `Bidirectional` gives
    them in input order.

    Args:
        model: A Keras model, or one of our RNN layers.
        inputs: Inputs the model accepts: an array `(batch, timesteps,
            features)` for a single-input model, or a list/dict of arrays.
        batch_size: Number of sequences per model call, or `None` (default)
            for all at once. The results are concatenated along the batch
            axis.

    Returns:
        `{layer name: {gate name: NumPy array (batch, time, units)}}`, with
        the gate names `input_gate`, `forget_gate`, `output_gate`,
        `candidate`, `cell_state` and `hidden_state`.

    Raises:
        ValueError: If the model holds none of our cells, if `inputs` do not
            fit the model's inputs, or if `batch_size` is not a positive
            integer.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((20, 3)),
    ...     PeepholeLSTM(8, return_sequences=True),
    ...     keras.layers.Dense(1),
    ... ])
    >>> gates = gate_activations(model, np.random.rand(5, 20, 3))
    >>> gates["peephole_lstm"]["forget_gate"].shape
    (5, 20, 8)
    """
    require_variant_rnn_layers(model)
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size <= 0
    ):
        raise ValueError(
            "Argument `batch_size` must be a positive integer or None; "
            f"received batch_size={batch_size!r}."
        )
    arrays = check_model_inputs(model, inputs)
    total = keras.tree.flatten(arrays)[0].shape[0]
    step = total if batch_size is None else int(batch_size)
    chunks = []
    for start in range(0, total, step):
        batch = keras.tree.map_structure(
            operator.itemgetter(slice(start, start + step)), arrays
        )
        recorded = record_call(model, batch)
        chunks.append(
            {
                name: {gate: ops.convert_to_numpy(v) for gate, v in gates.items()}
                for name, gates in recorded.items()
            }
        )
    return {
        name: {
            gate: np.concatenate([chunk[name][gate] for chunk in chunks], axis=0)
            for gate in GATE_NAMES
        }
        for name in chunks[0]
    }
