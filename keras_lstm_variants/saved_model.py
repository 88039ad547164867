"""SavedModel export with a `gates` signature and explicit states.

Keras's own `model.export(path)` already works for models built with our
layers: the SavedModel it writes holds the forward pass as a TensorFlow graph
and loads with `tf.saved_model.load` where neither Keras nor this package is
installed. `export_saved_model(model, path)` writes the same serving endpoint
(`serve`, aliased `serving_default`) plus a second signature, `gates`, that
returns every gate activation of every one of our cells, so a deployed model
can be inspected with plain TensorFlow; a model with stateful layers is
exported as its stateless twin whose states are explicit inputs and outputs.

`build_archive` makes the endpoints; `keras_lstm_variants.tflite` converts
the same serving endpoint. TensorFlow is imported inside the functions.
"""

import os
import shutil
import tempfile

import keras
from keras import tree

from keras_lstm_variants import inspection
from keras_lstm_variants import sites as sites_lib
from keras_lstm_variants import validation

#: Name of the serving endpoint (also written as `serving_default`).
SERVE_ENDPOINT = "serve"
#: Name of the signature that returns the gate activations.
GATES_ENDPOINT = "gates"


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
    and returns, for every RNN layer whose gates can be read and every name
    in its cell's `value_names` (for the LSTM family `input_gate`,
    `forget_gate`, `output_gate`, `candidate`, `cell_state`, `hidden_state`),
    a tensor `(batch, time, units)` under the key
    `signature_key(cell name, value name)`, for example
    `peephole_lstm__forget_gate` or
    `bidirectional__backward_coupled_lstm__input_gate`. The values are those
    of `keras_lstm_variants.inspection` (masked steps repeat the last
    unmasked step; the backward layer of a `Bidirectional` in input order).

    Stateful layers: a served model must not keep one client's state in
    variables that every request shares, so the export is the stateless twin
    of the model with the states made explicit. Both signatures take, next to
    the model's inputs, one input per state of each stateful layer, keyed
    `signature_key(layer name, state name)` with the cell's `state_names`
    (`hidden_state` and `cell_state` for an LSTM), shape `(batch, width)`; the
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
    validation.check_bool("gates", gates)
    validation.check_bool("overwrite", overwrite)
    validation.check_bool("verbose", verbose)
    sites = exportable_sites(model)
    path = os.fspath(path)
    _check_saved_model_path(path, overwrite)
    archive = build_archive(model, sites, gates, input_signature)
    _write_saved_model(archive, path, verbose)
    return path


def exportable_sites(model):
    """Checks that `model` can be exported and returns its RNN sites.

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If it is not built, holds none of our layers, or holds a
            stateful RNN layer with cells other than ours.
        RuntimeError: If the Keras backend is not TensorFlow.
    """
    validation.check_exportable_model(model)
    sites = sites_lib.find_sites(model)
    if not sites_lib.ours(sites):
        raise ValueError(
            f"Argument `model` ('{model.name}') has no RNN layer whose gates "
            "can be read (a keras_lstm_variants layer or cell, or Keras's own "
            "LSTM or GRU); use model.export(path) for it."
        )
    for site in sites:
        if site.layer.stateful and not site.only_ours:
            raise ValueError(
                f"Argument `model` holds the stateful RNN layer '{site.name}' "
                "with cells whose values cannot be read; its states "
                "cannot be made explicit. Rebuild it with stateful=False and "
                "pass states through `initial_state` and `return_state`."
            )
    return sites


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


def input_signature_of(model):
    """The model's inputs as `tf.TensorSpec`s with a free batch axis.

    One positional argument holding the model's input structure (a single
    spec, or a list or dict of them), built from the public `model.input`.

    Raises:
        ValueError: If the model does not declare its inputs (a subclassed
            model): pass `input_signature` then.
    """
    import tensorflow as tf

    try:
        inputs = model.input  # a functional model's input structure
    except (AttributeError, ValueError):
        inputs = None
    if inputs is None:
        # A Sequential model started with keras.Input but never called has
        # no `input` yet; its flat `inputs` hold the one input.
        flat = getattr(model, "inputs", None) or []
        inputs = flat[0] if len(flat) == 1 else (list(flat) or None)
    if inputs is None:
        raise ValueError(
            f"Argument `model` ('{model.name}') does not declare its inputs; "
            "pass `input_signature`, a list of tf.TensorSpec, one per argument "
            "of the model's call."
        )
    return [
        tree.map_structure(
            lambda t: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name),
            inputs,
        )
    ]


def as_tensor_spec(spec):
    """A `keras.InputSpec` or `tf.TensorSpec` as a `tf.TensorSpec`."""
    import tensorflow as tf

    if isinstance(spec, tf.TensorSpec):
        return spec
    if isinstance(spec, keras.InputSpec):
        return tf.TensorSpec(spec.shape, spec.dtype or "float32", name=spec.name)
    raise TypeError(
        "Argument `input_signature` must hold keras.InputSpec or tf.TensorSpec "
        f"objects; received {spec!r} of type {type(spec).__name__}."
    )


def _state_signature(stateful, batch_size, dtype):
    """`{state key: tf.TensorSpec}` of the explicit states."""
    import tensorflow as tf

    specs = {}
    for site in stateful:
        for c in site.ours:
            for state, size in zip(
                c.cell.state_names, tree.flatten(c.cell.state_size), strict=True
            ):
                key = sites_lib.signature_key(c.name, state)
                specs[key] = tf.TensorSpec((batch_size, size), dtype, name=key)
    return specs


def _explicit_state_handlers(stateful, given_states, final_states):
    """Handlers that run each stateful layer as its stateless twin.

    Each layer starts from `given_states` (keyed by signature key), leaves
    its state variables alone, and puts its final states into
    `final_states` under the same keys; its outputs are unchanged.
    """

    def handler(site):
        keys = site.state_keys()

        def handle(original, sequences, initial_state=None, mask=None, **kwargs):
            if initial_state is None:
                initial_state = tree.map_structure(lambda k: given_states[k], keys)
            result, states = sites_lib.run_stateless(
                site.layer, sequences, initial_state, mask, False
            )
            for key, state in zip(
                tree.flatten(keys), tree.flatten(states), strict=True
            ):
                final_states[key] = state
            return result

        return handle

    return {site: handler(site) for site in stateful}


def _output_dict(outputs):
    """Model outputs keyed as a SavedModel signature keys them."""
    if isinstance(outputs, dict):
        return dict(outputs)
    return {f"output_{i}": t for i, t in enumerate(tree.flatten(outputs))}


def build_archive(model, sites, gates, input_signature, state_batch_size=None):
    """A `keras.export.ExportArchive` with the serving (and gates) endpoints.

    Both endpoints first check their inputs against the signature's shapes
    (`tf.ensure_shape`), so a wrong feature size fails with an error that
    names the expected shape instead of deep inside the RNN loop.

    Args:
        model: The model, checked by `exportable_sites`.
        sites: Its `exportable_sites(model)`.
        gates: Whether to add the `gates` endpoint.
        input_signature: As for `export_saved_model`, or `None`.
        state_batch_size: Batch axis of the explicit state inputs (`None`:
            any batch size).
    """
    import tensorflow as tf

    if input_signature is None:
        input_signature = input_signature_of(model)
    input_signature = tree.map_structure(as_tensor_spec, list(input_signature))
    stateful = [site for site in sites if site.layer.stateful]
    state_specs = _state_signature(stateful, state_batch_size, model.compute_dtype)
    signature = [*input_signature, state_specs] if stateful else input_signature

    def checked(args):
        args = tree.map_structure(
            lambda x, spec: tf.ensure_shape(x, spec.shape), list(args), signature
        )
        return (args[:-1], args[-1]) if stateful else (args, {})

    def serve(*args):
        inputs, states = checked(args)
        final_states = {}
        handlers = _explicit_state_handlers(stateful, states, final_states)
        with sites_lib.intercepted(handlers):
            outputs = model(*inputs, training=False)
        if not stateful:
            return outputs
        return {**_output_dict(outputs), **final_states}

    def gate_values(*args):
        inputs, states = checked(args)
        starts = {
            site.name: tree.map_structure(lambda k: states[k], site.state_keys())
            for site in stateful
        }
        with inspection.record_gates(model, sites, starts) as recorded:
            model(*inputs, training=False)
        return {
            sites_lib.signature_key(name, value): tensor
            for name, values in recorded.items()
            for value, tensor in values.items()
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVE_ENDPOINT, serve, signature)
    if gates:
        archive.add_endpoint(GATES_ENDPOINT, gate_values, signature)
    return archive
