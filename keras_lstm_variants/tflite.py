"""TensorFlow Lite conversion of a model with our layers, builtin ops only."""

import os
import tempfile

from keras import tree

from keras_lstm_variants import saved_model
from keras_lstm_variants import validation


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
        optimizations: Optional list of `tf.lite.Optimize` values (or their
            names, such as `"DEFAULT"`) passed to the converter, for example
            `[tf.lite.Optimize.DEFAULT]` for dynamic-range quantization of
            the larger weight matrices (check the accuracy you get).

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
    validation.check_bool("overwrite", overwrite)
    sites = saved_model.exportable_sites(model)
    optimizations = validation.check_optimizations(optimizations)
    dtypes = {site.layer.compute_dtype for site in sites}
    if dtypes - {"float32"}:
        raise ValueError(
            f"Argument `model` ('{model.name}') computes its RNN layers in "
            f"{sorted(dtypes)}; TensorFlow Lite conversion with builtin ops "
            "needs float32 layers (a 'mixed_float16' or 'mixed_bfloat16' policy "
            "does not convert). Rebuild the model under the 'float32' policy, "
            "copy the weights, and quantize with `optimizations` if needed."
        )
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
        looping = [site.name for site in sites if not site.layer.unroll]
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
        for arg in saved_model.input_signature_of(model)
    ]
    with tempfile.TemporaryDirectory() as saved_model_dir:
        archive = saved_model.build_archive(
            model, sites, False, signature, state_batch_size=batch_size
        )
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if optimizations:
            converter.optimizations = [
                getattr(tf.lite.Optimize, name) for name in optimizations
            ]
        flatbuffer = converter.convert()
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def _fix_shape(spec, batch_size, sequence_length):
    """`spec` with the batch axis and the time axis (axis 1) fixed."""
    import tensorflow as tf

    shape = list(spec.shape)
    shape[0] = batch_size
    if len(shape) >= 2:
        shape[1] = sequence_length
    return tf.TensorSpec(shape, spec.dtype, name=spec.name)
