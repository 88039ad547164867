"""The TensorFlow whole-sequence kernel behind the layers' fast path.

Imported lazily by `keras_lstm_variants.fast_path`, and only on the TensorFlow
backend: the only module of the package that imports TensorFlow at its top
(the export and callback modules import it inside their functions).

The recurrence runs as one custom gradient for the whole sequence:

* forward (a plain TensorFlow loop, traced inline into the caller's graph):
  `z_t = x_t · kernel + h_{t-1} · recurrent_kernel + bias`, then the shared
  gate equations `equations.lstm_step`, then the layer's masking rule. The
  input product stays inside the loop: it does not depend on `h`, so the
  loop runs it for later steps while the current one waits (on a 2-core CPU
  that measured faster than one large product before the loop, which also
  writes a `time × batch × 4·units` tensor). Under a gradient tape the loop
  keeps only `z_t` and `c_t` per step (and `h_t` under a mask), in
  `TensorArray`s that are never stacked: stacking copies, and the copy
  doubled the peak. Without a tape (`predict`, SavedModel serving) it keeps
  only the outputs, or nothing when only the last output is used. A plain
  loop keeps exported models free of XLA;
* backward: back-propagation through time in chunks of about `CHUNK_ROWS`
  rows (`steps × batch`) and at most `√time` steps, from the end. Each
  chunk's steps run in an XLA-compiled loop: each step's local derivatives
  come from autodiff of the very same step function (so the gate formulas
  exist once, in `equations.py`), which also recomputes `h_t` from `z_t` and
  `c_{t-1}`; only `δz_t · recurrent_kernelᵀ` is a product inside it. Then
  the chunk's `δz` feeds the gradients of `kernel`, `recurrent_kernel`,
  `bias` and the inputs with one TensorFlow product each, so `δz` never
  exists for the whole sequence.

Peak tensor memory of a training step is thus about 5 `batch × time × units`
values (the saved `z` and `c`) plus chunk-sized buffers; `keras.layers.LSTM`
takes about 7.5.

Measured and dropped: a hand-written backward step (derivative formulas for
sigmoid / tanh, post-activations saved by the forward loop) ran no faster
than XLA's fusion of the autodiff step, and precomputing the derivatives of
all steps in batched ops before the loop cost more memory traffic than it
saved. An XLA-compiled forward loop (its saved arrays are buffers written in
place, so nothing is copied) and the chunk products inside the XLA backward
loop were 20-30% slower at S3: XLA's products of these shapes are slower
than TensorFlow's. Overwriting a precomputed input product with `z_t` in
place made XLA copy the whole buffer every step.

XLA cannot compile the gradient of a compiled `while_loop` taken from outside
(its saved per-step values are TensorLists, which may not cross the XLA
boundary); the custom gradient avoids that, and it removes the per-step
bookkeeping of TensorFlow's generic loop gradient, which dominates on CPU.
"""

import tensorflow as tf

from keras_lstm_variants.equations import lstm_step

# One forward and backward pair per static configuration, shared by all layers.
_KERNELS = {}

#: Loop iterations TensorFlow may run at once in the forward loop (the input
#: product of later steps overlaps the current step; Keras's own RNN loop
#: uses 32 too).
PARALLEL_ITERATIONS = 32

#: Rows (`chunk steps × batch`) of the backward pass's per-chunk products.
CHUNK_ROWS = 1024


class _StepConfig:
    """The static (Python) part of a step: what changes the traced graph."""

    def __init__(self, lstm, masked, zero_out, recurrent_dropout):
        self.lstm = lstm  # the cell's `equations.LSTMStep`
        self.peepholes = lstm.peephole_gates  # the gates that have a weight
        self.masked = masked
        self.zero_out = zero_out
        self.recurrent_dropout = recurrent_dropout

    def key(self):
        return (self.lstm, self.masked, self.zero_out, self.recurrent_dropout)

    def step(self, z, h_prev, c_prev, out_prev, keep, peephole_values):
        """One step after the recurrent product: gates, then masking.

        Returns `(output, h, c)`, following `keras.layers.RNN`'s rule for
        masked steps: the states are carried over and the output repeats the
        previous output (or is zero with `zero_output_for_mask`).
        """
        weights = dict(zip(self.peepholes, peephole_values, strict=True))
        gates = lstm_step(self.lstm, z, c_prev, weights)
        h, c = gates.hidden_state, gates.cell_state
        if not self.masked:
            return h, h, c
        masked_out = tf.zeros_like(h) if self.zero_out else out_prev
        return (
            tf.where(keep, h, masked_out),
            tf.where(keep, h, h_prev),
            tf.where(keep, c, c_prev),
        )


def _previous(sequence, first, t):
    """`sequence[t - 1]`, or `first` at `t = 0` (no copy of the sequence)."""
    return tf.where(t > 0, sequence[tf.maximum(t - 1, 0)], first)


def _chunk_steps(batch, steps):
    """Time steps per chunk of the backward pass: about `CHUNK_ROWS` rows of
    `batch`, and at most `√steps`, so that the chunk's buffers stay a small
    part of the saved values."""
    root = tf.cast(tf.math.ceil(tf.sqrt(tf.cast(steps, tf.float32))), steps.dtype)
    return tf.minimum(tf.maximum(CHUNK_ROWS // batch, 1), root)


def _read_previous(array, first, t):
    """`array.read(t - 1)`, or `first` at `t = 0`."""
    return tf.where(t > 0, array.read(tf.maximum(t - 1, 0)), first)


def _flat_product(a, b):
    """`Σ_{k, batch} a[k]ᵀ · b[k]` for `(steps, batch, ·)` tensors, as one
    product."""
    return tf.matmul(
        tf.reshape(a, [-1, tf.shape(a)[-1]]),
        tf.reshape(b, [-1, tf.shape(b)[-1]]),
        transpose_a=True,
    )


def _build_kernels(config, sequences):
    """The loops for one configuration; `sequences`: whether the caller uses
    every output (else only the last one).

    Returns `(forward, backward)`: `forward(..., keep)` and the backward pass
    of `forward(..., keep=True)`.
    """
    masked = config.masked
    keeps_hs = masked  # elsewhere the backward pass recomputes `h_t`

    def dropped(h, h_mask):
        return h * h_mask if config.recurrent_dropout else h

    def forward(
        x, kernel, bias, h0, c0, recurrent_kernel, peepholes, mask, h_mask, keep
    ):
        """The loop. Returns `(outs, h, c, saved)`: the outputs (all if
        `sequences`, else the last one), the final states, and, if `keep`,
        what the backward pass needs as the flows of per-step `TensorArray`s,
        never stacked into one tensor (that would copy them): `z_t` and `c_t`,
        and `h_t` under a mask (elsewhere `h_t` is recomputed from `z_t` and
        `c_{t-1}`). The previous output is a loop variable only under a mask
        (without one it is `h`): each loop variable costs a few control ops
        per step. Traced inline into the caller's graph (see `_compiled`)."""
        steps = tf.shape(x)[0]

        def body(t, h, c, *rest):
            *out, arrays = rest
            out_prev = out[0] if masked else None
            # The input product does not depend on `h`: the loop runs it for
            # the next steps while this one waits (measured faster on a
            # 2-core CPU than one large product before the loop).
            z = tf.matmul(x[t], kernel)
            z = z + tf.matmul(dropped(h, h_mask), recurrent_kernel) + bias
            out, h, c = config.step(
                z, h, c, out_prev, mask[t] if masked else None, peepholes
            )
            values = ((out,) if sequences else ()) + (
                ((z, c) + ((h,) if keeps_hs else ())) if keep else ()
            )
            arrays = tuple(a.write(t, v) for a, v in zip(arrays, values, strict=True))
            return (t + 1, h, c, *((out,) if masked else ()), arrays)

        # Known element shapes keep the loop convertible (TF Lite needs them).
        state_shape = tf.TensorShape([x.shape[1], h0.shape[-1]]).merge_with(h0.shape)
        z_shape = state_shape[:-1].concatenate(recurrent_kernel.shape[-1:])
        shapes = ((state_shape,) if sequences else ()) + (
            ((z_shape, state_shape) + ((state_shape,) if keeps_hs else ()))
            if keep
            else ()
        )
        arrays = tuple(
            tf.TensorArray(x.dtype, size=steps, element_shape=shape)
            for shape in shapes
        )
        loop = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), h0, c0, *((tf.zeros_like(h0),) if masked else ()), arrays),
            maximum_iterations=steps,
            parallel_iterations=PARALLEL_ITERATIONS,
        )
        arrays = loop[-1]
        if sequences:
            outs, arrays = arrays[0].stack(), arrays[1:]
        else:
            outs = (loop[3] if masked else loop[1])[None]
        # The arrays' flows (TensorLists) cross function boundaries.
        return outs, loop[1], loop[2], tuple(a.flow for a in arrays)

    def chunk_steps(
        zs, cs, c_first, hs, h_first, d_outs, d_h, d_c, d_out_next,
        recurrent_kernel, peepholes, mask, h_mask,
    ):
        """Back-propagation through the steps of one chunk (XLA-compiled),
        from the last step down. Arguments hold the chunk's steps; `c_first`
        and `h_first` the states before it.

        Each step's local derivatives come from autodiff of the step function
        (so the gate formulas exist once, in `equations.py`); only
        `δz_t · recurrent_kernelᵀ` is a product inside the loop. Returns
        `δz` and the (dropped-out) `h` of every step, the gradients of the
        states and output before the chunk, and the chunk's peephole
        gradients: `δp = Σ δz_gate ⊙ c` (`c_{t-1}` for the input and forget
        gates, `c_t` for the output gate), since a peephole enters its gate's
        pre-activation additively.
        """
        steps = tf.shape(zs)[0]
        units = tf.shape(c_first)[-1]
        recurrent_t = tf.transpose(recurrent_kernel)
        names = config.lstm.blocks
        blocks = [names.index(g) for g in config.peepholes]
        no_output = tf.zeros_like(c_first)

        def body(t, d_h, d_c, d_out_next, d_peep, dzs, hs_out):
            c_prev = _previous(cs, c_first, t)
            d_out = d_outs[t] if sequences else 0.0
            if masked:
                # Masked steps carry the states and the output: those feed
                # the gradient too (the previous output's value does not).
                sources = [zs[t], c_prev, _previous(hs, h_first, t), no_output]
                targets = [0, 1, 2]
                output_gradients = [d_out + d_out_next, d_h, d_c]
            else:
                # Here `out = h`, and `h_{t-1}` reaches the step only through
                # `z` (the recurrent product).
                sources = [zs[t], c_prev]
                targets, output_gradients = [1, 2], [d_out + d_h, d_c]
            with tf.GradientTape() as tape:
                tape.watch(sources)
                z, c_prev, h_prev, out_prev = (*sources, None, None)[:4]
                keep = mask[t] if masked else None
                values = config.step(z, h_prev, c_prev, out_prev, keep, peepholes)
            grads = tape.gradient(
                [values[k] for k in targets],
                sources,
                output_gradients=output_gradients,
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            dz, dc_prev = grads[:2]
            dh_prev = dropped(tf.matmul(dz, recurrent_t), h_mask)
            if masked:
                dh_prev, d_out_next = dh_prev + grads[2], grads[3]
            _, h, c = values
            d_peep = tuple(
                acc
                + dz[:, b * units : (b + 1) * units]
                * (c if names[b] == "output" else c_prev)
                for acc, b in zip(d_peep, blocks, strict=True)
            )
            return (
                t - 1, dh_prev, dc_prev, d_out_next, d_peep,
                dzs.write(t, dz), hs_out.write(t, dropped(h, h_mask)),
            )

        loop = tf.while_loop(
            lambda t, *_: t >= 0,
            body,
            (
                steps - 1, d_h, d_c, d_out_next,
                tuple(tf.zeros_like(c_first) for _ in blocks),
                tf.TensorArray(zs.dtype, size=steps),
                tf.TensorArray(zs.dtype, size=steps),
            ),
            maximum_iterations=steps,
        )
        _, d_h, d_c, d_out_next, d_peep, dzs, hs_out = loop
        d_peep = tuple(tf.reduce_sum(acc, 0) for acc in d_peep)
        return dzs.stack(), hs_out.stack(), d_h, d_c, d_out_next, d_peep

    compiled_chunk_steps = _compiled(chunk_steps, jit=True)

    def backward(
        d_outs, d_h, d_c, x, saved, kernel, h0, c0, recurrent_kernel,
        peepholes, mask, h_mask,
    ):
        """Back-propagation through time, chunk by chunk from the end, so
        that `δz` never exists for the whole sequence: each chunk's steps run
        in `chunk_steps` (XLA), then the chunk adds to the gradients of
        `kernel`, `recurrent_kernel` and `bias` and gives the inputs' with
        one large product each (TensorFlow's products: faster here than
        XLA's). `d_outs` holds every output's gradient, or only the last
        one's."""
        zs, cs, *hs = (tf.TensorArray(x.dtype, flow=f) for f in saved)
        hs = hs[0] if masked else None
        steps, batch = tf.shape(x)[0], tf.shape(x)[1]
        chunk = _chunk_steps(batch, steps)
        n_chunks = (steps + chunk - 1) // chunk
        no_output = tf.zeros_like(h0)
        d_out_next = no_output
        if not sequences:
            # Only the last output has a gradient: that of the output carried
            # out of the last step (which is `h` without a mask).
            d_out_next = d_outs[0]
            if not masked:
                d_h, d_out_next = d_h + d_out_next, no_output
        empty = tf.zeros([0], x.dtype)

        def body(j, *carried):
            new = chunk_body(j, *carried)
            # The compiled chunk's outputs may have lost static shapes (its
            # `tf.function` relaxes them): give back the loop variables'.
            tf.nest.map_structure(
                lambda n, c: n.set_shape(c.shape), new[1:-1], carried[:-1]
            )
            return new

        def chunk_body(j, d_h, d_c, d_out_next, dz_above, d_weights, d_xs):
            end = steps - j * chunk
            start = tf.maximum(end - chunk, 0)
            times = tf.range(start, end)
            dzs, h_out, d_h, d_c, d_out_next, d_peep_chunk = compiled_chunk_steps(
                zs.gather(times),
                cs.gather(times),
                _read_previous(cs, c0, start),
                hs.gather(times) if masked else empty,
                _read_previous(hs, h0, start) if masked else no_output,
                d_outs[start:end] if sequences else empty,
                d_h, d_c, d_out_next, recurrent_kernel, peepholes,
                mask[start:end] if masked else mask,
                h_mask,
            )
            d_kernel, d_bias, d_recurrent, d_peep = d_weights
            # `h_t` pairs with `δz_{t+1}`; the chunk's last `h` with the first
            # `δz` of the chunk above (zero at the end).
            dz_next = tf.concat([dzs[1:], dz_above[None]], 0)
            d_weights = (
                d_kernel + _flat_product(x[start:end], dzs),
                d_bias + tf.reduce_sum(dzs, [0, 1]),
                d_recurrent + _flat_product(h_out, dz_next),
                tuple(a + b for a, b in zip(d_peep, d_peep_chunk, strict=True)),
            )
            d_x = tf.tensordot(dzs, kernel, [[2], [1]])
            d_xs = d_xs.write(n_chunks - 1 - j, d_x)
            return j + 1, d_h, d_c, d_out_next, dzs[0], d_weights, d_xs

        loop = tf.while_loop(
            lambda j, *_: j < n_chunks,
            body,
            (
                tf.constant(0), d_h, d_c, d_out_next,
                tf.zeros([batch, tf.shape(kernel)[-1]], x.dtype),
                (
                    tf.zeros_like(kernel),
                    tf.zeros_like(kernel[0]),
                    tf.zeros_like(recurrent_kernel),
                    tuple(tf.zeros_like(p) for p in peepholes),
                ),
                tf.TensorArray(x.dtype, size=n_chunks, infer_shape=False),
            ),
            maximum_iterations=n_chunks,
        )
        _, d_h0, d_c0, _, dz_first, d_weights, d_xs = loop
        d_kernel, d_bias, d_recurrent, d_peep = d_weights
        # The first step's `δz` pairs with the initial state.
        d_recurrent = d_recurrent + tf.matmul(
            dropped(h0, h_mask), dz_first, transpose_a=True
        )
        return d_xs.concat(), d_kernel, d_bias, d_h0, d_c0, d_recurrent, d_peep

    return _compiled(forward, jit=False), _compiled(backward, jit=False)


def _compiled(function, jit):
    """`function` as a `tf.function`, XLA-compiled if `jit`.

    A loop without XLA is traced inline into the caller's graph when there is
    one: it then sees the caller's static shapes (TensorFlow Lite needs the
    loop's buffers to have them; a shared `tf.function` traced with
    `reduce_retracing` would relax them), at no measured cost in speed.
    """
    compiled = tf.function(function, jit_compile=jit, reduce_retracing=True)
    if jit:
        return compiled

    def call(*args):
        return compiled(*args) if tf.executing_eagerly() else function(*args)

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


def _gradient_possible():
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


def _kernels(config, sequences):
    key = (config.key(), sequences)
    if key not in _KERNELS:
        _KERNELS[key] = _build_kernels(config, sequences)
    return _KERNELS[key]


def lstm_sequence(
    x,
    kernel,
    bias,
    h0,
    c0,
    recurrent_kernel,
    peepholes,
    mask,
    recurrent_mask,
    *,
    step,
    go_backwards,
    zero_output_for_mask,
    return_sequences=True,
):
    """Runs the recurrence over a whole sequence, with a custom gradient.

    Args:
        x: Inputs, time-major: `(time, batch, features)`.
        kernel: `(features, blocks·units)` tensor.
        bias: `(blocks·units,)` tensor, or `None`.
        h0, c0: Initial states, `(batch, units)`.
        recurrent_kernel: `(units, blocks·units)` tensor.
        peepholes: Dict `{gate name: (units,) tensor}` of the peepholes present.
        mask: Boolean `(batch, time)` tensor, or `None`.
        recurrent_mask: Recurrent dropout mask `(batch, units)` that
            multiplies `h_{t-1}` before the recurrent product, or `None`.
        step: The cell's `equations.LSTMStep`, one whose step needs only
            `z` and the peepholes (`fast_path.fallback_reason` checks it).
        go_backwards: Process the sequence in reverse (outputs are in
            processing order, as `keras.layers.RNN` returns them).
        zero_output_for_mask: As `keras.layers.RNN`'s argument.
        return_sequences: Whether the caller uses the whole output sequence;
            if not, no output is kept per step (the returned sequence then
            holds only the last output).

    Returns:
        `(last_output, outputs, [h, c])` as `keras.layers.RNN.inner_loop`
        returns them, outputs batch-major.
    """
    gates = step.peephole_gates
    config = _StepConfig(
        step, mask is not None, bool(zero_output_for_mask), recurrent_mask is not None
    )
    forward, backward = _kernels(config, bool(return_sequences))
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
    if bias is None:
        bias = tf.zeros([tf.shape(kernel)[-1]], x.dtype)
    if go_backwards:
        x = tf.reverse(x, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    mask_arg = mask if mask is not None else tf.zeros([0], tf.bool)
    h_mask = recurrent_mask if recurrent_mask is not None else tf.zeros([0], x.dtype)

    if not _gradient_possible():
        # No tape records this call (e.g. `predict`): keep nothing per step.
        outs, h, c, _ = forward(
            x, kernel, bias, h0, c0, recurrent_kernel,
            tuple(peepholes[g] for g in gates), mask_arg, h_mask, False,
        )
        return outs[-1], tf.transpose(outs, [1, 0, 2]), [h, c]

    @tf.custom_gradient
    def run(x, kernel, bias, h0, c0, recurrent_kernel, *peephole_values):
        # Cut the tape at the loop: its gradient is `grad` below.
        outs, h, c, saved = forward(
            *tf.nest.map_structure(
                tf.stop_gradient,
                (
                    x, kernel, bias, h0, c0, recurrent_kernel, peephole_values,
                    mask_arg, h_mask,
                ),
            ),
            True,
        )

        def grad(d_outs, d_h, d_c):
            d_outs = tf.zeros_like(outs) if d_outs is None else d_outs
            d_h = tf.zeros_like(h0) if d_h is None else d_h
            d_c = tf.zeros_like(c0) if d_c is None else d_c
            d_x, d_kernel, d_bias, d_h0, d_c0, d_recurrent, d_peep = backward(
                d_outs, d_h, d_c, x, saved, kernel, h0, c0, recurrent_kernel,
                peephole_values, mask_arg, h_mask,
            )
            return (d_x, d_kernel, d_bias, d_h0, d_c0, d_recurrent, *d_peep)

        return (outs, h, c), grad

    outs, h, c = run(
        x, kernel, bias, h0, c0, recurrent_kernel, *(peepholes[g] for g in gates)
    )
    return outs[-1], tf.transpose(outs, [1, 0, 2]), [h, c]


# The loop helpers that the GRU's kernel (`_tf_gru_sequence`) shares, under
# public names: no module imports another module's private names.
previous = _previous
read_previous = _read_previous
chunk_steps = _chunk_steps
flat_product = _flat_product
compiled = _compiled
gradient_possible = _gradient_possible
