"""gate_activations: every gate at every step, against the float64 NumPy reference.

The reference below runs `numpy_reference.lstm_step` (written from the formulas)
step by step, with the masking rule of `keras.layers.RNN`, and keeps all six
values of each step. Every check compares the package's gates with it, with the
layer's own output sequence, and with the cell-state recurrence.
"""

import keras
import numpy as np
import pytest
from numpy_reference import cell_weights
from numpy_reference import lstm_step
from numpy_reference import to_numpy

import keras_lstm_variants as klv
from conftest import ALL_CONFIGS
from conftest import LAYER_CLASSES
from conftest import cell_kwargs
from conftest import config_id
from conftest import randomize_weights
from keras_lstm_variants import GATE_NAMES
from keras_lstm_variants import gate_activations

ATOL = 1e-5
GATES_IN_UNIT_INTERVAL = ("input_gate", "forget_gate", "output_gate")


def reference_gates(x, cell, mask=None, go_backwards=False, zero_output_for_mask=False):
    """All six values of each step of one cell, float64, in processing order.

    At a masked step the states are carried over and the returned values repeat
    the previous step's (zeros before the first step), or are zeros with
    `zero_output_for_mask`: the rule of `keras.layers.RNN` for its outputs.
    """
    weights = cell_weights(cell)
    coupled = isinstance(cell, klv.CoupledLSTMCell)
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    units = cell.units
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    previous = np.zeros((6, batch, units))
    steps = []
    for t in range(time - 1, -1, -1) if go_backwards else range(time):
        values = np.stack(lstm_step(x[:, t], h, c, weights, coupled))
        if mask is None:
            h, c = values[5], values[4]
        else:
            keep = np.asarray(mask[:, t], bool)[:, None]
            h = np.where(keep, values[5], h)
            c = np.where(keep, values[4], c)
            fill = np.zeros_like(previous) if zero_output_for_mask else previous
            values = np.where(keep[None], values, fill)
        previous = values
        steps.append(values)
    stacked = np.stack(steps, axis=2)  # (6, batch, time, units)
    return dict(zip(GATE_NAMES, stacked, strict=True))


def assert_gates_close(actual, expected):
    assert set(actual) == set(GATE_NAMES)
    for gate in GATE_NAMES:
        np.testing.assert_allclose(
            actual[gate], expected[gate], atol=ATOL, rtol=0, err_msg=gate
        )


def assert_recurrence(gates, initial_cell_state=None):
    """c[t] = f[t] * c[t-1] + i[t] * g[t], with c[-1] = 0 unless given."""
    c = gates["cell_state"].astype(np.float64)
    previous = (
        np.zeros_like(c[:, :1])
        if initial_cell_state is None
        else (initial_cell_state[:, None])
    )
    c_prev = np.concatenate([previous, c[:, :-1]], axis=1)
    expected = gates["forget_gate"] * c_prev + gates["input_gate"] * gates["candidate"]
    np.testing.assert_allclose(c, expected, atol=ATOL, rtol=0)


def sequences(seed, batch=3, time=6, features=4):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch, time, features)).astype("float32")


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_gates_match_reference_outputs_and_recurrence(config):
    variant, peepholes = config
    x = sequences(1)
    layer = LAYER_CLASSES[variant](
        5, return_sequences=True, **cell_kwargs(variant, peepholes)
    )
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    randomize_weights(layer, seed=2)

    gates = gate_activations(model, x)

    assert list(gates) == [layer.name]
    layer_gates = gates[layer.name]
    for gate in GATE_NAMES:
        assert layer_gates[gate].shape == (3, 6, 5)
        assert isinstance(layer_gates[gate], np.ndarray)
    assert_gates_close(layer_gates, reference_gates(x, layer.cell))
    np.testing.assert_allclose(
        layer_gates["hidden_state"], to_numpy(model(x)), atol=1e-6, rtol=0
    )
    assert_recurrence(layer_gates)
    for gate in GATES_IN_UNIT_INTERVAL:
        assert layer_gates[gate].min() >= 0.0 and layer_gates[gate].max() <= 1.0
    if variant == "coupled":
        np.testing.assert_allclose(
            layer_gates["input_gate"], 1.0 - layer_gates["forget_gate"], atol=1e-7
        )


def test_rnn_over_our_cell_and_a_layer_passed_directly():
    x = sequences(3)
    layer = keras.layers.RNN(
        klv.PeepholeLSTMCell(4, peephole_gates=("forget",)), return_sequences=True
    )
    layer.build(x.shape)
    randomize_weights(layer, seed=4)
    output = to_numpy(layer(x))

    gates = gate_activations(layer, x)

    assert list(gates) == [layer.name]
    assert_gates_close(gates[layer.name], reference_gates(x, layer.cell))
    np.testing.assert_allclose(gates[layer.name]["hidden_state"], output, atol=1e-6)


def test_bidirectional_with_stacked_cells():
    x = sequences(5, time=5)
    cells = [
        klv.CoupledLSTMCell(3, peephole_gates=("output",)),
        klv.PeepholeLSTMCell(4),
    ]
    rnn = keras.layers.RNN(cells, return_sequences=True, name="stack")
    wrapper = keras.layers.Bidirectional(rnn, name="bi")
    model = keras.Sequential([keras.Input(x.shape[1:]), wrapper])
    randomize_weights(wrapper, seed=6)

    gates = gate_activations(model, x)

    forward, backward = wrapper.forward_layer, wrapper.backward_layer
    names = [
        f"bi/{layer.name}/{cell.name}"
        for layer in (forward, backward)
        for cell in layer.cell.cells
    ]
    assert list(gates) == names
    output = to_numpy(model(x))
    for k, layer in enumerate((forward, backward)):
        first, second = layer.cell.cells
        backwards = k == 1
        expected_first = reference_gates(x, first, go_backwards=backwards)
        expected_second = reference_gates(expected_first["hidden_state"], second)
        for cell, expected in ((first, expected_first), (second, expected_second)):
            if backwards:  # the backward layer's values come back in input order
                expected = {g: v[:, ::-1] for g, v in expected.items()}
            actual = gates[f"bi/{layer.name}/{cell.name}"]
            assert_gates_close(actual, expected)
            if backwards:  # the recurrence runs in processing order
                actual = {g: v[:, ::-1] for g, v in actual.items()}
            assert_recurrence(actual)
        # The last cell's hidden state is this direction's half of the output.
        half = output[..., 4 * k : 4 * (k + 1)]
        last = gates[f"bi/{layer.name}/{second.name}"]["hidden_state"]
        np.testing.assert_allclose(last, half, atol=1e-6)


def test_go_backwards_gives_processing_order_like_the_output():
    x = sequences(7)
    layer = klv.StandardLSTM(4, return_sequences=True, go_backwards=True)
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    randomize_weights(layer, seed=8)

    gates = gate_activations(model, x)[layer.name]

    assert_gates_close(gates, reference_gates(x, layer.cell, go_backwards=True))
    np.testing.assert_allclose(gates["hidden_state"], to_numpy(model(x)), atol=1e-6)
    assert_recurrence(gates)


@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_masked_steps(zero_output_for_mask):
    x = sequences(9, batch=3, time=7)
    mask = np.ones((3, 7), bool)
    mask[0, 5:] = False  # right padding
    mask[1, :2] = False  # left padding: zeros before the first unmasked step
    mask[2, 3] = False  # a hole in the middle
    x[~mask] = 0.0
    layer = klv.PeepholeLSTM(
        4, return_sequences=True, zero_output_for_mask=zero_output_for_mask
    )
    model = keras.Sequential(
        [keras.Input(x.shape[1:]), keras.layers.Masking(0.0), layer]
    )
    randomize_weights(layer, seed=10)

    gates = gate_activations(model, x)[layer.name]

    expected = reference_gates(
        x, layer.cell, mask=mask, zero_output_for_mask=zero_output_for_mask
    )
    assert_gates_close(gates, expected)
    np.testing.assert_allclose(gates["hidden_state"], to_numpy(model(x)), atol=1e-6)
    if zero_output_for_mask:
        for gate in GATE_NAMES:
            assert np.all(gates[gate][~mask] == 0.0), gate
    else:
        # Masked steps repeat the last unmasked step; zeros before the first.
        for gate in GATE_NAMES:
            values = gates[gate]
            np.testing.assert_array_equal(values[0, 5], values[0, 4])
            np.testing.assert_array_equal(values[0, 6], values[0, 4])
            np.testing.assert_array_equal(values[1, :2], 0.0)
            np.testing.assert_array_equal(values[2, 3], values[2, 2])


def test_nested_model_names_and_several_layers():
    x = sequences(11)
    inner = keras.Sequential(
        [keras.Input(x.shape[1:]), klv.CoupledLSTM(3, return_sequences=True)],
        name="inner",
    )
    outer_layer = klv.StandardLSTM(2, return_sequences=True, name="top")
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            inner,
            keras.layers.LSTM(3, return_sequences=True),
            outer_layer,
        ]
    )
    randomize_weights(model, seed=12)

    gates = gate_activations(model, x)

    inner_layer, keras_layer = inner.layers[0], model.layers[1]
    assert list(gates) == [f"inner/{inner_layer.name}", keras_layer.name, "top"]
    assert_gates_close(
        gates[f"inner/{inner_layer.name}"], reference_gates(x, inner_layer.cell)
    )
    assert_gates_close(
        gates[keras_layer.name], reference_gates(to_numpy(inner(x)), keras_layer.cell)
    )
    np.testing.assert_allclose(
        gates["top"]["hidden_state"], to_numpy(model(x)), atol=1e-6
    )


def test_batch_size_splits_and_concatenates():
    x = sequences(13, batch=5)
    layer = klv.CoupledLSTM(3, return_sequences=True)
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    randomize_weights(layer, seed=14)

    whole = gate_activations(model, x)[layer.name]
    split = gate_activations(model, x, batch_size=2)[layer.name]

    for gate in GATE_NAMES:
        assert split[gate].shape == (5, 6, 3)
        np.testing.assert_allclose(split[gate], whole[gate], atol=1e-6)
    assert_gates_close(split, reference_gates(x, layer.cell))


def test_last_output_layer_still_gives_every_step():
    x = sequences(15)
    layer = klv.PeepholeLSTM(3)  # return_sequences=False
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    randomize_weights(layer, seed=16)

    gates = gate_activations(model, x)[layer.name]

    assert gates["hidden_state"].shape == (3, 6, 3)
    np.testing.assert_allclose(
        gates["hidden_state"][:, -1], to_numpy(model(x)), atol=1e-6
    )


# Bad input.


def _model(time=6, features=4):
    return keras.Sequential(
        [keras.Input((time, features)), klv.StandardLSTM(3, return_sequences=True)]
    )


def test_inputs_that_do_not_fit():
    model = _model()
    # Wrong feature size, wrong time length, rank 2, rank 4.
    for shape in [(3, 6, 5), (3, 7, 4), (3, 4), (6, 4, 1, 1)]:
        with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 6, 4\)"):
            gate_activations(model, np.zeros(shape, "float32"))


def test_free_time_axis_accepts_any_length():
    model = _model(time=None)
    gates = gate_activations(model, sequences(0, time=9))
    assert next(iter(gates.values()))["forget_gate"].shape == (3, 9, 3)


def test_bad_batch_size():
    model = _model()
    for bad in [0, -2, 1.5, True, "4"]:
        with pytest.raises(ValueError, match=r"`batch_size` must be a positive int"):
            gate_activations(model, sequences(0), batch_size=bad)


def test_empty_batch_and_none_and_strings():
    model = _model()
    with pytest.raises(ValueError, match="at least one sequence"):
        gate_activations(model, np.zeros((0, 6, 4), "float32"))
    with pytest.raises(ValueError, match="received None"):
        gate_activations(model, None)
    with pytest.raises(ValueError, match="must hold numbers"):
        gate_activations(model, np.full((1, 6, 4), "a"))


def test_wrong_number_of_inputs():
    with pytest.raises(ValueError, match=r"holds 2 array\(s\) but .* has 1 input"):
        gate_activations(_model(), [sequences(0), sequences(1)])


# Issue 10.1 and 10.2: inspection only reads.


def test_concurrent_inspection_from_threads_gets_its_own_values():
    import concurrent.futures

    layer = klv.PeepholeLSTM(4, return_sequences=True)
    model = keras.Sequential([keras.Input((6, 4)), layer])
    randomize_weights(layer, seed=21)
    requests = [sequences(100 + k, batch=2) for k in range(24)]
    expected = [reference_gates(x, layer.cell) for x in requests]

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda x: gate_activations(model, x), requests))

    for got, want in zip(results, expected, strict=True):
        assert_gates_close(got[layer.name], want)
    # Nothing is left on the layer: its `call` is the class's again.
    assert "call" not in vars(layer)


def test_inspection_leaves_no_call_behind_after_an_error():
    layer = klv.StandardLSTM(3)
    model = keras.Sequential([keras.Input((6, 4)), layer])
    with pytest.raises(ValueError):
        gate_activations(model, np.zeros((2, 6, 5), "float32"))
    from keras_lstm_variants import inspection

    with pytest.raises(RuntimeError, match="boom"), inspection.record_gates(model):
        raise RuntimeError("boom")
    assert "call" not in vars(layer)


def test_other_threads_run_the_model_as_usual_while_one_records():
    import threading

    from keras_lstm_variants import inspection

    layer = klv.CoupledLSTM(3, return_sequences=True)
    model = keras.Sequential([keras.Input((6, 4)), layer])
    x = sequences(30)
    expected = to_numpy(model(x))
    seen = {}

    def other():
        with inspection.record_gates(model) as recorded_elsewhere:
            pass
        seen["recorded"] = recorded_elsewhere
        seen["output"] = to_numpy(model(x))

    with inspection.record_gates(model) as recorded:
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        model(x)
    assert seen["recorded"] == {}
    np.testing.assert_allclose(seen["output"], expected, atol=1e-6)
    assert list(recorded) == [layer.name]


@pytest.mark.parametrize("variant", ["standard", "peephole", "coupled"])
def test_stateful_layers_are_read_not_advanced(variant):
    x = sequences(40, batch=2)
    layer = LAYER_CLASSES[variant](3, stateful=True, return_sequences=True)
    plain = keras.layers.LSTM(2, stateful=True)
    model = keras.Sequential([keras.Input(x.shape[1:], batch_size=2), layer, plain])
    randomize_weights(layer, seed=41)
    model(x)  # the states are now those after one chunk
    before = [to_numpy(v) for v in (*layer.states, *plain.states)]

    gates = gate_activations(model, x)[layer.name]

    after = [to_numpy(v) for v in (*layer.states, *plain.states)]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    # They start from the current states: the next chunk's outputs.
    np.testing.assert_allclose(
        gates["hidden_state"], to_numpy(layer(x)), atol=1e-6, rtol=0
    )
    with pytest.raises(ValueError, match=r"states for batches of 2.*inputs hold 3"):
        gate_activations(model, sequences(42, batch=3))


# Issue 10.15: datasets and generators.


def test_generators_and_datasets_give_the_arrays_result():
    layer = klv.StandardLSTM(3, return_sequences=True)
    model = keras.Sequential([keras.Input((6, 4)), layer])
    x = sequences(50, batch=5)
    whole = gate_activations(model, x)[layer.name]

    def batches():
        yield x[:2], np.zeros(2)  # (x, y) as fit and predict take them
        yield x[2:]

    from_generator = gate_activations(model, batches())[layer.name]
    for gate in GATE_NAMES:
        np.testing.assert_allclose(from_generator[gate], whole[gate], atol=1e-6)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(5))).batch(2)
        from_dataset = gate_activations(model, dataset)[layer.name]
        for gate in GATE_NAMES:
            np.testing.assert_allclose(from_dataset[gate], whole[gate], atol=1e-6)
    with pytest.raises(ValueError, match="yielded no batch"):
        gate_activations(model, iter([]))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 6, 4\)"):
        gate_activations(model, iter([np.zeros((2, 6, 5), "float32")]))


def test_zero_length_sequences_are_refused():
    with pytest.raises(ValueError, match="at least one time step"):
        gate_activations(_model(time=None), np.zeros((2, 0, 4), "float32"))
