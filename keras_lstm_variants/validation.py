"""Argument and shape checks, raised early with messages that say what was expected."""

import numbers

import keras
from keras import ops

from keras_lstm_variants.equations import PEEPHOLE_GATES


def check_positive_int(name, value):
    """Returns argument `name`'s `value` as an `int`, or raises if it is not a
    positive integer (Python or NumPy; not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Argument `{name}` must be a positive integer; received "
            f"{name}={value!r} of type {type(value).__name__}."
        )
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive integer; received {name}={value}."
        )
    return int(value)


def check_units(units):
    """Returns `units` as an `int`, or raises if it is not a positive integer."""
    return check_positive_int("units", units)


def check_bool(name, value):
    """Returns `value`, or raises a `TypeError` if it is not a boolean."""
    if not isinstance(value, bool):
        raise TypeError(
            f"Argument `{name}` must be a boolean; received {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    return value


def refuse_arguments(owner, kwargs, names, why):
    """Raises a `TypeError` if `kwargs` holds one of `names`, saying `why`."""
    for name in names:
        if name in kwargs:
            raise TypeError(
                f"{owner} takes no argument `{name}` ({why}); received "
                f"{name}={kwargs[name]!r}."
            )


def check_rate(name, value):
    """Returns a dropout rate as a `float`, or raises if it is not in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Argument `{name}` must be a float in [0, 1); "
            f"received {name}={value!r} of type {type(value).__name__}."
        )
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"Argument `{name}` must be a float in [0, 1) (the fraction of units "
            f"to drop); received {name}={value!r}."
        )
    return float(value)


def check_peephole_gates(peephole_gates, allowed=PEEPHOLE_GATES, why=""):
    """Returns the chosen peephole gates as a tuple in canonical order.

    Args:
        peephole_gates: A list or tuple of gate names.
        allowed: The gate names this cell accepts.
        why: Appended to the message when a known gate is not allowed here.
    """
    if isinstance(peephole_gates, str) or not isinstance(
        peephole_gates, (list, tuple)
    ):
        raise TypeError(
            "Argument `peephole_gates` must be a list or tuple of gate names "
            f"from {allowed}; received peephole_gates={peephole_gates!r}."
        )
    seen = set()
    for gate in peephole_gates:
        if gate not in PEEPHOLE_GATES:
            raise ValueError(
                f"Argument `peephole_gates` holds an unknown gate {gate!r}; "
                f"expected names from {allowed}. "
                f"Received peephole_gates={peephole_gates!r}."
            )
        if gate not in allowed:
            raise ValueError(
                f"Argument `peephole_gates` may not hold {gate!r} for this cell; "
                f"expected names from {allowed}.{why} "
                f"Received peephole_gates={peephole_gates!r}."
            )
        if gate in seen:
            raise ValueError(
                f"Argument `peephole_gates` names {gate!r} more than once; "
                f"each gate may appear once. "
                f"Received peephole_gates={peephole_gates!r}."
            )
        seen.add(gate)
    return tuple(g for g in PEEPHOLE_GATES if g in seen)


def check_step_input_shape(shape, expected_dim, where):
    """Checks a cell's step input: rank 2, and the feature size it was built with."""
    _check_input_shape(shape, "(batch, features)", expected_dim, where)


def check_sequence_shape(shape, expected_dim, where):
    """Checks a layer's input: rank 3, and the feature size it was built with."""
    _check_input_shape(shape, "(batch, timesteps, features)", expected_dim, where)


def _check_input_shape(shape, layout, expected_dim, where):
    shape = tuple(shape)
    rank = layout.count(",") + 1
    if len(shape) != rank:
        raise ValueError(
            f"{where} expects inputs of rank {rank}, {layout}; "
            f"received inputs of shape {shape}."
        )
    features = shape[-1]
    if features is None:
        raise ValueError(
            f"{where} needs a known feature size (the last axis of its inputs); "
            f"received inputs of shape {shape}."
        )
    if expected_dim is not None and features != expected_dim:
        raise ValueError(
            f"{where} was built for inputs with {expected_dim} features "
            f"(last axis) but received inputs of shape {shape} "
            f"with {features} features."
        )


def check_sequences(sequences, expected_dim, compute_dtype, where):
    """Checks a layer's input sequences and returns them as numbers.

    Rank 3 with the feature size the layer was built with, at least one time
    step where the length is known, and a numeric dtype: integers are cast to
    the layer's compute dtype (as `keras.layers.LSTM` accepts them); strings
    and other non-numeric dtypes raise a `TypeError`.
    """
    check_sequence_shape(sequences.shape, expected_dim, where)
    if sequences.shape[1] == 0:
        raise ValueError(
            f"{where} needs at least one time step; received inputs of shape "
            f"{tuple(sequences.shape)} (axis 1 is the time axis)."
        )
    dtype = keras.backend.standardize_dtype(sequences.dtype)
    if dtype == "bool" or dtype.startswith(("int", "uint")):
        return ops.cast(sequences, compute_dtype)
    if not dtype.startswith(("float", "bfloat")):
        raise TypeError(
            f"{where} expects numeric inputs (floats or integers); received "
            f"inputs of dtype {dtype}."
        )
    return sequences


def check_mask(mask, sequences_shape, where):
    """Checks that a mask has the shape `(batch, timesteps)` of the inputs."""
    if mask is None:
        return
    masks = keras.tree.flatten(mask)
    if not masks:
        return
    shape = tuple(masks[0].shape)
    expected = tuple(sequences_shape[:2])
    fits = len(shape) == 2 and all(
        a is None or b is None or a == b for a, b in zip(shape, expected, strict=True)
    )
    if not fits:
        raise ValueError(
            f"{where} expects a mask of shape (batch, timesteps) = {expected}, "
            f"matching its inputs; received a mask of shape {shape}."
        )


def check_initial_state(initial_state, batch_size, state_size, where):
    """Checks the number and the shapes of the initial states given to a layer."""
    if initial_state is None:
        return
    given = keras.tree.flatten(initial_state)
    sizes = keras.tree.flatten(state_size)
    if len(given) != len(sizes):
        raise ValueError(
            f"{where} expects {len(sizes)} initial state(s) of widths {sizes}; "
            f"received {len(given)}."
        )
    for k, (state, size) in enumerate(zip(given, sizes, strict=True)):
        shape = tuple(state.shape)
        fits = (
            len(shape) == 2
            and shape[-1] in (None, size)
            and (batch_size is None or shape[0] in (None, batch_size))
        )
        if not fits:
            raise ValueError(
                f"{where} expects initial state {k} of shape (batch, {size}) "
                f"with the inputs' batch size {batch_size}; received shape "
                f"{shape}."
            )


def check_exportable_model(model):
    """Checks that `model` is a built Keras model, on the TensorFlow backend."""
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
            "keras_lstm_variants writes TensorFlow SavedModels and TensorFlow "
            "Lite files on the TensorFlow backend only; the Keras backend is "
            f"'{keras.backend.backend()}'. Set KERAS_BACKEND=tensorflow."
        )


#: The names of `tf.lite.Optimize`'s members.
TFLITE_OPTIMIZATIONS = (
    "DEFAULT",
    "OPTIMIZE_FOR_SIZE",
    "OPTIMIZE_FOR_LATENCY",
    "EXPERIMENTAL_SPARSITY",
)


def check_optimizations(optimizations):
    """Returns the names of a list of `tf.lite.Optimize` values (or names)."""
    if optimizations is None:
        return ()
    if isinstance(optimizations, (str, bytes)) or not isinstance(
        optimizations, (list, tuple)
    ):
        raise TypeError(
            "Argument `optimizations` must be a list of tf.lite.Optimize "
            f"values (for example [tf.lite.Optimize.DEFAULT]) or None; received "
            f"optimizations={optimizations!r}."
        )
    names = []
    for item in optimizations:
        name = item if isinstance(item, str) else getattr(item, "name", None)
        if name not in TFLITE_OPTIMIZATIONS:
            raise ValueError(
                "Argument `optimizations` holds "
                f"{item!r}; expected tf.lite.Optimize values or their names "
                f"{TFLITE_OPTIMIZATIONS}."
            )
        names.append(name)
    return tuple(names)
