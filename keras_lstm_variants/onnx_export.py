"""ONNX export: our LSTM layers as ONNX's native `LSTM` operator.

`export_onnx(model, path)` writes a `.onnx` file that ONNX Runtime runs
without TensorFlow, Keras or this package. The model's RNN layers whose
computation ONNX's `LSTM` (or `GRU`) operator expresses exactly become one
such node each; everything else (Embedding, Dense, normalization, masks, the
glue around the RNN nodes, and the RNN layers that do not map) is converted
by tf2onnx, the standard converter for TensorFlow graphs.

How: the model's forward pass is traced as a `tf.function` in which every
mapped RNN layer's call is replaced (through `sites.intercepted`) by an
opaque placeholder op (`tf.py_function`, never run) whose inputs and outputs
are exactly those of the ONNX operator (time-major `X`, `sequence_lens`,
`initial_h`, `initial_c`; `Y`, `Y_h`, `Y_c`), surrounded by ordinary
TensorFlow ops that turn Keras's conventions (batch-major tensors,
`go_backwards`'s reversed output, what masked steps output) into the
operator's and back. tf2onnx converts that graph and keeps each placeholder
as a custom-domain node; `_replace_placeholders` then swaps each for an
`LSTM`/`GRU` node whose `W`, `R`, `B` and `P` are the layer's weights laid
out for ONNX (`native_rnn`); `_merge_opposite_directions` makes the two halves
of a `Bidirectional` one node.

TensorFlow, tf2onnx and onnx are imported inside the functions.
"""

import contextlib
import dataclasses
import logging
import os
import re

import keras
import numpy as np
from keras import tree

from keras_lstm_variants import saved_model
from keras_lstm_variants import sites as sites_lib
from keras_lstm_variants import validation
from keras_lstm_variants.cells import LSTMVariantCell
from keras_lstm_variants.gru import GRUCell

#: Opset of the written file unless asked otherwise (ONNX Runtime 1.17+).
DEFAULT_OPSET = 17
#: The lowest opset accepted (the `LSTM`/`GRU` operators of opset 14).
MIN_OPSET = 14
#: Suffix of the outputs that hold a stateful layer's final states (an ONNX
#: graph cannot have an input and an output of the same name).
FINAL_STATE_SUFFIX = "__final"
#: Domain of the placeholder nodes between tf2onnx and their replacement.
PLACEHOLDER_DOMAIN = "keras_lstm_variants.placeholder"
_PLACEHOLDER_NAME = "klv_onnx_rnn_{}"
_PLACEHOLDER_PATTERN = re.compile(r"klv_onnx_rnn_(\d+)")

#: Keras activation name -> (ONNX RNN activation, alpha, beta). Keras 3's
#: `hard_sigmoid` is `relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1)`, ONNX's
#: `HardSigmoid` is `clip(alpha·x + beta, 0, 1)`; `linear` is ONNX's `Affine`
#: with alpha 1 and beta 0.
ONNX_ACTIVATIONS = {
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "relu": ("Relu", None, None),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "linear": ("Affine", 1.0, 0.0),
}
#: Gate activations that reach exactly 1 for a large input (a gate the
#: variant lacks becomes such a gate) and satisfy `σ(−x) = 1 − σ(x)` (the
#: coupled cell's input gate becomes ONNX's with the forget block negated).
SYMMETRIC_SATURATING = ("sigmoid", "hard_sigmoid")
#: Bias of a gate the variant lacks: with zero weights, `σ(1e4)` is exactly
#: 1.0 in float32 for both `SYMMETRIC_SATURATING` activations.
ALWAYS_OPEN = 1e4

_LSTM_ORDER = ("input", "output", "forget", "candidate")  # ONNX's i, o, f, c
_ONNX_PEEPHOLE_ORDER = ("input", "output", "forget")  # P: i, o, f


@dataclasses.dataclass(frozen=True)
class NativeRNN:
    """How one RNN layer becomes one ONNX `LSTM` or `GRU` node.

    Attributes:
        op_type: `"LSTM"` or `"GRU"`.
        hidden_size: `H`.
        weights: `{"W": ..., "R": ..., "B": ..., "P": ...}` float32 arrays
            with a leading direction axis of 1 (`P` only for LSTM).
        attributes: The node's attributes (activations, `input_forget`,
            `linear_before_reset`), without `direction` and `hidden_size`.
        state_slots: The operator's inputs for the layer's states, in the
            order of the layer's states (`initial_h`, `initial_c`).
        name: The name of the cell's states: the layer's site name, plus
            `/<cell name>` for a cell in a stack (as `sites.CellSite`).
    """

    op_type: str
    hidden_size: int
    weights: dict
    attributes: dict
    state_slots: tuple
    name: str = ""

    @property
    def num_outputs(self):
        return 1 + len(self.state_slots)

    def state_keys(self):
        """Signature keys of the cell's explicit states, in state order."""
        names = {"initial_h": "hidden_state", "initial_c": "cell_state"}
        return [sites_lib.signature_key(self.name, names[s]) for s in self.state_slots]


def _activation(fn, role, where):
    """`(ONNX name, alpha, beta)` of a Keras activation, or a reason why not."""
    name = keras.activations.serialize(fn) if fn is not None else "linear"
    if not isinstance(name, str):  # a custom activation's config
        name = getattr(fn, "__name__", type(fn).__name__)
    if name not in ONNX_ACTIVATIONS:
        return None, (
            f"{where}: its {role} {name!r} has no ONNX RNN activation (mapped: "
            f"{sorted(ONNX_ACTIVATIONS)})"
        )
    return ONNX_ACTIVATIONS[name], None


def _cell_activations(cell, where):
    """`((σ, φ), None)`: the ONNX forms of a cell's `recurrent_activation`
    and `activation`, or `(None, reason)` for the first that has none."""
    mapped = []
    for fn, role in (
        (cell.recurrent_activation, "recurrent_activation"),
        (cell.activation, "activation"),
    ):
        activation, reason = _activation(fn, role, where)
        if reason:
            return None, reason
        mapped.append(activation)
    return tuple(mapped), None


def _activation_attributes(activations):
    """The `activations`, `activation_alpha`, `activation_beta` attributes.

    ONNX Runtime reads an alpha (beta) only for the functions that take one,
    in order; the defaults (sigmoid, tanh, tanh) are left implicit.
    """
    names = [a[0] for a in activations]
    defaults = ["Sigmoid", "Tanh", "Tanh"][: len(names)]
    if names == defaults:
        return {}
    attributes = {"activations": names}
    alphas = [a[1] for a in activations if a[1] is not None]
    betas = [a[2] for a in activations if a[2] is not None]
    if alphas:
        attributes["activation_alpha"] = alphas
    if betas:
        attributes["activation_beta"] = betas
    return attributes


def _np(weight):
    return np.asarray(keras.ops.convert_to_numpy(weight), dtype=np.float32)


def _lstm_weights(blocks, units, kernel, recurrent_kernel, bias, peepholes, coupled):
    """ONNX `W`, `R`, `B`, `P` from the fused weights of blocks `blocks`.

    A gate without a block is always open (zero weights, bias
    `ALWAYS_OPEN`); the coupled cell's input gate is its forget block
    negated (ONNX's `input_forget=1` then sets `f = 1 − i`).
    """
    input_dim = kernel.shape[0]
    if bias is None:
        bias = np.zeros(len(blocks) * units, np.float32)

    def block(array, name, axis=-1):
        k = blocks.index(name)
        return np.take(array, range(k * units, (k + 1) * units), axis=axis)

    w, r, b, p = [], [], [], []
    for gate in _LSTM_ORDER:
        source, sign = gate, 1.0
        if gate == "input" and coupled:
            source, sign = "forget", -1.0
        if gate == "forget" and coupled:
            source = None  # unused: f = 1 − i
        if source in blocks:
            w.append(sign * block(kernel, source))
            r.append(sign * block(recurrent_kernel, source))
            b.append(sign * block(bias, source))
        else:
            w.append(np.zeros((input_dim, units), np.float32))
            r.append(np.zeros((recurrent_kernel.shape[0], units), np.float32))
            open_bias = 0.0 if source is None and coupled else ALWAYS_OPEN
            b.append(np.full(units, open_bias, np.float32))
    for gate in _ONNX_PEEPHOLE_ORDER:
        source, sign = gate, 1.0
        if coupled and gate == "input":
            source, sign = "forget", -1.0
        elif coupled and gate == "forget":
            source = None
        vector = peepholes.get(source)
        p.append(np.zeros(units, np.float32) if vector is None else sign * vector)
    weights = {
        "W": np.concatenate(w, axis=1).T[None],
        "R": np.concatenate(r, axis=1).T[None],
        "B": np.concatenate([*b, np.zeros(4 * units, np.float32)])[None],
    }
    if any(v is not None for v in peepholes.values()):
        weights["P"] = np.concatenate(p)[None]
    return {k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}


def _our_lstm(cell, where):
    """`NativeRNN` of one of our cells, or the reason it has none."""
    step = cell.step
    if not cell.declares_its_step:
        return None, (
            f"{where}: {type(cell).__name__} overrides the step of "
            "LSTMVariantCell, so its computation is not known to map"
        )
    refused = [
        (
            step.full_gate_recurrence,
            "full gate recurrence (FGR): ONNX's LSTM has no "
            "term from the previous step's gates",
        ),
        (
            step.layer_norm,
            "layer normalization: ONNX's LSTM has no normalization inside the step",
        ),
        (
            step.projection_units is not None,
            "a projection: ONNX's LSTM has no projected hidden state",
        ),
        (
            step.cell_clip is not None,
            "cell_clip: ONNX's LSTM `clip` bounds the "
            "pre-activations, not the cell state",
        ),
    ]
    for refuses, reason in refused:
        if refuses:
            return None, f"{where}: {reason}"
    sigma_phi, reason = _cell_activations(cell, where)
    if reason:
        return None, reason
    sigma, phi = sigma_phi
    identity = ONNX_ACTIVATIONS["linear"]
    gate_name = keras.activations.serialize(cell.recurrent_activation)
    missing = not (step.input_gate and step.forget_gate and step.output_gate)
    if (missing or step.coupled) and gate_name not in SYMMETRIC_SATURATING:
        return None, (
            f"{where}: a missing or coupled gate maps onto ONNX's LSTM only with "
            f"recurrent_activation in {SYMMETRIC_SATURATING}; it is {gate_name!r}"
        )
    weights = _lstm_weights(
        cell.blocks,
        cell.units,
        _np(cell.kernel),
        _np(cell.recurrent_kernel),
        None if cell.bias is None else _np(cell.bias),
        {
            gate: _np(getattr(cell, f"{gate}_gate_peephole_weights"))
            for gate in cell.peephole_gates
        },
        step.coupled,
    )
    activations = (
        sigma,
        phi if step.input_activation else identity,
        phi if step.output_activation else identity,
    )
    attributes = _activation_attributes(activations)
    if step.coupled:
        attributes["input_forget"] = 1
    return NativeRNN(
        "LSTM", cell.units, weights, attributes, ("initial_h", "initial_c")
    ), None


def _keras_lstm(cell, where):
    """`NativeRNN` of a `keras.layers.LSTMCell` (blocks i, f, c, o)."""
    sigma_phi, reason = _cell_activations(cell, where)
    if reason:
        return None, reason
    sigma, phi = sigma_phi
    weights = _lstm_weights(
        ("input", "forget", "candidate", "output"),
        cell.units,
        _np(cell.kernel),
        _np(cell.recurrent_kernel),
        _np(cell.bias) if cell.use_bias else None,
        {},
        False,
    )
    return NativeRNN(
        "LSTM",
        cell.units,
        weights,
        _activation_attributes((sigma, phi, phi)),
        ("initial_h", "initial_c"),
    ), None


def gru_native(cell, where):
    """`NativeRNN` of a GRU cell with Keras's `GRUCell` weights (blocks z, r,
    h, as ONNX's; `reset_after=True` is ONNX's `linear_before_reset=1`)."""
    activations, reason = _cell_activations(cell, where)
    if reason:
        return None, reason
    units = cell.units
    kernel, recurrent = _np(cell.kernel), _np(cell.recurrent_kernel)
    bias = np.zeros((2, 3 * units), np.float32)
    if cell.use_bias:
        given = _np(cell.bias)
        if cell.reset_after:
            bias = given.reshape(2, 3 * units)
        else:
            bias[0] = given  # reset_after=False: an input bias only
    attributes = _activation_attributes(activations)
    attributes["linear_before_reset"] = int(bool(cell.reset_after))
    weights = {
        "W": kernel.T[None],
        "R": recurrent.T[None],
        "B": bias.reshape(1, 6 * units),
    }
    weights = {k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}
    return NativeRNN("GRU", units, weights, attributes, ("initial_h",)), None


#: Why the package's other cells have no ONNX operator.
_NO_OPERATOR = {
    "DepthGatedLSTMCell": " (the depth gate adds the lower level's new cell state "
    "inside the step; ONNX's LSTM runs one level)",
    "ClockworkRNNCell": " (modules update on a clock; ONNX's RNN operators update "
    "every unit at every step)",
}


def _native_cell(cell, where):
    if isinstance(cell, LSTMVariantCell):
        return _our_lstm(cell, where)
    if type(cell) is keras.layers.LSTMCell:
        return _keras_lstm(cell, where)
    if type(cell) is keras.layers.GRUCell:
        return gru_native(cell, where)
    if isinstance(cell, GRUCell):
        if not cell.declares_its_step:
            return None, (
                f"{where}: {type(cell).__name__} overrides the step of GRUCell, "
                "so its computation is not known to map"
            )
        return gru_native(cell, where)
    why = _NO_OPERATOR.get(type(cell).__name__, "")
    return None, f"{where}: {type(cell).__name__} has no native ONNX mapping{why}"


def native_rnn(site):
    """How `site` (an `sites.RNNSite`) maps onto ONNX's operators.

    Returns:
        `(natives, None)` with one `NativeRNN` per cell of the layer (a stack
        of cells is a chain of nodes, each reading the one before), or
        `(None, reason)` where the layer exports as the generic loop tf2onnx
        converts (an ONNX `Loop`).
    """
    if site.layer.compute_dtype != "float32":
        return None, (
            f"layer '{site.name}': computes in {site.layer.compute_dtype}, not float32"
        )
    stacked = isinstance(site.layer.cell, keras.layers.StackedRNNCells)
    natives = []
    for cell in site.cells:
        name = f"{site.name}/{cell.name}" if stacked else site.name
        native, reason = _native_cell(cell, f"layer '{name}'")
        if native is None:
            return None, reason
        natives.append(dataclasses.replace(native, name=name))
    return tuple(natives), None


def onnx_mapping(model):
    """What `export_onnx` makes of each RNN layer of `model`.

    Returns:
        `{site name: "LSTM" | "GRU" | reason}`: the ONNX operator of each
        layer that maps natively (`"LSTM+LSTM"` for a stack of two cells), or
        why a layer exports as a generic loop.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None, 3)),
    ...     PeepholeLSTM(4, return_sequences=True),
    ...     LSTMVariant(4, layer_norm=True),
    ... ])
    >>> mapping = klv.onnx_export.onnx_mapping(model)
    >>> mapping["peephole_lstm"]
    'LSTM'
    >>> mapping["lstm_variant"].split(": ")[1]
    'layer normalization'
    """
    found = {}
    for site in sites_lib.find_sites(model):
        natives, reason = native_rnn(site)
        if natives is None:
            found[site.name] = reason
        else:
            found[site.name] = "+".join(native.op_type for native in natives)
    return found


# ---------------------------------------------------------------------------
# Tracing.


def _never_runs(*args):
    raise RuntimeError("The ONNX placeholder op is traced, never run.")


def _native_handler(site, stack, calls, given_states, final_states):
    """A handler (see `sites.intercepted`) that runs `site` as placeholders
    with the ONNX operator's inputs and outputs, one per cell of `stack`, and
    Keras's conventions around them."""
    import tensorflow as tf

    layer = site.layer
    stacked = isinstance(layer.cell, keras.layers.StackedRNNCells)

    def handle(original, sequences, initial_state=None, mask=None, **kwargs):
        if initial_state is not None:
            given = list(initial_state) if stacked else [initial_state]
            starts = [tree.flatten(states) for states in given]
        elif layer.stateful:
            starts = [[given_states[k] for k in n.state_keys()] for n in stack]
        else:
            starts = [None] * len(stack)
        if tree.is_nested(mask):
            mask = tree.flatten(mask)[0]
        lengths = None
        if mask is not None:
            mask = tf.cast(mask, tf.bool)
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        x = tf.transpose(tf.cast(sequences, tf.float32), [1, 0, 2])  # time-major
        finals = []
        for native, start in zip(stack, starts, strict=True):
            inputs, slots = [x], ["X"]
            if lengths is not None:
                inputs.append(lengths)
                slots.append("sequence_lens")
            for slot, state in zip(native.state_slots, start or (), strict=False):
                inputs.append(tf.expand_dims(tf.cast(state, tf.float32), 0))
                slots.append(slot)
            outputs = tf.py_function(
                _never_runs,
                inputs,
                [tf.float32] * native.num_outputs,
                name=_PLACEHOLDER_NAME.format(len(calls)),
            )
            calls.append((native, tuple(slots), layer.go_backwards))
            units = native.hidden_size
            outputs[0].set_shape((None, 1, None, units))
            for out in outputs[1:]:
                out.set_shape((1, None, units))
            x = tf.squeeze(outputs[0], 1)  # the next cell's input
            finals.append([tf.squeeze(out, 0) for out in outputs[1:]])
        y = tf.transpose(x, [1, 0, 2])  # (batch, time, H)
        last = finals[-1][0]
        if layer.go_backwards:
            # Keras returns the steps in the order it ran them; ONNX's
            # reverse direction writes each at its input position (and
            # zeros at padded positions, which come first once flipped:
            # Keras outputs zeros there too, its previous output before any
            # step ran).
            y = tf.reverse(y, [1])
        elif mask is not None and not layer.zero_output_for_mask:
            # Keras repeats the last unmasked output at masked steps; ONNX
            # writes zeros after a sequence's length.
            fill = tf.where(lengths[:, None] > 0, last, tf.zeros_like(last))
            y = tf.where(mask[:, :, None], y, fill[:, None, :])
        if not layer.return_sequences:
            y = last if mask is None else y[:, -1]
        output = tf.cast(y, layer.compute_dtype)
        if layer.stateful:
            for native, states in zip(stack, finals, strict=True):
                final_states.update(zip(native.state_keys(), states, strict=True))
        if not layer.return_state:
            return output
        return (output, *finals) if stacked else (output, *finals[0])

    return handle


def _state_specs(stateful, natives):
    """`{key: tf.TensorSpec((None, size))}` of the explicit states: a native
    layer's from its operator, a loop's as `export_saved_model` keys them."""
    import tensorflow as tf

    specs = {}
    for site in stateful:
        stack = natives.get(site)
        if stack is None:
            specs.update(saved_model._state_signature([site], None, "float32"))
            continue
        for native in stack:
            for key in native.state_keys():
                size = native.hidden_size
                specs[key] = tf.TensorSpec((None, size), "float32", name=key)
    return specs


def _signature(model, stateful, natives, input_signature):
    """Flat `tf.TensorSpec`s of the model's inputs (and explicit states),
    with the structure to pack them into."""
    if input_signature is None:
        input_signature = saved_model.input_signature_of(model)
    input_signature = tree.map_structure(
        saved_model.as_tensor_spec, list(input_signature)
    )
    states = _state_specs(stateful, natives)
    flat_inputs = tree.flatten(input_signature)
    return input_signature, flat_inputs, states


def _merge_opposite_directions(model_proto):
    """Merges each forward node with a reverse node of the same operator on
    the same inputs (the halves of a `Bidirectional`) into one
    `direction="bidirectional"` node; a `Split` gives each half its outputs
    back under their names. Nodes with initial states (stateful layers, a
    given `initial_state`) stay apart: their states come from elsewhere in
    the graph."""
    from onnx import helper
    from onnx import numpy_helper

    graph = model_proto.graph
    weights = {t.name: t for t in graph.initializer}
    slots = {"LSTM": 8, "GRU": 6}

    def attributes(node):
        return {
            a.name: helper.get_attribute_value(a)
            for a in node.attribute
            if a.name != "direction"
        }

    def key(node):
        """Nodes with equal keys read the same `X` and `sequence_lens`."""
        padded = [*node.input, *[""] * (slots[node.op_type] - len(node.input))]
        if any(padded[5:7]):
            return None  # initial states: left as two nodes
        return (node.op_type, padded[0], padded[4], repr(attributes(node)))

    def direction(node):
        (value,) = [a.s for a in node.attribute if a.name == "direction"]
        return value.decode()

    nodes = [n for n in graph.node if n.op_type in slots]
    replaced = set()
    reverse = {}
    for node in nodes:
        if direction(node) == "reverse":
            reverse.setdefault(key(node), []).append(node)
    for node in nodes:
        partners = reverse.get(key(node))
        if direction(node) != "forward" or key(node) is None or not partners:
            continue
        backward = partners.pop(0)
        name = f"{node.name}_bidirectional"
        inputs = [
            *node.input,
            *[""] * (slots[node.op_type] - len(node.input)),
        ]
        other = [*backward.input, *[""] * (len(inputs) - len(backward.input))]
        new_nodes = []
        replaced.update(
            name for name in (*node.input, *backward.input) if name in weights
        )
        for k in (1, 2, 3, 7):  # W, R, B, P: stacked along the direction axis
            if k >= len(inputs) or not (inputs[k] or other[k]):
                continue
            arrays = []
            for given, partner in ((inputs[k], other[k]), (other[k], inputs[k])):
                array = numpy_helper.to_array(weights[given or partner])
                arrays.append(array if given else np.zeros_like(array))
            merged = numpy_helper.from_array(
                np.concatenate(arrays, axis=0), f"{name}_input{k}"
            )
            graph.initializer.append(merged)
            inputs[k] = merged.name
        halves = numpy_helper.from_array(np.array([1, 1], np.int64), f"{name}_halves")
        graph.initializer.append(halves)
        while inputs and not inputs[-1]:
            inputs.pop()
        outputs = [f"{name}_output{o}" for o in range(len(node.output))]
        new_nodes.append(
            helper.make_node(
                node.op_type,
                inputs,
                outputs,
                name=name,
                direction="bidirectional",
                **attributes(node),
            )
        )
        for k, merged in enumerate(outputs):
            axis = 1 if k == 0 else 0
            new_nodes.append(
                helper.make_node(
                    "Split",
                    [merged, halves.name],
                    [node.output[k], backward.output[k]],
                    axis=axis,
                )
            )
        position = min(list(graph.node).index(n) for n in (node, backward))
        graph.node.remove(node)
        graph.node.remove(backward)
        for offset, new in enumerate(new_nodes):
            graph.node.insert(position + offset, new)
    for tensor in list(graph.initializer):
        if tensor.name in replaced:
            graph.initializer.remove(tensor)
    return model_proto


def _consumed_names(graph):
    """Names read by any node of `graph`, its subgraphs included, or
    returned by it."""
    from onnx import AttributeProto

    names = {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                names |= _consumed_names(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    names |= _consumed_names(sub)
    return names


def _drop_unread_outputs(model_proto):
    """Leaves out the `Y`, `Y_h`, `Y_c` that nothing reads, so ONNX Runtime
    need not write them (a node's optional output named `""` is absent)."""
    consumed = _consumed_names(model_proto.graph)
    for node in model_proto.graph.node:
        if node.op_type in ("LSTM", "GRU"):
            outputs = [o if o in consumed else "" for o in node.output]
            while outputs and not outputs[-1]:
                outputs.pop()
            del node.output[:]
            node.output.extend(outputs)
    return model_proto


def _time_distributed_layers(model):
    """Every `keras.layers.TimeDistributed` in `model` (nested models too)."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.TimeDistributed):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(_time_distributed_layers(layer))
    return found


@contextlib.contextmanager
def _time_distributed_by_reshape(model):
    """Runs each `TimeDistributed` as one call of its layer on the batch and
    time axes merged.

    Keras 3's `TimeDistributed` maps its layer over time with
    `tf.vectorized_map` on TensorFlow, which tf2onnx 1.17 converts into a
    `Loop` that gives wrong values or fails in ONNX Runtime; merging the two
    axes computes the same for a layer that treats samples independently
    (Dense, Activation, Dropout at inference, ...).
    """
    import tensorflow as tf

    def reshaped(layer):
        def call(inputs, training=None, mask=None):
            shape = tf.shape(inputs)
            inner = [
                d if d is not None else shape[k + 2]
                for k, d in enumerate(inputs.shape[2:])
            ]
            y = layer.layer(tf.reshape(inputs, [-1, *inner]), training=training)
            outer = [
                d if d is not None else tf.shape(y)[k + 1]
                for k, d in enumerate(y.shape[1:])
            ]
            return tf.reshape(y, [shape[0], shape[1], *outer])

        return call

    layers = _time_distributed_layers(model)
    for layer in layers:
        layer.call = reshaped(layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.call


def _trace(model, sites, natives, input_signature):
    """The forward pass as a `tf.function`, its flat signature, and the
    record of the placeholder calls."""
    import tensorflow as tf

    stateful = [site for site in sites if site.layer.stateful]
    structure, flat_inputs, state_specs = _signature(
        model, stateful, natives, input_signature
    )
    state_keys = list(state_specs)
    flat_signature = [*flat_inputs, *state_specs.values()]
    calls, output_shapes = [], {}

    def serve(*flat):
        args = tree.pack_sequence_as(structure, list(flat[: len(flat_inputs)]))
        given = dict(zip(state_keys, flat[len(flat_inputs) :], strict=True))
        final_states = {}
        handlers = {
            site: _native_handler(site, natives[site], calls, given, final_states)
            for site in sites
            if natives.get(site) is not None
        }
        loops = [s for s in stateful if natives.get(s) is None]
        handlers.update(
            saved_model._explicit_state_handlers(loops, given, final_states)
        )
        calls.clear()
        with sites_lib.intercepted(handlers), _time_distributed_by_reshape(model):
            outputs = model(*args, training=False)
        finals = {k + FINAL_STATE_SUFFIX: v for k, v in final_states.items()}
        named = {**saved_model._output_dict(outputs), **finals}
        output_shapes.clear()
        output_shapes.update({k: tuple(v.shape) for k, v in named.items()})
        # Distinct tensors, so that every output keeps its own name.
        return {k: tf.identity(v) for k, v in named.items()}

    function = tf.function(serve, input_signature=flat_signature, autograph=False)
    return function, flat_signature, calls, output_shapes


# ---------------------------------------------------------------------------
# The ONNX graph.


def _replace_placeholders(model_proto, calls):
    """Swaps each placeholder node for its `LSTM`/`GRU` node and weights."""
    from onnx import helper
    from onnx import numpy_helper

    graph = model_proto.graph
    replaced, outputs = set(), set()
    for position, node in enumerate(list(graph.node)):
        if node.domain != PLACEHOLDER_DOMAIN:
            continue
        match = _PLACEHOLDER_PATTERN.search(node.name)
        if match is None or int(match.group(1)) >= len(calls):
            raise RuntimeError(
                f"tf2onnx wrote an unexpected placeholder node {node.name!r}."
            )
        index = int(match.group(1))
        native, slots, go_backwards = calls[index]
        given = dict(zip(slots, node.input, strict=True))
        prefix = f"{node.name}_onnx"
        for name, array in native.weights.items():
            given[name] = f"{prefix}_{name}"
            graph.initializer.append(
                numpy_helper.from_array(array, name=f"{prefix}_{name}")
            )
        order = ["X", "W", "R", "B", "sequence_lens", *native.state_slots]
        if native.op_type == "LSTM":
            order.append("P")
        inputs = [given.get(slot, "") for slot in order]
        while inputs and not inputs[-1]:
            inputs.pop()
        new = helper.make_node(
            native.op_type,
            inputs,
            list(node.output),
            name=prefix,
            direction="reverse" if go_backwards else "forward",
            hidden_size=native.hidden_size,
            **native.attributes,
        )
        graph.node.remove(node)
        graph.node.insert(position, new)
        outputs.update(node.output)
        replaced.add(index)
    if len(replaced) != len(calls):
        raise RuntimeError(
            f"tf2onnx kept {len(replaced)} of the {len(calls)} RNN placeholder "
            "nodes; the export cannot map the others."
        )
    # The placeholders' outputs had no shapes; the operators' are inferred.
    shapeless = [v for v in graph.value_info if v.name in outputs]
    for value in shapeless:
        graph.value_info.remove(value)
    kept = [o for o in model_proto.opset_import if o.domain != PLACEHOLDER_DOMAIN]
    del model_proto.opset_import[:]
    model_proto.opset_import.extend(kept)
    return model_proto


class _ErrorRecords(logging.Handler):
    """Keeps the messages tf2onnx logs at ERROR level (unsupported ops)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _declare_output_shapes(model_proto, shapes):
    """Gives the graph outputs that tf2onnx left without a shape the traced
    one (`None` axes stay unnamed and dynamic)."""
    for output in model_proto.graph.output:
        tensor_type = output.type.tensor_type
        if tensor_type.HasField("shape") or output.name not in shapes:
            continue
        tensor_type.shape.SetInParent()
        for size in shapes[output.name]:
            dim = tensor_type.shape.dim.add()
            if size is not None:
                dim.dim_value = int(size)


def export_onnx(
    model, path, opset=DEFAULT_OPSET, overwrite=False, input_signature=None
):
    """Exports `model` as an ONNX file that ONNX Runtime runs on its own.

    Each of the model's RNN layers that ONNX's recurrent operators express
    exactly becomes one native `LSTM` or `GRU` node (see `onnx_mapping`):
    our standard, peephole (any subset) and coupled layers, the
    `LSTMVariant` variants NIG, NFG, NOG (the missing gate always open), NP,
    CIFG, NIAF and NOAF (the missing activation is ONNX's `Affine` with
    alpha 1, beta 0), `keras.layers.LSTM`, our `GRU` and
    `keras.layers.GRU` (both `reset_after` settings); a stack of such cells
    (`keras.layers.RNN([cell, cell])`) becomes a chain of nodes, each reading
    the one before. `go_backwards` is the operator's `reverse` direction, a
    `Bidirectional` one `direction="bidirectional"` node; `return_sequences`
    and `return_state` read `Y`, `Y_h` and `Y_c`. A mask becomes
    `sequence_lens`, the number of unmasked steps of each sequence: exact for
    masks that keep a prefix of every sequence (right padding, as
    `Embedding(mask_zero=True)` with trailing zeros gives); what Keras
    outputs at the masked steps (zeros, or the last unmasked output) is
    rebuilt around the node. A mask with holes or left padding does not
    export correctly.

    Layers that do not map (layer normalization, FGR, a projection,
    `cell_clip`, an activation ONNX lacks, other cells, a stack holding any
    of these) are converted by tf2onnx as the TensorFlow loop they run: an
    ONNX `Loop`, correct but slower. The rest of the model is converted by
    tf2onnx.

    Inputs are named as the model's (`keras.Input(name=...)`), with a dynamic
    batch axis and, where the model's input has it, a dynamic time axis.
    Outputs are `output_0`, `output_1`, ... (or the keys of a model's dict
    of outputs). Stateful layers get explicit states, as in
    `export_saved_model`: one input per state keyed
    `signature_key(layer name, "hidden_state")` (and `"cell_state"`; for a
    stack, `signature_key("<layer>/<cell>", ...)`), shape `(batch, units)`,
    zeros to start a sequence, and the final states as outputs under the same keys
    followed by `__final` (for example `lstm__cell_state__final`; an ONNX
    graph cannot reuse an input's name for an output).

    Args:
        model: A built Keras model (TensorFlow backend).
        path: File to write, ending in `.onnx`.
        opset: Integer ONNX opset, at least 14. Default: 17.
        overwrite: Boolean (default `False`). If `False`, an existing `path`
            raises `FileExistsError`; if `True`, an existing file is
            replaced.
        input_signature: Optional list of `keras.InputSpec` or
            `tf.TensorSpec`, one per positional argument of the model's
            call. Default: the model's inputs with a `None` batch axis.

    Returns:
        `path`, as a string.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If `opset` is below 14, `path` does not end in `.onnx`,
            the model is not built, or holds a stateful layer with cells
            other than ours.
        FileExistsError: If `path` exists and `overwrite` is `False`, or is
            a directory.
        ImportError: If `onnx` or `tf2onnx` is not installed (the `onnx`
            extra).
        RuntimeError: If the Keras backend is not TensorFlow, or tf2onnx
            cannot convert the model (the message names the layers that
            export as loops).

    Example:

    ```python
    klv.export_onnx(model, "model.onnx")

    import onnxruntime as ort
    session = ort.InferenceSession("model.onnx")
    y = session.run(None, {"x": x})[0]   # x: (batch, time, features) float32
    ```
    """
    validation.check_exportable_model(model)
    validation.check_bool("overwrite", overwrite)
    opset = validation.check_positive_int("opset", opset)
    if opset < MIN_OPSET:
        raise ValueError(
            f"Argument `opset` must be at least {MIN_OPSET} (ONNX's LSTM and GRU "
            f"of opset 14); received opset={opset}."
        )
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ValueError(
            f"Argument `path` must name a file ending in '.onnx'; received "
            f"path={path!r}."
        )
    if os.path.isdir(path) or (os.path.exists(path) and not overwrite):
        raise FileExistsError(
            f"Argument `path` names an existing "
            f"{'directory' if os.path.isdir(path) else 'file'}: {path!r}. "
            "Pass overwrite=True to replace an existing .onnx file."
        )
    sites = sites_lib.find_sites(model)
    natives = {}
    reasons = []
    for site in sites:
        stack, reason = native_rnn(site)
        natives[site] = stack
        if stack is None:
            reasons.append(reason)
            if site.layer.stateful and not site.only_ours:
                raise ValueError(
                    f"Argument `model` holds the stateful RNN layer '{site.name}' "
                    "with cells other than keras_lstm_variants cells, and it does "
                    f"not map onto ONNX's operators ({reason}); its states cannot "
                    "be made explicit. Rebuild it with stateful=False and pass "
                    "states through `initial_state` and `return_state`."
                )
    try:
        import onnx
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "export_onnx needs the packages onnx and tf2onnx: "
            "pip install 'keras-lstm-variants[onnx]'."
        ) from error
    function, signature, calls, shapes = _trace(model, sites, natives, input_signature)
    errors = _ErrorRecords()
    logger = logging.getLogger("tf2onnx")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    logger.addHandler(errors)
    try:
        model_proto, _ = tf2onnx.convert.from_function(
            function,
            input_signature=signature,
            opset=opset,
            custom_ops={"EagerPyFunc": PLACEHOLDER_DOMAIN},
        )
        model_proto = _replace_placeholders(model_proto, calls)
        model_proto = _merge_opposite_directions(model_proto)
        model_proto = _drop_unread_outputs(model_proto)
        _declare_output_shapes(model_proto, shapes)
        onnx.checker.check_model(model_proto)
    except Exception as error:
        loops = "; ".join(reasons) or "none"
        said = " ".join(errors.messages)
        raise RuntimeError(
            f"tf2onnx could not convert model '{model.name}' to a valid ONNX "
            f"graph: {error}{' (tf2onnx: ' + said + ')' if said else ''}. RNN "
            f"layers that export as generic loops, not native ONNX nodes: "
            f"{loops}."
        ) from error
    finally:
        logger.removeHandler(errors)
        logger.setLevel(level)
        logger.propagate = propagate
    onnx.save(model_proto, path)
    return path
