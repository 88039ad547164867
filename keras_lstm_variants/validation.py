"""Argument and shape checks, raised early with messages that say what was expected."""

import numbers

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
