"""The layers' whole-sequence fast path: when it applies, and how it runs.

`StandardLSTM`, `PeepholeLSTM`, `CoupledLSTM`, `LSTMVariant` (every option
of the variant space) and `GRU` pick it automatically, as `keras.layers.LSTM`
picks cuDNN: with `use_fast_path="auto"` (the default) they take it whenever
it applies and run the generic `keras.layers.RNN` loop otherwise;
`use_fast_path=False` always runs the generic loop; `use_fast_path=True`
insists and raises a `ValueError` where it cannot apply.

What the fast path does (TensorFlow backend): one custom gradient for the
whole sequence (see `keras_lstm_variants._tf_sequence`; the GRU's, built the
same way around `gru.gru_step`, is `keras_lstm_variants._tf_gru_sequence`):

1. the forward loop, with the shared equations (`equations.preactivations`
   and its two parts, `equations.lstm_step`, `equations.next_states`) and
   the layer's masking rule (input dropout, if training, is applied to the
   whole sequence first, with the very mask the generic loop would use);
   under a gradient tape it keeps what the backward pass needs, else only
   the outputs;
2. back-propagation through time with only `δ(h·recurrent_kernel)_t ·
   recurrent_kernelᵀ` inside an XLA-compiled loop besides the step's own
   work (each step's local derivatives, and its share of the gradients of
   the peepholes, layer normalization weights, `gate_recurrent_kernel` and
   `projection_kernel`, by autodiff of the same step function), the
   gradients of `kernel`, `recurrent_kernel`, `bias` and the inputs as one
   large product or reduction each afterwards.

It supports masks, `go_backwards`, `return_sequences`, `return_state`,
`stateful`, `initial_state`, `zero_output_for_mask`, `dropout` and
`recurrent_dropout`, and gives the generic loop's numbers (up to float
rounding). It falls back to the generic loop when:

* the backend is not TensorFlow (JAX and PyTorch run the generic loop);
* `unroll=True` (the user asked for an unrolled loop);
* inside an XLA-compiled function (`model.compile(jit_compile=True)`): the
  backward pass's chunks have sizes XLA cannot fix at compile time (the
  generic loop compiles, as `keras.layers.LSTM`'s does);
* the compute dtype is not `float32` or `float64` (e.g. under the
  `mixed_float16` or `mixed_bfloat16` policies);
* the cell's class overrides part of its step (`cells.STEP_METHODS`):
  the fast path runs the cell's declared `LSTMStep`, which would then not
  describe what the cell computes.

Traced without a gradient tape (a SavedModel, `export_tflite`), it is a plain
`tf.while_loop` that TensorFlow Lite converts with builtin ops.

Every option of `LSTMVariant` runs on it: Greff's switches, full gate
recurrence, layer normalization, projection and both clips.

Measured on a 2-core CPU (README, "Performance"): a training step takes about
0.7–0.85 times the generic loop's at S2 and S3, and about as long (within
±10%, noise included) at S1; forward passes take about as long as the generic
loop's. `"auto"` therefore takes the fast path wherever it applies.
"""

import keras
from keras import ops

#: Accepted values of the layers' `use_fast_path` argument.
USE_FAST_PATH_VALUES = ("auto", True, False)

_FAST_DTYPES = ("float32", "float64")


def check_use_fast_path(value):
    """Returns `value`, or raises if it is not `"auto"`, `True` or `False`."""
    if not (value == "auto" if isinstance(value, str) else isinstance(value, bool)):
        raise ValueError(
            "Argument `use_fast_path` must be one of "
            f"{USE_FAST_PATH_VALUES}; received use_fast_path={value!r}."
        )
    return value


def backend_reason():
    """Why the current backend cannot run the fast path, or `None`."""
    if keras.backend.backend() != "tensorflow":
        return (
            f"the fast path needs the TensorFlow backend "
            f"(this is {keras.backend.backend()!r})"
        )
    return None


def xla_compiling():
    """Whether the caller is being XLA-compiled (TensorFlow's
    `jit_compile=True`), where the generic loop runs instead."""
    if keras.backend.backend() != "tensorflow":
        return False
    from keras_lstm_variants import _tf_loops

    return _tf_loops.inside_xla_compilation()


def general_reason(layer):
    """Why no fast path can run `layer` (whatever its cell computes), or
    `None`: the backend, `unroll`, an XLA-compiled caller, the dtype, a cell
    class that overrides its step."""
    cell = layer.cell
    reason = backend_reason()
    if reason is not None:
        return reason
    if layer.unroll:
        return "unroll=True asks for an unrolled loop"
    if xla_compiling():
        return (
            "the caller is XLA-compiled (jit_compile=True), and XLA cannot "
            "compile the fast path's chunked backward pass"
        )
    if cell.compute_dtype not in _FAST_DTYPES:
        return (
            f"the compute dtype is {cell.compute_dtype!r}; the fast path runs "
            f"{' and '.join(_FAST_DTYPES)} only"
        )
    if not getattr(type(cell), "declares_its_step", False):
        return f"the cell {type(cell).__name__} overrides its step"
    return None


def fallback_reason(layer):
    """Why `layer` cannot take the fast path, or `None` if it can: every
    LSTM step runs on it, so only `general_reason` applies.

    Args:
        layer: One of this package's layers.

    Returns:
        A short sentence, or `None`.
    """
    return general_reason(layer)


def run(layer, sequences, initial_state, mask, training):
    """Runs `layer`'s recurrence on the fast path.

    Reads what to compute from the cell's declaration: its `step` (an
    `equations.LSTMStep`) and its `step_weights()`.

    Args:
        layer: One of this package's layers, for which `fallback_reason` is
            `None`.
        sequences: Input tensor `(batch, time, features)`.
        initial_state: List `[h0, c0]` (`[h0, c0, a0]` with full gate
            recurrence).
        mask: Boolean `(batch, time)` tensor, or `None`.
        training: Whether dropout applies.

    Returns:
        `(last_output, outputs, states)`, as `keras.layers.RNN.inner_loop`.
    """
    from keras_lstm_variants import _tf_sequence

    cell = layer.cell
    dtype = cell.compute_dtype
    step = cell.step
    weights = cell.step_weights()
    bias = weights["bias"]

    def value(weight):
        return ops.cast(weight, dtype)

    sequences = ops.cast(sequences, dtype)
    if training and cell.dropout > 0.0:
        drop = cell.get_dropout_mask(sequences[:, 0, :])
        sequences = sequences * ops.expand_dims(drop, 1)
    recurrent_mask = None
    if training and cell.recurrent_dropout > 0.0:
        recurrent_mask = cell.get_recurrent_dropout_mask(initial_state[0])
    own = {gate: value(p) for gate, p in weights["peepholes"].items()}
    if step.layer_norm:
        own.update({name: value(w) for name, w in weights["norms"].items()})
    for name in ("gate_recurrent_kernel", "projection_kernel"):
        if weights[name] is not None:
            own[name] = value(weights[name])
    return _tf_sequence.lstm_sequence(
        ops.transpose(sequences, (1, 0, 2)),
        value(weights["kernel"]),
        None if bias is None else value(bias),
        list(initial_state),
        value(weights["recurrent_kernel"]),
        own,
        mask,
        recurrent_mask,
        step=step,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
        return_sequences=layer.return_sequences,
    )


def gru_fallback_reason(layer):
    """Why the `GRU` layer `layer` cannot take the fast path, or `None`."""
    return general_reason(layer)


def run_gru(layer, sequences, initial_state, mask, training):
    """Runs the `GRU` layer `layer`'s recurrence on the fast path (see
    `keras_lstm_variants._tf_gru_sequence`); arguments and result as `run`."""
    from keras_lstm_variants import _tf_gru_sequence

    cell = layer.cell
    dtype = cell.compute_dtype
    weights = cell.step_weights()

    def value(weight):
        return None if weight is None else ops.cast(weight, dtype)

    sequences = ops.cast(sequences, dtype)
    if training and cell.dropout > 0.0:
        drop = cell.get_dropout_mask(sequences[:, 0, :])
        sequences = sequences * ops.expand_dims(drop, 1)
    recurrent_mask = None
    if training and cell.recurrent_dropout > 0.0:
        recurrent_mask = cell.get_recurrent_dropout_mask(initial_state[0])
    return _tf_gru_sequence.gru_sequence(
        ops.transpose(sequences, (1, 0, 2)),
        value(weights["kernel"]),
        value(weights["input_bias"]),
        initial_state[0],
        value(weights["recurrent_kernel"]),
        value(weights["recurrent_bias"]),
        mask,
        recurrent_mask,
        reset_after=cell.reset_after,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
        return_sequences=layer.return_sequences,
    )
