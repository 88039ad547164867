"""TensorFlow loop helpers shared by the whole-sequence kernels of the fast
path: the LSTM's (`_tf_sequence`) and the GRU's (`_tf_gru_sequence`).

TensorFlow only: imported by those kernels, which the layers import when the
fast path runs.
"""

import tensorflow as tf

#: Loop iterations TensorFlow may run at once in the forward loop (the input
#: product of later steps overlaps the current step; Keras's own RNN loop
#: uses 32 too).
PARALLEL_ITERATIONS = 32

#: Rows (`chunk steps × batch`) of the backward pass's per-chunk products.
CHUNK_ROWS = 1024


def previous(sequence, first, t):
    """`sequence[t - 1]`, or `first` at `t = 0` (no copy of the sequence)."""
    return tf.where(t > 0, sequence[tf.maximum(t - 1, 0)], first)


def chunk_length(batch, steps):
    """Time steps per chunk of the backward pass: about `CHUNK_ROWS` rows of
    `batch`, and at most `√steps`, so that the chunk's buffers stay a small
    part of the saved values."""
    root = tf.cast(tf.math.ceil(tf.sqrt(tf.cast(steps, tf.float32))), steps.dtype)
    return tf.minimum(tf.maximum(CHUNK_ROWS // batch, 1), root)


def read_previous(array, first, t):
    """`array.read(t - 1)`, or `first` at `t = 0`."""
    return tf.where(t > 0, array.read(tf.maximum(t - 1, 0)), first)


def flat_product(a, b):
    """`Σ_{k, batch} a[k]ᵀ · b[k]` for `(steps, batch, ·)` tensors, as one
    product."""
    return tf.matmul(
        tf.reshape(a, [-1, tf.shape(a)[-1]]),
        tf.reshape(b, [-1, tf.shape(b)[-1]]),
        transpose_a=True,
    )


def compiled(function, jit):
    """`function` as a `tf.function`, XLA-compiled if `jit`.

    A loop without XLA is traced inline into the caller's graph when there is
    one: it then sees the caller's static shapes (TensorFlow Lite needs the
    loop's buffers to have them; a shared `tf.function` traced with
    `reduce_retracing` would relax them), at no measured cost in speed.
    """
    traced = tf.function(function, jit_compile=jit, reduce_retracing=True)
    if jit:
        return traced

    def call(*args):
        return traced(*args) if tf.executing_eagerly() else function(*args)

    return call


def inside_xla_compilation():
    """Whether the current trace is XLA-compiled (`jit_compile=True`).

    The chunked backward pass slices the sequence with sizes that XLA cannot
    fix at compile time, so an XLA-compiled caller runs the generic loop.
    Where TensorFlow's private helper is missing, assume not (the layers then
    fail inside an XLA-compiled step instead of falling back).
    """
    try:
        # Private: TensorFlow has no public way to ask whether XLA compiles
        # the graph being traced.
        from tensorflow.python.ops import control_flow_util

        graph = tf.compat.v1.get_default_graph()
        return bool(control_flow_util.GraphOrParentsInXlaContext(graph))
    except (ImportError, AttributeError):  # pragma: no cover
        return False


def gradient_possible():
    """Whether a gradient tape may record the current call.

    False under `predict` and SavedModel serving (traced without a tape);
    True in `fit`'s train step and under any active `tf.GradientTape`. Where
    TensorFlow's private helper is missing, assume a tape (always correct).
    """
    try:
        # Private: TensorFlow has no public way to ask whether a tape records.
        from tensorflow.python.eager import record

        return record.could_possibly_record()
    except (ImportError, AttributeError):  # pragma: no cover
        return True
