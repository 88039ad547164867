"""The LSTM variant space as configuration: Greff et al.'s names, the switches
and the rules that say which combinations exist.

`resolve(variant, switches)` turns a variant name and the switches a user
passed into the full, checked set of switches that `equations.LSTMStep`
holds. A name sets a starting point; any switch given explicitly (not
`None`) overrides it.
"""

import numbers

from keras_lstm_variants.equations import PEEPHOLE_GATES

#: The switches and what the standard LSTM has.
STANDARD = {
    "input_gate": True,
    "forget_gate": True,
    "output_gate": True,
    "input_activation": True,
    "output_activation": True,
    "coupled": False,
    "peephole_gates": (),
    "full_gate_recurrence": False,
    "layer_norm": False,
    "projection_units": None,
    "cell_clip": None,
    "projection_clip": None,
}

#: Greff et al. (2017), "LSTM: A Search Space Odyssey": their vanilla LSTM
#: (peepholes on all three gates) and the eight variants, each one change
#: from it. A gate that a variant drops takes its peephole with it.
GREFF_VARIANTS = {
    "vanilla": {"peephole_gates": PEEPHOLE_GATES},
    "NIG": {"input_gate": False, "peephole_gates": ("forget", "output")},
    "NFG": {"forget_gate": False, "peephole_gates": ("input", "output")},
    "NOG": {"output_gate": False, "peephole_gates": ("input", "forget")},
    "NIAF": {"input_activation": False, "peephole_gates": PEEPHOLE_GATES},
    "NOAF": {"output_activation": False, "peephole_gates": PEEPHOLE_GATES},
    "NP": {"peephole_gates": ()},
    "CIFG": {"coupled": True, "peephole_gates": ("forget", "output")},
    "FGR": {"full_gate_recurrence": True, "peephole_gates": PEEPHOLE_GATES},
}

_BOOLEAN_SWITCHES = (
    "input_gate",
    "forget_gate",
    "output_gate",
    "input_activation",
    "output_activation",
    "coupled",
    "full_gate_recurrence",
    "layer_norm",
)


def canonical_name(variant):
    """The table's spelling of a variant name (names are case-insensitive)."""
    if not isinstance(variant, str):
        raise TypeError(
            f"Argument `variant` must be a variant name or None; received "
            f"variant={variant!r} of type {type(variant).__name__}."
        )
    for name in GREFF_VARIANTS:
        if name.lower() == variant.lower():
            return name
    raise ValueError(
        f"Argument `variant` names no known variant: variant={variant!r}; "
        f"expected one of {tuple(GREFF_VARIANTS)} (case-insensitive) or None."
    )


def resolve(variant, switches):
    """The checked switches of a variant.

    Args:
        variant: A name from `GREFF_VARIANTS` (any case), or `None` for the
            standard LSTM.
        switches: Dict of switches as passed by the user; `None` values take
            the variant's setting.

    Returns:
        A dict with every key of `STANDARD`.

    Raises:
        ValueError: For an unknown name or a combination that does not exist,
            naming the arguments.
        TypeError: For a switch of the wrong type.
    """
    resolved = dict(STANDARD)
    if variant is not None:
        resolved.update(GREFF_VARIANTS[canonical_name(variant)])
    unknown = set(switches) - set(STANDARD)
    if unknown:
        raise TypeError(f"Unknown LSTM switches {sorted(unknown)}.")
    resolved.update({k: v for k, v in switches.items() if v is not None})
    _check_types(resolved)
    _check_combination(resolved)
    return resolved


def _check_types(s):
    for name in _BOOLEAN_SWITCHES:
        if not isinstance(s[name], bool):
            raise TypeError(
                f"Argument `{name}` must be a boolean; received "
                f"{name}={s[name]!r} of type {type(s[name]).__name__}."
            )
    units = s["projection_units"]
    if units is not None and (
        isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0
    ):
        raise ValueError(
            "Argument `projection_units` must be a positive integer or None; "
            f"received projection_units={units!r}."
        )
    if units is not None:
        s["projection_units"] = int(units)
    for name in ("cell_clip", "projection_clip"):
        value = s[name]
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not value > 0
        ):
            raise ValueError(
                f"Argument `{name}` must be a positive number or None; "
                f"received {name}={value!r}."
            )
        if value is not None:
            s[name] = float(value)


def _check_combination(s):
    if s["coupled"] and not s["forget_gate"]:
        raise ValueError(
            "Arguments `coupled=True` and `forget_gate=False` do not combine: "
            "the coupled cell computes the forget gate and sets the input gate "
            "to 1 - forget_gate."
        )
    if s["coupled"] and not s["input_gate"]:
        raise ValueError(
            "Arguments `coupled=True` and `input_gate=False` do not combine: "
            "the coupled cell's input gate is 1 - forget_gate (NIG sets i = 1)."
        )
    if s["full_gate_recurrence"] and not (
        s["input_gate"] and s["forget_gate"] and s["output_gate"]
    ):
        raise ValueError(
            "Argument `full_gate_recurrence=True` needs all three gates; "
            f"received input_gate={s['input_gate']}, forget_gate="
            f"{s['forget_gate']}, output_gate={s['output_gate']}."
        )
    if s["full_gate_recurrence"] and s["coupled"]:
        raise ValueError(
            "Arguments `full_gate_recurrence=True` and `coupled=True` do not "
            "combine: the coupled cell has no input block for the gates' "
            "recurrence to feed."
        )
    if s["projection_clip"] is not None and s["projection_units"] is None:
        raise ValueError(
            f"Argument `projection_clip={s['projection_clip']}` needs a "
            "projection: pass `projection_units` too."
        )
    exists = {
        "input": s["input_gate"] and not s["coupled"],
        "forget": s["forget_gate"],
        "output": s["output_gate"],
    }
    why = {
        "input": "the coupled cell's input gate is 1 - forget_gate"
        if s["coupled"]
        else "input_gate=False",
        "forget": "forget_gate=False",
        "output": "output_gate=False",
    }
    for gate in s["peephole_gates"]:
        if not exists[gate]:
            raise ValueError(
                f"Argument `peephole_gates` holds {gate!r}, but that gate has no "
                f"peephole here ({why[gate]}); received peephole_gates="
                f"{s['peephole_gates']!r}."
            )
