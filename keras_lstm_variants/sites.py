"""Where this package's recurrent cells sit in a model, and how to reach them.

One walk over a model (nested models, `Bidirectional`, `keras.layers.RNN`,
stacked cells) gives one `RNNSite` record per RNN layer. Gate inspection, the
TensorBoard callback and the export read these records; nothing else walks a
model. This module also holds:

* the naming rules: a site's unique name, the signature key of one of its
  values (`signature_key`) and the TensorBoard tag (`summary_tag`);
* the one interception mechanism, `intercepted`: for the duration of a
  context, and only in the thread that opened it, calls of chosen RNN layers
  go to a handler instead (to record gates, or to make states explicit);
* `run_stateless`: a layer's call as its stateless twin, which never reads or
  writes the layer's state variables unless asked to read them.
"""

import contextlib
import dataclasses
import re
import threading

import keras
from keras import ops
from keras import tree

from keras_lstm_variants.keras_cell_views import inspectable
from keras_lstm_variants.value_cells import InspectableCell
from keras_lstm_variants.value_cells import LSTMValues


@dataclasses.dataclass(frozen=True)
class CellSite:
    """A cell whose values can be read, inside an RNN layer.

    Attributes:
        name: Unique, stable name of the cell's values: the site's name, plus
            `/<cell name>` for a cell in a stack.
        cell: The cell as inspection reads it (`keras_cell_views.inspectable`):
            one of our cells itself, or a view of a Keras cell.
        index: Position of the cell in the layer's stack (0 for a single
            cell): its states are `states[index]` of a stacked layer.
    """

    name: str
    cell: InspectableCell
    index: int


@dataclasses.dataclass(frozen=True)
class RNNSite:
    """One `keras.layers.RNN` (or subclass) found in a model.

    Attributes:
        name: Unique, stable name: the layer's name, prefixed by the names of
            the nested models and `Bidirectional` wrappers that hold it, joined
            by `/` (for example `"bidirectional/forward_coupled_lstm"`).
        layer: The RNN layer.
        cells: Every cell the layer runs, in stack order.
        ours: A `CellSite` for each of them whose values can be read: our
            cells, and Keras's own `LSTMCell` and `GRUCell`
            (`keras_cell_views.inspectable`).
        reverse_time: Whether the layer is the backward half of a
            `Bidirectional`: its values are flipped back into input order.
    """

    name: str
    layer: keras.layers.RNN
    cells: tuple
    ours: tuple
    reverse_time: bool

    @property
    def stacked(self):
        """Whether the layer runs a `keras.layers.StackedRNNCells`."""
        return isinstance(self.layer.cell, keras.layers.StackedRNNCells)

    @property
    def only_ours(self):
        """Whether every cell of the layer is one of ours."""
        return len(self.ours) == len(self.cells)

    def state_keys(self):
        """Signature keys of the layer's states, in the layer's state structure.

        `[h key, c key]` for a single cell, one such pair per cell for a
        stack; the keys follow `signature_key` with the cell's state names.
        Only defined where `only_ours`.
        """
        keys = [
            [signature_key(c.name, s) for s in c.cell.state_names] for c in self.ours
        ]
        return keys if self.stacked else keys[0]


def _cells_of(layer):
    cell = layer.cell
    if isinstance(cell, keras.layers.StackedRNNCells):
        return tuple(cell.cells)
    return (cell,)


def find_sites(model):
    """Walks `model` once and returns an `RNNSite` per RNN layer in it.

    Args:
        model: A Keras model or layer.

    Returns:
        A tuple of `RNNSite`, in the order of the model's layers, the forward
        half of a `Bidirectional` before its backward half. Layers whose
        cells are all foreign are included (with empty `ours`).

    Raises:
        ValueError: If two sites, or two of our cells, end up with the same
            name (then their signature keys and tags would collide).
    """
    found = []

    def visit(layer, prefix, reverse_time=False):
        if isinstance(layer, keras.layers.Bidirectional):
            path = f"{prefix}{layer.name}/"
            visit(layer.forward_layer, path)
            visit(layer.backward_layer, path, reverse_time=True)
        elif isinstance(layer, keras.layers.RNN):
            name = f"{prefix}{layer.name}"
            cells = _cells_of(layer)
            stacked = isinstance(layer.cell, keras.layers.StackedRNNCells)
            views = [inspectable(c) for c in cells]
            ours = tuple(
                CellSite(f"{name}/{c.name}" if stacked else name, view, k)
                for k, (c, view) in enumerate(zip(cells, views, strict=True))
                if view is not None
            )
            found.append(RNNSite(name, layer, cells, ours, reverse_time))
        elif isinstance(layer, keras.Model):
            for sub in layer.layers:
                visit(sub, f"{prefix}{layer.name}/")

    if isinstance(model, keras.Model):
        for layer in model.layers:
            visit(layer, "")
    else:
        visit(model, "")
    sites = tuple(found)
    _check_unique_keys(sites)
    return sites


def ours(sites):
    """The sites that run at least one of our cells."""
    return tuple(site for site in sites if site.ours)


def require_ours(model, sites, argument="model"):
    """`ours(sites)`, or a `ValueError` naming `argument` if there are none."""
    found = ours(sites)
    if not found:
        raise ValueError(
            f"Argument `{argument}` ({type(model).__name__} "
            f"'{getattr(model, 'name', model)}') has no RNN layer whose gates "
            "can be read; expected at least one layer of keras_lstm_variants "
            "(StandardLSTM, PeepholeLSTM, CoupledLSTM, LSTMVariant, ...), "
            "keras.layers.LSTM, or a keras.layers.RNN (possibly inside "
            "Bidirectional) over one of their cells."
        )
    return found


# ---------------------------------------------------------------------------
# Naming rules.

_INVALID_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\-]")

#: Top-level prefix of every TensorBoard tag the callback writes.
TAG_PREFIX = "gates"


def signature_key(name, value_name):
    """The signature key under which one cell's value or state is exported.

    The rule: split the name (a `CellSite.name`, for example
    `"bidirectional/forward_peephole_lstm"` or `"rnn/peephole_lstm_cell"` for
    a cell in a stack) at each `/`, append the value name, and join the parts
    with a double underscore `__`. Any character other than ASCII letters,
    digits, `_`, `.` and `-` then becomes `_`, and a key that does not start
    with a letter, digit or `.` gets the prefix `k`, so every key is a valid
    TensorFlow name.

    Args:
        name: The cell's name, with `/` between nesting levels.
        value_name: A value name of the cell (`cell.value_names`) or a state
            name (`cell.state_names`).

    Returns:
        The key, a string.

    Example:

    >>> signature_key("bidirectional/forward_peephole_lstm", "forget_gate")
    'bidirectional__forward_peephole_lstm__forget_gate'
    """
    key = "__".join([*name.split("/"), value_name])
    key = _INVALID_KEY_CHARACTERS.sub("_", key)
    if not re.match(r"[A-Za-z0-9.]", key):
        key = f"k{key}"
    return key


def summary_tag(layer_name, value, statistic=None, cell=None):
    """The TensorBoard tag of one cell's value: the callback's one tag rule.

    TensorBoard groups tags by what comes before the first `/`, and sorts
    them by name inside a group. So every tag of one layer starts with
    `gates.<layer name>` (each `/` of a nested or `Bidirectional` layer's name
    replaced by `.`), and the values carry their place in the cell's
    equations (`cell.tag_position`): `0_heatmap`, then for the LSTM family
    `1_input_gate`, `2_forget_gate`, `3_candidate`, `4_cell_state`,
    `5_output_gate`, `6_hidden_state`.

    Args:
        layer_name: The layer's name as `gate_activations` gives it.
        value: `"heatmap"` or one of the cell's `value_names`.
        statistic: `None` for the value itself (its histogram or image), or
            the name of a scalar such as `"mean"`.
        cell: The cell (`CellSite.cell`) that has the value; `None` for the
            LSTM family.

    Returns:
        For example `gates.text_lstm/2_forget_gate/mean` or
        `gates.bidirectional.forward_coupled_lstm/4_cell_state`.

    Example:

    >>> summary_tag("peephole_lstm", "forget_gate", "mean")
    'gates.peephole_lstm/2_forget_gate/mean'
    """
    numbering = LSTMValues() if cell is None else cell
    position = 0 if value == "heatmap" else numbering.tag_position(value)
    tag = f"{TAG_PREFIX}.{layer_name.replace('/', '.')}/{position}_{value}"
    return tag if statistic is None else f"{tag}/{statistic}"


def _check_unique_keys(sites):
    keys = [
        signature_key(c.name, v)
        for site in sites
        for c in site.ours
        for v in dict.fromkeys((*c.cell.value_names, *c.cell.state_names))
    ]
    seen, duplicates = set(), set()
    for key in keys:
        (duplicates if key in seen else seen).add(key)
    if duplicates:
        raise ValueError(
            f"Layer names map to the same signature keys {sorted(duplicates)}; "
            "give the layers distinct names (see `signature_key` for the rule)."
        )


# ---------------------------------------------------------------------------
# Interception.

_lock = threading.Lock()
_installed = {}  # id(layer) -> [layer, number of open contexts]
_local = threading.local()


def _handlers():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _dispatcher(layer, original):
    """The `call` installed while some thread intercepts `layer`."""

    def call(*args, **kwargs):
        for handlers in reversed(_handlers()):
            handler = handlers.get(id(layer))
            if handler is not None:
                return handler(original, *args, **kwargs)
        return original(*args, **kwargs)

    return call


@contextlib.contextmanager
def intercepted(handlers):
    """Routes calls of some RNN layers to handlers, in this thread only.

    While the context is open, a call of one of the layers made by the thread
    that opened it runs `handler(original_call, sequences, initial_state=...,
    mask=..., training=..., **kwargs)` instead; the same layer called from
    any other thread runs as usual. Contexts nest (the innermost handler of
    a layer wins) and may be open in several threads at once. The layers get
    a forwarding `call` while at least one context holds them, and their own
    back when the last one closes, also when an error ends the context.

    Args:
        handlers: `{site: handler}` with `RNNSite` keys.
    """
    by_id = {id(site.layer): handler for site, handler in handlers.items()}
    layers = [site.layer for site in handlers]
    with _lock:
        for layer in layers:
            entry = _installed.get(id(layer))
            if entry is None:
                layer.call = _dispatcher(layer, layer.call)
                _installed[id(layer)] = [layer, 1]
            else:
                entry[1] += 1
    stack = _handlers()
    stack.append(by_id)
    try:
        yield
    finally:
        stack.remove(by_id)
        with _lock:
            for layer in layers:
                entry = _installed[id(layer)]
                entry[1] -= 1
                if entry[1] == 0:
                    del _installed[id(layer)]
                    del layer.call


def run_stateless(layer, sequences, initial_state, mask, training):
    """Runs an RNN layer's loop without touching its state variables.

    What `layer(sequences, initial_state=..., mask=...)` computes, through
    the layer's own `inner_loop` (so also its fast path), but a stateful
    layer's states are neither read (pass them as `initial_state`) nor
    updated.

    Returns:
        `(result, states)`: what the layer's call returns (the output, or the
        output and the final states with `return_state`), and the final
        states.
    """
    if tree.is_nested(mask):
        mask = tree.flatten(mask)[0]
    dtype = layer.cell.compute_dtype
    initial_state = tree.map_structure(
        lambda s: ops.convert_to_tensor(s, dtype=dtype), list(initial_state)
    )
    last, outputs, states = layer.inner_loop(
        sequences, initial_state, mask, training=training
    )
    output = outputs if layer.return_sequences else last
    output = ops.cast(output, layer.compute_dtype)
    states = tree.map_structure(lambda s: ops.cast(s, layer.compute_dtype), states)
    states = list(states) if tree.is_nested(states) else [states]
    return ((output, *states) if layer.return_state else output), states
