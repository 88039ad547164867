"""Property-based tests of the variant space (hypothesis).

Hypothesis draws shapes and any combination of the switches. The rules of
which combinations exist are written here from REFERENCE.md, independently
of `variants.py`: a valid combination must build and match the float64 NumPy
oracle (outputs, final states, every inspected value); an invalid one must
fail at construction with a `ValueError`.
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from numpy_reference import to_numpy
from numpy_reference import variant_sequence
from numpy_reference import variant_weights

import keras_lstm_variants as klv
from conftest import randomize_weights

GATES = ("input", "forget", "output")
PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples in every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def combinations(draw):
    """Keyword arguments of `LSTMVariant` (switches and extras) and shapes."""
    switches = {
        "input_gate": draw(st.booleans()),
        "forget_gate": draw(st.booleans()),
        "output_gate": draw(st.booleans()),
        "input_activation": draw(st.booleans()),
        "output_activation": draw(st.booleans()),
        "coupled": draw(st.booleans()),
        "peephole_gates": tuple(g for g in GATES if draw(st.booleans())),
        "full_gate_recurrence": draw(st.booleans()),
        "layer_norm": draw(st.booleans()),
        "projection_units": draw(st.none() | st.integers(1, 4)),
        "cell_clip": draw(st.none() | st.floats(0.1, 2.0)),
        "projection_clip": draw(st.none() | st.floats(0.1, 2.0)),
    }
    shape = (
        draw(st.integers(1, 3)),  # batch
        draw(st.integers(1, 5)),  # time
        draw(st.integers(1, 4)),  # features
    )
    return switches, shape, draw(st.integers(1, 5))  # units


def existing_combinations():
    """`combinations()` repaired into cells that exist (most random draws do
    not: a peephole on a missing gate, FGR without all gates, ...), so the
    oracle test spends its examples on cells."""

    def repair(case):
        s, shape, units = case
        s = dict(s)
        s["coupled"] = s["coupled"] and s["input_gate"] and s["forget_gate"]
        has = {
            "input": s["input_gate"] and not s["coupled"],
            "forget": s["forget_gate"],
            "output": s["output_gate"],
        }
        s["peephole_gates"] = tuple(g for g in s["peephole_gates"] if has[g])
        s["full_gate_recurrence"] = (
            s["full_gate_recurrence"]
            and not s["coupled"]
            and all(s[f"{g}_gate"] for g in GATES)
        )
        if s["projection_units"] is None:
            s["projection_clip"] = None
        return s, shape, units

    return combinations().map(repair)


def exists(s):
    """REFERENCE.md's rules: whether a combination of switches is a cell."""
    has = {
        "input": s["input_gate"] and not s["coupled"],
        "forget": s["forget_gate"],
        "output": s["output_gate"],
    }
    if s["coupled"] and not (s["forget_gate"] and s["input_gate"]):
        return False  # i = 1 − f needs the forget gate (and an input gate to derive)
    if any(not has[g] for g in s["peephole_gates"]):
        return False  # a peephole on a gate that is not computed
    if s["projection_clip"] is not None and s["projection_units"] is None:
        return False
    every_gate = all(s[f"{g}_gate"] for g in GATES) and not s["coupled"]
    return every_gate or not s["full_gate_recurrence"]


def oracle_options(s):
    return {
        "input_gate": s["input_gate"],
        "forget_gate": s["forget_gate"],
        "output_gate": s["output_gate"],
        "input_activation": s["input_activation"],
        "output_activation": s["output_activation"],
        "coupled": s["coupled"],
        "fgr": s["full_gate_recurrence"],
        "layer_norm": s["layer_norm"],
        "cell_clip": s["cell_clip"],
        "projection_clip": s["projection_clip"],
    }


@settings(PROPERTY_SETTINGS, max_examples=200)
@given(combinations())
def test_any_combination_builds_exactly_when_it_exists(case):
    switches, _, units = case
    if exists(switches):
        cell = klv.LSTMVariantCell(units, **switches)
        assert cell.state_size[0] == (switches["projection_units"] or units)
    else:
        with pytest.raises(ValueError):
            klv.LSTMVariantCell(units, **switches)


@PROPERTY_SETTINGS
@given(existing_combinations(), st.integers(0, 2**16))
def test_every_existing_combination_matches_the_oracle(case, seed):
    switches, shape, units = case
    assert exists(switches)
    keras.utils.clear_session()
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")
    layer = klv.LSTMVariant(
        units, return_sequences=True, return_state=True, **switches
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=seed)
    outputs, h, c, *_ = layer(x)

    out_units = switches["projection_units"] or units
    values, h_ref, c_ref = variant_sequence(
        x, variant_weights(layer.cell), oracle_options(switches), units, out_units
    )
    np.testing.assert_allclose(to_numpy(outputs), values["hidden_state"], atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), h_ref, atol=1e-5)
    np.testing.assert_allclose(to_numpy(c), c_ref, atol=1e-5)
    gates = klv.gate_activations(layer, x)[layer.name]
    assert set(gates) == set(values)
    for name, expected in values.items():
        np.testing.assert_allclose(gates[name], expected, atol=1e-5, err_msg=name)
