"""Deployment: a SavedModel with a `gates` signature, and TensorFlow Lite.

Keras's own `model.export(path)` already works for models built with our
layers: the SavedModel it writes holds the forward pass as a TensorFlow graph
and loads with `tf.saved_model.load` where neither Keras nor this package is
installed. This module adds what Keras does not write:

* `export_saved_model(model, path)` writes the same serving endpoint
  (`serve`, aliased `serving_default`) plus a second signature, `gates`, that
  returns every gate activation of every one of our layers, so a deployed
  model can be inspected with plain TensorFlow.
* `export_tflite(model, path, sequence_length=...)` converts the model to
  TensorFlow Lite with builtin ops only, for a fixed sequence length.

Both refuse to write over existing files unless `overwrite=True`, and both
export a model with stateful layers as its stateless twin whose states are
explicit inputs and outputs (see `export_saved_model`).

TensorFlow is imported inside the functions; the rest of the package does not
need it.
"""

import contextlib
import os
import re
import shutil
import tempfile

import keras
from keras import tree
from keras.src.export.export_utils import get_input_signature
from keras.src.export.export_utils import make_tf_tensor_spec

from keras_lstm_variants import fast_path
from keras_lstm_variants import validation
from keras_lstm_variants.cells import LSTMVariantCell
from keras_lstm_variants.equations import GATE_NAMES
from keras_lstm_variants.inspection import record_gates
from keras_lstm_variants.inspection import replaced_calls
from keras_lstm_variants.inspection import rnn_cells
from keras_lstm_variants.inspection import variant_cells
from keras_lstm_variants.inspection import variant_rnn_layers

#: Name of the serving endpoint (also written as `serving_default`).
SERVE_ENDPOINT = "serve"
#: Name of the signature that returns the gate activations.
GATES_ENDPOINT = "gates"
#: Names of the two states of our cells, as used in state signature keys.
STATE_NAMES = ("hidden_state", "cell_state")

_INVALID_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\-]")


def signature_key(layer_name, value_name):
    """The signature key under which one layer's gate or state is exported.

    The rule: split the layer name (as given by
    `inspection.variant_rnn_layers`, for example
    `"bidirectional/forward_peephole_lstm"` or `"rnn/peephole_lstm_cell"` for
    a cell in a stack) at each `/`, append the gate or state name, and join
    the parts with a double underscore `__`. Any character other than ASCII
    letters, digits, `_`, `.` and `-` then becomes `_`, and a key that does
    not start with a letter, digit or `.` gets the prefix `k`, so every key is
    a valid TensorFlow name.

    Args:
        layer_name: The layer's name, with `/` between nesting levels.
        value_name: A gate name from `GATE_NAMES` (or a state name from
            `STATE_NAMES`).

    Returns:
        The key, a string.

    Example:

    >>> signature_key("bidirectional/forward_peephole_lstm", "forget_gate")
    'bidirectional__forward_peephole_lstm__forget_gate'
    """
    key = "__".join([*layer_name.split("/"), value_name])
    key = _INVALID_KEY_CHARACTERS.sub("_", key)
    if not re.match(r"[A-Za-z0-9.]", key):
        key = f"k{key}"
    return key


def export_saved_model(
    model,
    path,
    gates=True,
    overwrite=False,
    input_signature=None,
    verbose=False,
):
    """Exports `model` as a TensorFlow SavedModel, with a `gates` signature.

    The SavedModel serves without Keras and without this package: load it
    with `tf.saved_model.load(path)` and call
    `loaded.signatures["serving_default"]`. That endpoint is the one
    `model.export(path)` writes: same inputs (the batch and, unless
    `input_signature` fixes them, the time axis are `None`) and same outputs
    (`output_0`, `output_1`, ... for a model with a list of outputs).

    With `gates=True` a second signature, `"gates"`, takes the same inputs
    and returns, for every one of our layers and every name in
    `GATE_NAMES` (`input_gate`, `forget_gate`, `output_gate`, `candidate`,
    `cell_state`, `hidden_state`), a tensor `(batch, time, units)` under the
    key `signature_key(layer name, gate name)`, for example
    `peephole_lstm__forget_gate` or
    `bidirectional__backward_coupled_lstm__input_gate`. The values are those
    of `keras_lstm_variants.inspection` (masked steps repeat the last
    unmasked step; the backward layer of a `Bidirectional` in input order).

    Stateful layers: a served model must not keep one client's state in
    variables that every request shares, so the export is the stateless twin
    of the model with the states made explicit. Both signatures take, next to
    the model's inputs, one input per state of each stateful layer, keyed
    `signature_key(layer name, "hidden_state")` and
    `signature_key(layer name, "cell_state")`, shape `(batch, units)`; the
    serving signature returns the model's outputs plus the final states under
    the same keys, to feed back with the next chunk. Zeros start a new
    sequence. Any batch size works. The model's own state variables are
    neither read nor changed. (Keras's `model.export` instead bakes the state
    variables into the SavedModel: every call reads and updates the one
    shared state, with the batch size fixed at build time.)

    Args:
        model: A built Keras model holding at least one of our layers (or a
            `keras.layers.RNN` over one of our cells).
        path: Directory to write the SavedModel to.
        gates: Boolean (default `True`), whether to add the `gates`
            signature.
        overwrite: Boolean (default `False`). If `False`, a `path` that is a
            file or a non-empty directory raises `FileExistsError`. If
            `True`, an existing SavedModel directory at `path` (one holding a
            `saved_model.pb`) is replaced once the new one is written; a file,
            or a directory that is not a SavedModel, is never deleted and
            still raises `FileExistsError`.
        input_signature: Optional list of `keras.InputSpec` or
            `tf.TensorSpec`, one per positional argument of the model's
            call, as for `model.export`. Default: the model's inputs with a
            `None` batch axis.
        verbose: Boolean (default `False`), whether Keras prints the
            endpoints it writes.

    Returns:
        `path`, as a string.

    Raises:
        TypeError: If `model` is not a Keras model, or `gates` or
            `overwrite` is not a boolean.
        ValueError: If the model is not built, holds none of our layers, or
            holds a stateful RNN layer that does not run our cells.
        FileExistsError: If `path` holds files it may not replace (see
            `overwrite`).
        RuntimeError: If the Keras backend is not TensorFlow.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((None, 8)),
        klv.PeepholeLSTM(16, return_sequences=True),
        keras.layers.Dense(1),
    ])
    klv.export_saved_model(model, "exported")

    # Anywhere, with TensorFlow only:
    loaded = tf.saved_model.load("exported")
    y = loaded.signatures["serving_default"](tf.zeros((4, 30, 8)))["output_0"]
    forget = loaded.signatures["gates"](tf.zeros((4, 30, 8)))[
        "peephole_lstm__forget_gate"
    ]
    ```
    """
    _check_bool("gates", gates)
    _check_bool("overwrite", overwrite)
    _check_bool("verbose", verbose)
    _check_model(model)
    path = os.fspath(path)
    _check_saved_model_path(path, overwrite)
    archive = _build_archive(model, gates, input_signature)
    _write_saved_model(archive, path, verbose)
    return path


def export_tflite(
    model,
    path,
    sequence_length,
    batch_size=1,
    overwrite=False,
    optimizations=None,
):
    """Converts `model` to a TensorFlow Lite flatbuffer for a fixed length.

    Writes the model's serving endpoint (as `export_saved_model` with
    `gates=False`, so a stateful model gets explicit state inputs and
    outputs) to a temporary SavedModel with a fixed `(batch_size,
    sequence_length, ...)` input, and converts it with
    `tf.lite.TFLiteConverter.from_saved_model` using TensorFlow Lite builtin
    ops only (no `SELECT_TF_OPS`, so no Flex delegate is needed). The RNN
    loop becomes a TFLite `WHILE`; masks, `Bidirectional`, stacked cells,
    `go_backwards` and `return_state` convert.

    The loop's per-step output buffer needs a static shape, so a looping
    layer needs a fixed batch size as well (the interpreter cannot resize
    it later). A model whose RNN layers all have `unroll=True` has no loop
    and may keep a dynamic batch: pass `batch_size=None`.

    Args:
        model: A built Keras model holding our layers.
        path: File to write, ending in `.tflite`.
        sequence_length: Positive integer, the fixed length of the time axis
            (axis 1 of every model input).
        batch_size: Positive integer (default 1), or `None` for a dynamic
            batch when every RNN layer is unrolled.
        overwrite: Boolean (default `False`). If `False`, an existing `path`
            raises `FileExistsError`; if `True`, an existing file is
            replaced.
        optimizations: Optional list of `tf.lite.Optimize` values passed to
            the converter (for example `[tf.lite.Optimize.DEFAULT]` for
            dynamic-range quantization of the larger weight matrices;
            check the accuracy you get).

    Returns:
        `path`, as a string.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If `sequence_length` or `batch_size` is not a positive
            integer, `path` does not end in `.tflite`, or `batch_size` is
            `None` while some RNN layer is not unrolled.
        FileExistsError: If `path` exists and `overwrite` is `False`, or is
            a directory.

    Example:

    ```python
    klv.export_tflite(model, "model.tflite", sequence_length=30)

    interpreter = tf.lite.Interpreter(model_path="model.tflite")
    runner = interpreter.get_signature_runner("serving_default")
    y = runner(**{name: x})["output_0"]   # x: (1, 30, features)
    ```
    """
    _check_bool("overwrite", overwrite)
    _check_model(model)
    sequence_length = validation.check_positive_int(
        "sequence_length", sequence_length
    )
    if batch_size is not None:
        batch_size = validation.check_positive_int("batch_size", batch_size)
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ValueError(
            f"Argument `path` must name a file ending in '.tflite'; received "
            f"path={path!r}."
        )
    if batch_size is None:
        looping = [
            layer.name
            for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.RNN) and not layer.unroll
        ]
        if looping:
            raise ValueError(
                "Argument `batch_size=None` (a dynamic batch) needs every RNN "
                f"layer to have `unroll=True`, but {looping} loop: TensorFlow "
                "Lite needs a static batch size for the loop's output buffer. "
                "Pass a positive integer `batch_size`."
            )
    if os.path.isdir(path) or (os.path.exists(path) and not overwrite):
        raise FileExistsError(
            f"Argument `path` names an existing "
            f"{'directory' if os.path.isdir(path) else 'file'}: {path!r}. "
            "Pass overwrite=True to replace an existing .tflite file."
        )

    import tensorflow as tf

    signature = [
        tree.map_structure(
            lambda spec: _fix_shape(spec, batch_size, sequence_length), arg
        )
        for arg in get_input_signature(model)
    ]
    # TensorFlow Lite converts the generic loop with builtin ops; the fast
    # path's loops (same numbers) have dynamic sizes that it cannot lower.
    with fast_path.generic_loop(), tempfile.TemporaryDirectory() as saved_model_dir:
        archive = _build_archive(
            model, False, signature, state_batch_size=batch_size
        )
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if optimizations:
            converter.optimizations = list(optimizations)
        flatbuffer = converter.convert()
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


# ---------------------------------------------------------------------------
# Argument checks.


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(
            f"Argument `{name}` must be a boolean; received {name}={value!r} "
            f"of type {type(value).__name__}."
        )


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Argument `model` must be a keras.Model; received "
            f"model={model!r} of type {type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"Argument `model` ('{model.name}') is not built; build it (call "
            "it once, or start it with keras.Input) before exporting."
        )
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "keras_lstm_variants.export writes TensorFlow SavedModels and needs "
            f"the TensorFlow backend; the Keras backend is "
            f"'{keras.backend.backend()}'. Set KERAS_BACKEND=tensorflow."
        )
    if not variant_rnn_layers(model):
        raise ValueError(
            f"Argument `model` ('{model.name}') has no layer that runs a "
            "keras_lstm_variants cell; use model.export(path) for it."
        )
    _stateful_layers(model)  # raises early on stateful layers we cannot export


def _check_saved_model_path(path, overwrite):
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise FileExistsError(
            f"Argument `path` names an existing file, {path!r}; a SavedModel "
            "is a directory. Choose another path."
        )
    if not os.listdir(path):
        return
    if not overwrite:
        raise FileExistsError(
            f"Argument `path` names a directory that already holds files: "
            f"{path!r}. Pass overwrite=True to replace an existing SavedModel, "
            "or choose an empty or new directory."
        )
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise FileExistsError(
            f"Argument `path` names a non-empty directory that is not a "
            f"SavedModel (no saved_model.pb): {path!r}. overwrite=True only "
            "replaces an existing SavedModel; choose another path."
        )


def _write_saved_model(archive, path, verbose):
    """Writes next to `path` first, then swaps, so a failure keeps the old one."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive.write_out(staging, verbose=verbose)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)


# ---------------------------------------------------------------------------
# Building the endpoints.


def _stateful_layers(model):
    """`[(name, layer, state keys)]` of the stateful RNN layers of `model`.

    `state keys` mirrors the layer's state structure: `[h_key, c_key]` for a
    single cell, a list of such pairs for a stack of our cells.
    """
    ours = {id(layer): name for name, layer, _ in variant_rnn_layers(model)}
    found = []
    for layer in model._flatten_layers(include_self=False):
        if not (isinstance(layer, keras.layers.RNN) and layer.stateful):
            continue
        stacked = isinstance(layer.cell, keras.layers.StackedRNNCells)
        foreign = [
            c for c in rnn_cells(layer) if not isinstance(c, LSTMVariantCell)
        ]
        if id(layer) not in ours or foreign:
            raise ValueError(
                f"Argument `model` holds the stateful RNN layer '{layer.name}' "
                "with cells other than keras_lstm_variants cells; its states "
                "cannot be made explicit. Rebuild it with stateful=False and "
                "pass states through `initial_state` and `return_state`."
            )
        name = ours[id(layer)]
        keys = [
            [signature_key(f"{name}{suffix}", s) for s in STATE_NAMES]
            for suffix, _ in variant_cells(layer)
        ]
        if not stacked:
            keys = keys[0]
        found.append((name, layer, keys))
    _check_unique([k for _, _, keys in found for k in tree.flatten(keys)])
    return found


def _check_unique(keys):
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(
            f"Layer names map to the same signature keys {duplicates}; give "
            "the layers distinct names (see `signature_key` for the rule)."
        )


@contextlib.contextmanager
def _explicit_states(stateful, given_states):
    """Runs stateful layers on `given_states`, collecting their final states.

    While open, each stateful layer in `stateful` runs as its stateless twin:
    initial states come from `given_states` (a dict keyed by signature key),
    its state variables are left alone, and its final states land in the
    yielded dict under the same keys. The layer's outputs are unchanged.
    """
    final_states = {}

    def wrap(layer, keys):
        def make_call(original):
            def call(sequences, initial_state=None, mask=None, training=False, **kw):
                if initial_state is None:
                    initial_state = tree.map_structure(
                        lambda k: given_states[k], keys
                    )
                return_state = layer.return_state
                layer.stateful, layer.return_state = False, True
                try:
                    result = original(
                        sequences,
                        initial_state=initial_state,
                        mask=mask,
                        training=training,
                        **kw,
                    )
                finally:
                    layer.stateful, layer.return_state = True, return_state
                output, *states = result
                for key, state in zip(
                    tree.flatten(keys), tree.flatten(states), strict=True
                ):
                    final_states[key] = state
                return result if return_state else output

            return call

        return layer, make_call

    with replaced_calls([wrap(layer, keys) for _, layer, keys in stateful]):
        yield final_states


def _output_dict(outputs):
    """Model outputs keyed as a SavedModel signature keys them."""
    if isinstance(outputs, dict):
        return dict(outputs)
    return {f"output_{i}": t for i, t in enumerate(tree.flatten(outputs))}


def _build_archive(model, gates, input_signature, state_batch_size=None):
    """A `keras.export.ExportArchive` with the serving (and gates) endpoints.

    Both endpoints first check their inputs against the signature's shapes
    (`tf.ensure_shape`), so a wrong feature size fails with an error that
    names the expected shape instead of deep inside the RNN loop.
    """
    import tensorflow as tf

    if input_signature is None:
        input_signature = get_input_signature(model)
    input_signature = tree.map_structure(make_tf_tensor_spec, input_signature)
    stateful = _stateful_layers(model)
    _check_unique(
        [signature_key(n, g) for n in _gate_layer_names(model) for g in GATE_NAMES]
    )
    state_specs = {}
    for _, layer, keys in stateful:
        pairs = keys if isinstance(keys[0], list) else [keys]
        for cell, pair in zip(rnn_cells(layer), pairs, strict=True):
            for key in pair:
                state_specs[key] = tf.TensorSpec(
                    (state_batch_size, cell.units), layer.compute_dtype, name=key
                )
    signature = [*input_signature, state_specs] if stateful else input_signature

    def checked(args):
        args = tree.map_structure(
            lambda x, spec: tf.ensure_shape(x, spec.shape), list(args), signature
        )
        return (args[:-1], args[-1]) if stateful else (args, {})

    def serve(*args):
        inputs, states = checked(args)
        with _explicit_states(stateful, states) as final_states:
            outputs = model(*inputs, training=False)
        if not stateful:
            return outputs
        return {**_output_dict(outputs), **final_states}

    def gate_values(*args):
        inputs, states = checked(args)
        with record_gates(model) as recorded, _explicit_states(stateful, states):
            model(*inputs, training=False)
        return {
            signature_key(name, gate): values[gate]
            for name, values in recorded.items()
            for gate in GATE_NAMES
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVE_ENDPOINT, serve, signature)
    if gates:
        archive.add_endpoint(GATES_ENDPOINT, gate_values, signature)
    return archive


def _gate_layer_names(model):
    """Names of every cell whose gates the `gates` signature returns."""
    return [
        f"{name}{suffix}"
        for name, layer, _ in variant_rnn_layers(model)
        for suffix, _ in variant_cells(layer)
    ]


def _fix_shape(spec, batch_size, sequence_length):
    """`spec` with the batch axis and the time axis (axis 1) fixed."""
    import tensorflow as tf

    spec = make_tf_tensor_spec(spec)
    shape = list(spec.shape)
    shape[0] = batch_size
    if len(shape) >= 2:
        shape[1] = sequence_length
    return tf.TensorSpec(shape, spec.dtype, name=spec.name)
