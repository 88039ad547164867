"""Layer behaviour: masking, stateful, direction, stacking, unrolling, dropout,
learning, mixed precision; numbers against the float64 NumPy reference."""

import keras
import numpy as np
import pytest
from numpy_reference import assert_allclose
from numpy_reference import assert_array_equal
from numpy_reference import cell_weights
from numpy_reference import lstm_sequence
from numpy_reference import to_numpy

import keras_lstm_variants as klv
from conftest import LAYER_CLASSES
from conftest import randomize_weights

VARIANTS = ["standard", "peephole", "coupled"]


def _random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _assert_close(got, want):
    assert_allclose(to_numpy(got), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_right_padded_masked_sequences_end_in_unpadded_states(variant):
    lengths = [7, 3, 5, 1]
    x = _random((4, 7, 3), seed=1)
    padded = x.copy()
    for b, n in enumerate(lengths):
        padded[b, n:] = 0.0
    inputs = keras.Input((None, 3))
    layer = LAYER_CLASSES[variant](5, return_state=True)
    model = keras.Model(inputs, layer(keras.layers.Masking()(inputs)))
    randomize_weights(layer, seed=2)
    _, h, c = model(padded)
    for b, n in enumerate(lengths):
        _, h_alone, c_alone = layer(x[b : b + 1, :n])
        _assert_close(h[b : b + 1], to_numpy(h_alone))
        _assert_close(c[b : b + 1], to_numpy(c_alone))
        ref = lstm_sequence(
            x[b : b + 1, :n], cell_weights(layer.cell), variant == "coupled"
        )
        _assert_close(h[b : b + 1], ref[1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_mask_from_embedding_matches_reference(variant):
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]])
    embedding = keras.layers.Embedding(10, 3, mask_zero=True)
    layer = LAYER_CLASSES[variant](4, return_sequences=True)
    model = keras.Sequential([keras.Input((5,), dtype="int32"), embedding, layer])
    randomize_weights(layer, seed=3)
    vectors = to_numpy(embedding(tokens))
    want, _, _ = lstm_sequence(
        vectors, cell_weights(layer.cell), variant == "coupled", mask=tokens != 0
    )
    _assert_close(model(tokens), want)


@pytest.mark.parametrize("variant", VARIANTS)
def test_stateful_chunks_equal_whole_sequence(variant):
    x = _random((2, 12, 3), seed=4)
    whole = LAYER_CLASSES[variant](5, return_state=True)
    whole(x)
    randomize_weights(whole, seed=5)
    _, h_whole, c_whole = whole(x)

    inputs = keras.Input(batch_shape=(2, None, 3))
    stateful = LAYER_CLASSES[variant](5, stateful=True, return_state=True)
    keras.Model(inputs, stateful(inputs))
    stateful.set_weights(whole.get_weights())
    for start in (0, 5, 9):
        _, h, c = stateful(x[:, start : {0: 5, 5: 9, 9: 12}[start]])
    _assert_close(h, to_numpy(h_whole))
    _assert_close(c, to_numpy(c_whole))
    stateful.reset_state()
    for state in stateful.states:
        assert_array_equal(to_numpy(state), 0.0)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("unroll", [False, True])
def test_go_backwards_and_return_state(variant, unroll):
    x = _random((3, 6, 4), seed=6)
    layer = LAYER_CLASSES[variant](
        5, go_backwards=True, return_sequences=True, return_state=True, unroll=unroll
    )
    layer(x)
    randomize_weights(layer, seed=7)
    outputs, h, c = layer(x)
    ref_outputs, ref_h, ref_c = lstm_sequence(
        x, cell_weights(layer.cell), variant == "coupled", go_backwards=True
    )
    _assert_close(outputs, ref_outputs)
    _assert_close(h, ref_h)
    _assert_close(c, ref_c)


@pytest.mark.parametrize("variant", VARIANTS)
def test_bidirectional_matches_reference(variant):
    x = _random((3, 6, 4), seed=8)
    bidi = keras.layers.Bidirectional(
        LAYER_CLASSES[variant](5, return_sequences=True), merge_mode="concat"
    )
    bidi(x)
    randomize_weights(bidi, seed=9)
    coupled = variant == "coupled"
    forward, _, _ = lstm_sequence(x, cell_weights(bidi.forward_layer.cell), coupled)
    backward, _, _ = lstm_sequence(
        x, cell_weights(bidi.backward_layer.cell), coupled, go_backwards=True
    )
    _assert_close(bidi(x), np.concatenate([forward, backward[:, ::-1]], axis=-1))


def test_bidirectional_over_plain_rnn_of_our_cell():
    x = _random((2, 5, 3), seed=10)
    bidi = keras.layers.Bidirectional(
        keras.layers.RNN(klv.PeepholeLSTMCell(4, peephole_gates=("forget",)))
    )
    bidi(x)
    randomize_weights(bidi, seed=11)
    _, h_fwd, _ = lstm_sequence(x, cell_weights(bidi.forward_layer.cell), False)
    _, h_bwd, _ = lstm_sequence(
        x, cell_weights(bidi.backward_layer.cell), False, go_backwards=True
    )
    _assert_close(bidi(x), np.concatenate([h_fwd, h_bwd], axis=-1))


@pytest.mark.parametrize("unroll", [False, True])
def test_stacked_cells_match_reference(unroll):
    x = _random((3, 6, 4), seed=12)
    cells = [
        klv.StandardLSTMCell(5),
        klv.PeepholeLSTMCell(4, peephole_gates=("input", "output")),
        klv.CoupledLSTMCell(3, peephole_gates=("forget",)),
    ]
    rnn = keras.layers.RNN(cells, return_sequences=True, unroll=unroll)
    rnn(x)
    randomize_weights(rnn, seed=13)
    sequence = x
    for cell in cells:
        sequence, _, _ = lstm_sequence(sequence, cell_weights(cell), cell.coupled)
    _assert_close(rnn(x), sequence)


def test_stacked_layers_in_a_model():
    x = _random((2, 7, 3), seed=14)
    model = keras.Sequential(
        [
            keras.Input((7, 3)),
            klv.CoupledLSTM(6, return_sequences=True),
            klv.PeepholeLSTM(4),
        ]
    )
    randomize_weights(model, seed=15)
    first, _, _ = lstm_sequence(x, cell_weights(model.layers[0].cell), True)
    _, h, _ = lstm_sequence(first, cell_weights(model.layers[1].cell), False)
    _assert_close(model(x), h)


@pytest.mark.parametrize("variant", VARIANTS)
def test_dropout_is_identity_at_inference_and_seeded_in_training(variant):
    x = _random((4, 6, 5), seed=16)

    def make():
        layer = LAYER_CLASSES[variant](
            6, dropout=0.4, recurrent_dropout=0.3, seed=123, return_sequences=True
        )
        layer(x)
        randomize_weights(layer, seed=17)
        return layer

    layer = make()
    want, _, _ = lstm_sequence(x, cell_weights(layer.cell), variant == "coupled")
    _assert_close(layer(x), want)
    _assert_close(layer(x, training=False), want)

    # Two layers built alike with the same seed drop the same units.
    first, second = make(), make()
    trained = to_numpy(first(x, training=True))
    assert np.max(np.abs(trained - want)) > 1e-3  # dropout did something
    assert_array_equal(trained, to_numpy(second(x, training=True)))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_layer_learns_a_small_task(variant, policy):
    """Sum-sign task: predict whether the running sum of a noisy sequence ends
    positive. The loss must fall to under half its starting value."""
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 10, 2)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32")[:, None]
    model = keras.Sequential(
        [
            keras.Input((10, 2)),
            LAYER_CLASSES[variant](16),
            keras.layers.Dense(1, activation="sigmoid", dtype="float32"),
        ]
    )
    assert model.layers[0].compute_dtype == (
        "float16" if policy != "float32" else "float32"
    )
    model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert np.isfinite(after)
    assert after < 0.5 * before, (before, after)


# Issue 10.4: every peephole vector gets its own draw.


@pytest.mark.parametrize(
    "cls, gates",
    [
        (klv.PeepholeLSTMCell, ("input", "forget", "output")),
        (klv.CoupledLSTMCell, ("forget", "output")),
    ],
)
@pytest.mark.parametrize(
    "initializer", ["glorot_uniform", keras.initializers.RandomNormal()]
)
def test_peephole_vectors_start_different_and_reproducible(cls, gates, initializer):
    def draw():
        keras.utils.set_random_seed(7)
        cell = cls(6, peephole_gates=gates, peephole_initializer=initializer)
        cell.build((None, 3))
        return [
            keras.ops.convert_to_numpy(getattr(cell, f"{g}_gate_peephole_weights"))
            for g in gates
        ]

    first = draw()
    for a in range(len(first)):
        for b in range(a):
            assert not np.allclose(first[a], first[b]), (gates[a], gates[b])
    for again, original in zip(draw(), first, strict=True):
        np.testing.assert_array_equal(again, original)


def test_seeded_peephole_initializer_keeps_its_first_draw():
    init = keras.initializers.RandomNormal(seed=3)
    cell = klv.PeepholeLSTMCell(5, peephole_initializer=init)
    cell.build((None, 2))
    expected = keras.ops.convert_to_numpy(
        keras.initializers.RandomNormal(seed=3)((5,))
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(cell.input_gate_peephole_weights), expected
    )
    assert not np.allclose(
        keras.ops.convert_to_numpy(cell.forget_gate_peephole_weights), expected
    )
