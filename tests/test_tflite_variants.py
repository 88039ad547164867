"""TensorFlow Lite export of every option of the variant space.

One small model per option (Greff's variants, layer normalization, projection
with its clip, cell clipping), converted with `export_tflite` (builtin ops
only) from the layer's fast path, and run in TensorFlow Lite's interpreter:
its outputs must equal the Keras model's.
"""

import keras
import numpy as np
import pytest

import keras_lstm_variants as klv
from conftest import randomize_weights

if keras.backend.backend() != "tensorflow":
    pytest.skip("TensorFlow Lite export needs TensorFlow", allow_module_level=True)

import tensorflow as tf  # noqa: E402

BATCH, TIME, FEATURES, UNITS = 2, 5, 3, 4

OPTIONS = [
    {"variant": name}
    for name in ("vanilla", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR")
] + [
    {"layer_norm": True},
    {"projection_units": 3, "projection_clip": 0.3},
    {"cell_clip": 0.4},
    {"variant": "FGR", "layer_norm": True, "projection_units": 2, "cell_clip": 0.5},
]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_tflite_runs_every_variant_like_keras(options, tmp_path, kernel_calls):
    inputs = keras.Input((None, FEATURES))
    layer = klv.LSTMVariant(UNITS, return_sequences=True, **options)
    model = keras.Model(inputs, layer(keras.layers.Masking(0.0)(inputs)))
    randomize_weights(layer, seed=3)
    x = np.random.default_rng(4).normal(size=(BATCH, TIME, FEATURES))
    x = x.astype("float32")
    x[1, 3:] = 0.0  # a padded sequence: masked steps convert too
    expected = keras.ops.convert_to_numpy(model(x))
    kernel_calls.clear()
    path = klv.export_tflite(
        model, tmp_path / "m.tflite", sequence_length=TIME, batch_size=BATCH
    )
    assert kernel_calls, "the export did not trace the fast path"
    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner()
    (output,) = runner(**{model.input.name: x}).values()
    assert output.shape == expected.shape == (BATCH, TIME, layer.cell.output_size)
    np.testing.assert_allclose(output, expected, atol=1e-5, rtol=1e-5)
