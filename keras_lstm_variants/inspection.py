"""Gate inspection: read every value of every time step out of a model.

The gate values live inside the RNN loop, where nothing outside can fetch
them. While a model runs under `record_gates`, each call of one of our RNN
layers also runs a public `keras.layers.RNN` over a small wrapper cell,
`ValueCell`, whose output at each step is every value of the layer's cells
(`cell.value_names`: gates, candidate, states), on exactly the inputs, mask
and initial states the layer received. Keras runs the loop, the masking and
`go_backwards`; the values are those the cells compute, by construction.

* `record_gates(model, sites)` is a context manager: while it is open, each
  call of the model from the same thread (eager or traced) fills a dict
  `{cell name: {value name: tensor}}`. It changes nothing in the model: the
  calls are intercepted for this thread only (`sites.intercepted`), and a
  stateful layer runs as its stateless twin, so its states are read, never
  advanced.
* `gate_activations(model, inputs, batch_size=None)` checks the inputs, runs
  the model in inference mode (in batches) and returns NumPy arrays.

Masked steps: as `keras.layers.RNN` treats its outputs, every value at a
masked step repeats the last unmasked step's value (zeros before the first
unmasked step), or is zero with `zero_output_for_mask=True`; the states carry
over. So `hidden_state` always equals the layer's output sequence.

Time order: that of the layer's output sequence. A layer with
`go_backwards=True` on its own returns them in processing (reversed) order,
like its `return_sequences` output; inside `Bidirectional` the backward layer's
values are put back in input order, like the `Bidirectional` output.
"""

import collections.abc
import contextlib
import numbers
import operator

import keras
import numpy as np
from keras import ops
from keras import tree

from keras_lstm_variants import sites as sites_lib


class ValueCell(keras.layers.Layer):
    """An RNN cell that runs an RNN layer's cells and outputs all their values.

    Its output at each step concatenates, for each of our cells in the layer
    (in stack order), the values named by `cell.value_names`. Its states are
    the previous output followed by every state of every cell of the layer:
    a masked step then repeats the previous values on every backend.

    Args:
        site: The `sites.RNNSite` whose cells to run.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: One step's inputs, `(batch, features)`.
        states: `[previous values, *the cells' states]`.

    Example:

    >>> layer = PeepholeLSTM(3)
    >>> _ = layer(np.ones((2, 4, 5)))
    >>> site = sites_lib.find_sites(layer)[0]
    >>> rnn = keras.layers.RNN(ValueCell(site), return_sequences=True)
    >>> states = [np.zeros((2, 18)), np.zeros((2, 3)), np.zeros((2, 3))]
    >>> tuple(rnn(np.ones((2, 4, 5)), initial_state=states).shape)
    (2, 4, 18)
    """

    def __init__(self, site, **kwargs):
        super().__init__(**kwargs)
        self.site = site
        self.widths = [
            sum(c.cell.value_size(name) for name in c.cell.value_names)
            for c in site.ours
        ]
        self.cell_state_counts = [len(tree.flatten(c.state_size)) for c in site.cells]
        self.output_size = sum(self.widths)
        self.state_size = [
            self.output_size,
            *(s for c in site.cells for s in tree.flatten(c.state_size)),
        ]

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, states):
        flat = list(states[1:])
        values, new_states = [], []
        views = {c.index: c.cell for c in self.site.ours}
        for k, (cell, count) in enumerate(
            zip(self.site.cells, self.cell_state_counts, strict=True)
        ):
            cell_states, flat = flat[:count], flat[count:]
            view = views.get(k)
            if view is not None:
                step = view.gate_values(inputs, cell_states, training=False)
                values.extend(getattr(step, name) for name in view.value_names)
                cell_states = view.next_states(step)
                inputs = view.output_of(step)
            else:
                inputs, cell_states = cell(inputs, cell_states)
                cell_states = tree.flatten(cell_states)
            new_states.extend(cell_states)
        output = ops.concatenate(values, axis=-1)
        return output, [output, *new_states]


def value_sequences(site, sequences, initial_state, mask=None):
    """Runs one RNN site's loop and returns every value at every step.

    Inference mode (no dropout), with the layer's own `go_backwards`,
    `zero_output_for_mask` and `unroll`.

    Args:
        site: A `sites.RNNSite` with at least one of our cells.
        sequences: Input tensor `(batch, time, features)`.
        initial_state: The layer's initial states (its state structure).
        mask: Boolean mask `(batch, time)`, or `None`.

    Returns:
        `{cell name: {value name: tensor (batch, time, units)}}` in the
        layer's output order (input order for a `Bidirectional`'s backward
        half).
    """
    layer = site.layer
    if tree.is_nested(mask):
        mask = tree.flatten(mask)[0]
    cell = ValueCell(site, dtype=layer.dtype_policy)
    rnn = keras.layers.RNN(
        cell,
        return_sequences=True,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
        unroll=layer.unroll,
        dtype=layer.dtype_policy,
    )
    first = ops.zeros((ops.shape(sequences)[0], cell.output_size), cell.compute_dtype)
    states = [first, *tree.flatten(initial_state)]
    outputs = rnn(sequences, initial_state=states, mask=mask)
    if site.reverse_time:
        outputs = ops.flip(outputs, axis=1)
    result, start = {}, 0
    for c in site.ours:
        result[c.name] = {}
        for name in c.cell.value_names:
            width = c.cell.value_size(name)
            result[c.name][name] = outputs[..., start : start + width]
            start += width
    return result


def _starting_states(site, sequences, initial_state, stateful_start):
    """The states a recorded call starts from, without changing the layer."""
    layer = site.layer
    if initial_state is not None:
        return initial_state
    if layer.stateful and isinstance(stateful_start, dict):
        return stateful_start[site.name]
    batch = ops.shape(sequences)[0]
    if not (layer.stateful and stateful_start == "current" and layer.states):
        return layer.get_initial_state(batch)
    states = tree.map_structure(lambda v: v.value, layer.states)
    state_batch = tree.flatten(states)[0].shape[0]
    if isinstance(batch, int) and state_batch != batch:
        raise ValueError(
            f"The stateful layer '{site.name}' holds states for batches of "
            f"{state_batch} sequences, but the inputs hold {batch}: inspection "
            "starts a stateful layer from its current states, so pass batches "
            f"of {state_batch} (e.g. `batch_size={state_batch}`)."
        )
    return states


@contextlib.contextmanager
def record_gates(model, sites=None, stateful_start="current"):
    """Records every value of every one of our cells while `model` runs.

    Only calls from the thread that opened the context are recorded; the
    model itself is left as it was (see the module docstring).

    Args:
        model: A Keras model (or a single RNN layer).
        sites: The model's `sites.find_sites(model)`, if already at hand.
        stateful_start: Where a stateful layer called without
            `initial_state` starts: `"current"` (its current states, read
            only), `"zeros"` (a fresh sequence), or a dict `{site name:
            initial states}`.

    Yields:
        A dict that fills up as the model runs:
        `{cell name: {value name: tensor (batch, time, units)}}`.

    Raises:
        ValueError: If the model holds none of our cells.
    """
    if sites is None:
        sites = sites_lib.find_sites(model)
    sites_lib.require_ours(model, sites)
    recorded = {}

    def handler(site):
        def handle(
            original, sequences, initial_state=None, mask=None, training=False, **kw
        ):
            start = _starting_states(site, sequences, initial_state, stateful_start)
            if site.ours:
                recorded.update(value_sequences(site, sequences, start, mask))
            if not site.layer.stateful:
                return original(
                    sequences,
                    initial_state=initial_state,
                    mask=mask,
                    training=training,
                    **kw,
                )
            result, _ = sites_lib.run_stateless(
                site.layer, sequences, start, mask, training
            )
            return result

        return handle

    # Our layers are recorded; every stateful RNN layer is read, not advanced.
    handlers = {
        site: handler(site) for site in sites if site.ours or site.layer.stateful
    }
    with sites_lib.intercepted(handlers):
        yield recorded


def expected_input_shapes(model, sites):
    """The input shapes `model` expects, or `None` where they are not known.

    Args:
        model: A Keras model or layer.
        sites: `sites.find_sites(model)`.

    Returns:
        A list of shape tuples (one per model input, `None` for free axes), or
        `None` if the model does not declare its inputs (a subclassed model
        that was never built). A single RNN layer expects
        `(batch, timesteps, features)`, with `features` known once built.
    """
    if isinstance(model, keras.layers.RNN) and not isinstance(model, keras.Model):
        ours = sites_lib.ours(sites)
        features = getattr(ours[0].ours[0].cell, "input_dim", None) if ours else None
        return [(None, None, features)]
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    return [tuple(t.shape) for t in tree.flatten(inputs)]


def _is_stream(inputs):
    """Whether `inputs` is a dataset or an iterator of batches, not arrays."""
    if isinstance(inputs, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    if hasattr(inputs, "shape") and hasattr(inputs, "dtype"):
        return False  # a tensor
    return isinstance(inputs, collections.abc.Iterable)


def _batches(inputs, argument):
    """The batches of a dataset or iterator: `x` of each `x` or `(x, y[, w])`."""
    for element in inputs:
        if isinstance(element, tuple) and 1 < len(element) <= 3:
            element = element[0]
        if element is None:
            raise ValueError(
                f"Argument `{argument}` yielded a batch without inputs (None)."
            )
        yield element


def check_model_inputs(model, inputs, sites, argument="inputs"):
    """Checks that `inputs` fit `model`, and returns them as NumPy arrays.

    Args:
        model: A Keras model or layer.
        inputs: An array or tensor, or a list/dict of them for a model with
            several inputs.
        sites: `sites.find_sites(model)`.
        argument: The argument name to use in error messages.

    Returns:
        `inputs` with every leaf converted to a NumPy array (same structure).

    Raises:
        ValueError: If the number of inputs, a rank, a fixed dimension or the
            batch sizes do not fit, naming the shape the model expects.
        TypeError: If `inputs` is not made of arrays or tensors.
    """
    if inputs is None:
        raise ValueError(f"Argument `{argument}` must be an array; received None.")
    if _is_stream(inputs):
        raise TypeError(
            f"Argument `{argument}` must be an array or tensor (or a list or "
            f"dict of them); received {type(inputs).__name__}, a stream of "
            "batches. Pass one batch of arrays."
        )
    try:
        arrays = tree.map_structure(ops.convert_to_numpy, inputs)
    except Exception as error:  # any backend's conversion error
        raise ValueError(
            f"Argument `{argument}` must be an array or tensor (or a list or "
            f"dict of them); received {type(inputs).__name__}: {error}"
        ) from error
    leaves = tree.flatten(arrays)
    expected = expected_input_shapes(model, sites)
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
        if array.ndim >= 2 and array.shape[1] == 0:
            raise ValueError(
                f"Argument `{argument}` must hold at least one time step; "
                f"received an array of shape {array.shape} (axis 1 is time)."
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


def record_call(model, inputs, sites=None, stateful_start="current"):
    """Calls `model` once in inference mode and returns the recorded values.

    Backend-neutral; call it eagerly or inside a traced function (the
    `GateHistograms` callback runs it inside a `tf.function`).

    Args:
        model: A Keras model or layer holding our cells.
        inputs: Inputs the model accepts.
        sites: `sites.find_sites(model)`, if already at hand.
        stateful_start: As for `record_gates`.

    Returns:
        `{cell name: {value name: tensor (batch, time, units)}}`.
    """
    with record_gates(model, sites, stateful_start) as recorded:
        model(inputs, training=False)
    return dict(recorded)


def _as_numpy(recorded):
    return {
        name: {value: ops.convert_to_numpy(v) for value, v in values.items()}
        for name, values in recorded.items()
    }


def gate_activations(model, inputs, batch_size=None):
    """Returns every gate of every time step, for each of our cells.

    Runs `model` in inference mode (no dropout) on `inputs` and reads, for
    every layer that runs one of our cells (our three layers, a
    `keras.layers.RNN` over one of our cells, each of our cells in a
    `StackedRNNCells`, both directions of a `Bidirectional`, also in nested
    models), the values the cell computes at each step. They come from the
    cells' own gate code, so `hidden_state` equals the layer's output sequence
    and `cell_state[t] = forget_gate[t] * cell_state[t-1] + input_gate[t] *
    candidate[t]`. For `CoupledLSTMCell`, `input_gate` is `1 - forget_gate`.

    Inspection only reads: the model is not changed (a stateful layer starts
    from its current states, which stay as they were), and calls from
    several threads at once each get their own values.

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
            features)` for a single-input model, or a list/dict of arrays;
            or a `tf.data.Dataset` or another iterable of such batches
            (each element `x` or a tuple `(x, y)` / `(x, y, sample_weight)`,
            as `model.predict` takes them).
        batch_size: Number of sequences per model call, or `None` (default)
            for all at once (for arrays; a dataset brings its own batches).
            The results are concatenated along the batch axis.

    Returns:
        `{layer name: {gate name: NumPy array (batch, time, units)}}`, with
        the gate names of the cell (`cell.value_names`): `input_gate`,
        `forget_gate`, `output_gate`, `candidate`, `cell_state` and
        `hidden_state` for our LSTM cells.

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
    >>> tuple(gates["peephole_lstm"]["forget_gate"].shape)
    (5, 20, 8)
    """
    sites = sites_lib.find_sites(model)
    sites_lib.require_ours(model, sites)
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size <= 0
    ):
        raise ValueError(
            "Argument `batch_size` must be a positive integer or None; "
            f"received batch_size={batch_size!r}."
        )
    if _is_stream(inputs):
        batches = [
            check_model_inputs(model, batch, sites, argument="inputs (a batch)")
            for batch in _batches(inputs, "inputs")
        ]
        if not batches:
            raise ValueError("Argument `inputs` yielded no batch.")
    else:
        arrays = check_model_inputs(model, inputs, sites)
        total = tree.flatten(arrays)[0].shape[0]
        step = total if batch_size is None else int(batch_size)
        batches = [
            tree.map_structure(operator.itemgetter(slice(start, start + step)), arrays)
            for start in range(0, total, step)
        ]
    chunks = [_as_numpy(record_call(model, batch, sites)) for batch in batches]
    return {
        name: {
            value: np.concatenate([chunk[name][value] for chunk in chunks], axis=0)
            for value in values
        }
        for name, values in chunks[0].items()
    }
