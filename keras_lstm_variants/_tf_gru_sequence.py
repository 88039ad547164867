"""The TensorFlow whole-sequence kernel behind the `GRU` layer's fast path.

Imported lazily by `keras_lstm_variants.fast_path`, and only on the TensorFlow
backend. It is built like the LSTM's kernel (`_tf_sequence`, whose loop
helpers it shares) as one custom gradient for the whole sequence:

* forward (a plain TensorFlow loop, traced inline into the caller's graph):
  `x_part_t = x_t · kernel + input_bias`, then the shared step
  `gru.gru_step`, then the layer's masking rule. Under a gradient tape the
  loop keeps only `h_t` per step (and, with `reset_after`, the recurrent part
  `u_t = h_{t-1} · recurrent_kernel + recurrent_bias`), in `TensorArray`s
  that are never stacked; without a tape it keeps only the outputs;
* backward: back-propagation through time in chunks from the end (the sizes
  of `_tf_loops.chunk_length`). Each chunk first forms its `x_part` with
  one large product; its steps then run in an XLA-compiled loop, where each
  step's local derivatives come from autodiff of the very same `gru_step`.
  With `reset_after` the step is differentiated with respect to `x_part_t`,
  `u_t` and `h_{t-1}`, and `δu_t · recurrent_kernelᵀ` is the loop's only
  product; without it, `r ⊙ h_{t-1}` enters a product, so the step and its
  two products are differentiated whole (the kernel held constant). The
  weight gradients are formed per chunk with one product each: from `δu`
  (`reset_after`), or from `δx_part` and the reset gate, since `x_part` and
  the recurrent products add in the equations (`δu_zr = δx_zr`, and the
  candidate's product `(r ⊙ h_{t-1}) · U_h` gets `δx_h`).

Peak tensor memory of a training step is thus 4 (`reset_after`) or 1
`batch × time × units` values of saved steps plus chunk-sized buffers.
"""

import tensorflow as tf

from keras_lstm_variants._tf_loops import PARALLEL_ITERATIONS
from keras_lstm_variants._tf_loops import chunk_length
from keras_lstm_variants._tf_loops import compiled
from keras_lstm_variants._tf_loops import flat_product
from keras_lstm_variants._tf_loops import gradient_possible
from keras_lstm_variants._tf_loops import previous
from keras_lstm_variants._tf_loops import read_previous
from keras_lstm_variants.gru import gru_step
from keras_lstm_variants.gru import recurrent_product

# One forward and backward pair per static configuration, shared by all layers.
_KERNELS = {}


class _GRUConfig:
    """The static (Python) part of a GRU step: what changes the traced graph."""

    def __init__(
        self,
        reset_after,
        activation,
        recurrent_activation,
        masked,
        zero_out,
        recurrent_dropout,
    ):
        self.reset_after = reset_after
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.masked = masked
        self.zero_out = zero_out
        self.recurrent_dropout = recurrent_dropout

    def key(self):
        return (
            self.reset_after,
            self.activation,
            self.recurrent_activation,
            self.masked,
            self.zero_out,
            self.recurrent_dropout,
        )

    def recurrent_part(self, h_prev, recurrent_kernel, bias, h_mask):
        """`[u_z, u_r, u_h]` of a step with `reset_after` (else `None`)."""
        if not self.reset_after:
            return None
        h_in = h_prev * h_mask if self.recurrent_dropout else h_prev
        return recurrent_product(h_in, recurrent_kernel, bias)

    def step(
        self, x_part, h_prev, out_prev, keep, recurrent_kernel, bias, h_mask, u=None
    ):
        """One step from the input part (and `u`, the recurrent part with
        `reset_after`, if given): `gru_step`, then masking.

        Returns `(output, h, values)`, following `keras.layers.RNN`'s rule for
        masked steps: the state is carried over and the output repeats the
        previous output (or is zero with `zero_output_for_mask`).
        """
        values = gru_step(
            x_part,
            h_prev,
            recurrent_kernel,
            bias if self.reset_after else None,
            self.reset_after,
            self.activation,
            self.recurrent_activation,
            h_mask if self.recurrent_dropout else None,
            u,
        )
        h = values.hidden_state
        if not self.masked:
            return h, h, values
        masked_out = tf.zeros_like(h) if self.zero_out else out_prev
        return tf.where(keep, h, masked_out), tf.where(keep, h, h_prev), values


def _build_kernels(config, sequences):
    """The loops for one configuration; `sequences`: whether the caller uses
    every output (else only the last one).

    Returns `(forward, backward)`: `forward(..., keep)` and the backward pass
    of `forward(..., keep=True)`.
    """
    masked = config.masked
    # With `reset_after` the recurrent part `u_t` is kept too: the backward
    # pass then needs no product to recompute it.
    keeps_us = config.reset_after

    def dropped(h, h_mask):
        return h * h_mask if config.recurrent_dropout else h

    def forward(x, kernel, input_bias, h0, recurrent_kernel, bias, mask, h_mask, keep):
        """The loop. Returns `(outs, h, saved)`: the outputs (all if
        `sequences`, else the last one), the final state and, if `keep`, the
        flows of the `TensorArray`s of the states `h_t` (and of `u_t` with
        `reset_after`)."""
        steps = tf.shape(x)[0]

        def body(t, h, *rest):
            *out, arrays = rest
            out_prev = out[0] if masked else None
            # The input product does not depend on `h`: the loop runs it for
            # the next steps while this one waits.
            x_part = tf.matmul(x[t], kernel) + input_bias
            u = config.recurrent_part(h, recurrent_kernel, bias, h_mask)
            out, h, _ = config.step(
                x_part,
                h,
                out_prev,
                mask[t] if masked else None,
                recurrent_kernel,
                bias,
                h_mask,
                u,
            )
            values = ((out,) if sequences else ()) + (
                ((h,) + ((u,) if keeps_us else ())) if keep else ()
            )
            arrays = tuple(a.write(t, v) for a, v in zip(arrays, values, strict=True))
            return (t + 1, h, *((out,) if masked else ()), arrays)

        # Known element shapes keep the loop convertible (TF Lite needs them).
        state_shape = tf.TensorShape([x.shape[1], h0.shape[-1]]).merge_with(h0.shape)
        u_shape = state_shape[:-1].concatenate(recurrent_kernel.shape[-1:])
        shapes = ((state_shape,) if sequences else ()) + (
            ((state_shape,) + ((u_shape,) if keeps_us else ())) if keep else ()
        )
        arrays = tuple(
            tf.TensorArray(x.dtype, size=steps, element_shape=shape)
            for shape in shapes
        )
        loop = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), h0, *((tf.zeros_like(h0),) if masked else ()), arrays),
            maximum_iterations=steps,
            parallel_iterations=PARALLEL_ITERATIONS,
        )
        arrays = loop[-1]
        if sequences:
            outs, arrays = arrays[0].stack(), arrays[1:]
        else:
            outs = (loop[2] if masked else loop[1])[None]
        return outs, loop[1], tuple(a.flow for a in arrays)

    def chunk_steps(
        x_parts, us, hs, h_first, d_outs, d_h, d_out_next, recurrent_kernel, bias,
        mask, h_mask,
    ):
        """Back-propagation through the steps of one chunk (XLA-compiled),
        from the last step down. `x_parts`, `us` (with `reset_after`) and
        `hs` hold the chunk's steps; `h_first` the state before it.

        With `reset_after` the step's sources are `x_part_t`, `u_t` and
        `h_{t-1}`, and `δh_{t-1}` gets `δu_t · recurrent_kernelᵀ`, the loop's
        one product; without, the step (both its products) is differentiated
        with respect to `x_part_t` and `h_{t-1}`. Returns `δx_part` and `δu`
        (with `reset_after`) or the reset gate (without) of every step, and
        the gradients of the state and output before the chunk."""
        steps = tf.shape(x_parts)[0]
        no_output = tf.zeros_like(h_first)
        recurrent_t = tf.transpose(recurrent_kernel)

        def body(t, d_h, d_out_next, dxs, seconds):
            h_prev = previous(hs, h_first, t)
            d_out = d_outs[t] if sequences else 0.0
            sources = [x_parts[t], h_prev] + ([us[t]] if keeps_us else [])
            if masked:
                # Masked steps carry the state and the output: those feed the
                # gradient too (the previous output's value does not).
                sources.append(no_output)
                targets, output_gradients = [0, 1], [d_out + d_out_next, d_h]
            else:
                targets, output_gradients = [1], [d_out + d_h]
            with tf.GradientTape() as tape:
                tape.watch(sources)
                x_part, h_prev = sources[:2]
                u = sources[2] if keeps_us else None
                out_prev = sources[-1] if masked else None
                keep = mask[t] if masked else None
                out, h, values = config.step(
                    x_part, h_prev, out_prev, keep, recurrent_kernel, bias, h_mask, u
                )
            results = (out, h)
            grads = tape.gradient(
                [results[k] for k in targets],
                sources,
                output_gradients=output_gradients,
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            dx, dh_prev = grads[:2]
            if keeps_us:
                du = grads[2]
                dh_prev = dh_prev + dropped(tf.matmul(du, recurrent_t), h_mask)
                second = du
            else:
                second = values.reset_gate
            if masked:
                d_out_next = grads[-1]
            return (
                t - 1, dh_prev, d_out_next, dxs.write(t, dx), seconds.write(t, second)
            )

        loop = tf.while_loop(
            lambda t, *_: t >= 0,
            body,
            (
                steps - 1, d_h, d_out_next,
                tf.TensorArray(x_parts.dtype, size=steps),
                tf.TensorArray(x_parts.dtype, size=steps),
            ),
            maximum_iterations=steps,
        )
        _, d_h, d_out_next, dxs, seconds = loop
        return dxs.stack(), seconds.stack(), d_h, d_out_next

    compiled_chunk_steps = compiled(chunk_steps, jit=True)

    def backward(
        d_outs, d_h, x, saved, kernel, input_bias, h0, recurrent_kernel, bias,
        mask, h_mask,
    ):
        """Back-propagation through time, chunk by chunk from the end; each
        chunk adds to the weight gradients and gives the inputs' with one
        large product each."""
        hs, *us = (tf.TensorArray(x.dtype, flow=f) for f in saved)
        us = us[0] if keeps_us else None
        steps, batch = tf.shape(x)[0], tf.shape(x)[1]
        chunk = chunk_length(batch, steps)
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
        units = tf.shape(h0)[-1]

        def body(j, *carried):
            new = chunk_body(j, *carried)
            # The compiled chunk's outputs may have lost static shapes (its
            # `tf.function` relaxes them): give back the loop variables'.
            tf.nest.map_structure(
                lambda n, c: n.set_shape(c.shape), new[1:-1], carried[:-1]
            )
            return new

        def chunk_body(j, d_h, d_out_next, d_weights, d_xs):
            end = steps - j * chunk
            start = tf.maximum(end - chunk, 0)
            times = tf.range(start, end)
            x_chunk = x[start:end]
            x_parts = tf.tensordot(x_chunk, kernel, [[2], [0]]) + input_bias
            hs_chunk = hs.gather(times)
            h_first = read_previous(hs, h0, start)
            dxs, seconds, d_h, d_out_next = compiled_chunk_steps(
                x_parts,
                us.gather(times) if keeps_us else empty,
                hs_chunk, h_first,
                d_outs[start:end] if sequences else empty,
                d_h, d_out_next, recurrent_kernel, bias,
                mask[start:end] if masked else mask,
                h_mask,
            )
            d_kernel, d_input_bias, d_recurrent, d_bias = d_weights
            # `h_{t-1}` of each step of the chunk, as the products saw it.
            h_prevs = dropped(tf.concat([h_first[None], hs_chunk[:-1]], 0), h_mask)
            if keeps_us:
                d_recurrent = d_recurrent + flat_product(h_prevs, seconds)
                d_bias = d_bias + tf.reduce_sum(seconds, [0, 1])
            else:
                # `x_part` and the recurrent products add: `δu_zr = δx_zr`,
                # and the candidate's product `(r ⊙ h) · U_h` gets `δx_h`.
                d_recurrent = d_recurrent + tf.concat(
                    [
                        flat_product(h_prevs, dxs[..., : 2 * units]),
                        flat_product(seconds * h_prevs, dxs[..., 2 * units :]),
                    ],
                    -1,
                )
            d_weights = (
                d_kernel + flat_product(x_chunk, dxs),
                d_input_bias + tf.reduce_sum(dxs, [0, 1]),
                d_recurrent,
                d_bias,
            )
            d_x = tf.tensordot(dxs, kernel, [[2], [1]])
            d_xs = d_xs.write(n_chunks - 1 - j, d_x)
            return j + 1, d_h, d_out_next, d_weights, d_xs

        loop = tf.while_loop(
            lambda j, *_: j < n_chunks,
            body,
            (
                tf.constant(0), d_h, d_out_next,
                (
                    tf.zeros_like(kernel),
                    tf.zeros_like(input_bias),
                    tf.zeros_like(recurrent_kernel),
                    tf.zeros_like(bias),
                ),
                tf.TensorArray(x.dtype, size=n_chunks, infer_shape=False),
            ),
            maximum_iterations=n_chunks,
        )
        _, d_h0, _, d_weights, d_xs = loop
        d_kernel, d_input_bias, d_recurrent, d_bias = d_weights
        return d_xs.concat(), d_kernel, d_input_bias, d_h0, d_recurrent, d_bias

    return compiled(forward, jit=False), compiled(backward, jit=False)


def _kernels(config, sequences):
    key = (config.key(), sequences)
    if key not in _KERNELS:
        _KERNELS[key] = _build_kernels(config, sequences)
    return _KERNELS[key]


def gru_sequence(
    x,
    kernel,
    input_bias,
    h0,
    recurrent_kernel,
    recurrent_bias,
    mask,
    recurrent_mask,
    *,
    reset_after,
    activation,
    recurrent_activation,
    go_backwards,
    zero_output_for_mask,
    return_sequences=True,
):
    """Runs the GRU over a whole sequence, with a custom gradient.

    Args:
        x: Inputs, time-major: `(time, batch, features)`.
        kernel: `(features, 3·units)` tensor.
        input_bias: `(3·units,)` tensor, or `None`.
        h0: Initial state, `(batch, units)`.
        recurrent_kernel: `(units, 3·units)` tensor.
        recurrent_bias: `(3·units,)` tensor (`reset_after` only), or `None`.
        mask: Boolean `(batch, time)` tensor, or `None`.
        recurrent_mask: Recurrent dropout mask `(batch, units)`, or `None`.
        reset_after: The cell's `reset_after`.
        activation: `φ`.
        recurrent_activation: `σ`.
        go_backwards: Process the sequence in reverse (outputs are in
            processing order, as `keras.layers.RNN` returns them).
        zero_output_for_mask: As `keras.layers.RNN`'s argument.
        return_sequences: Whether the caller uses the whole output sequence;
            if not, no output is kept per step.

    Returns:
        `(last_output, outputs, [h])` as `keras.layers.RNN.inner_loop`
        returns them, outputs batch-major.
    """
    config = _GRUConfig(
        bool(reset_after),
        activation,
        recurrent_activation,
        mask is not None,
        bool(zero_output_for_mask),
        recurrent_mask is not None,
    )
    forward, backward = _kernels(config, bool(return_sequences))
    width = tf.shape(kernel)[-1]
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
    if input_bias is None:
        input_bias = tf.zeros([width], x.dtype)
    if recurrent_bias is None:
        # Adding zeros changes nothing; without `reset_after` it is unused.
        recurrent_bias = tf.zeros([width], x.dtype)
    if go_backwards:
        x = tf.reverse(x, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    mask_arg = mask if mask is not None else tf.zeros([0], tf.bool)
    h_mask = recurrent_mask if recurrent_mask is not None else tf.zeros([0], x.dtype)

    if not gradient_possible():
        outs, h, _ = forward(
            x, kernel, input_bias, h0, recurrent_kernel, recurrent_bias,
            mask_arg, h_mask, False,
        )
        return outs[-1], tf.transpose(outs, [1, 0, 2]), [h]

    @tf.custom_gradient
    def run(x, kernel, input_bias, h0, recurrent_kernel, recurrent_bias):
        # Cut the tape at the loop: its gradient is `grad` below.
        outs, h, saved = forward(
            *tf.nest.map_structure(
                tf.stop_gradient,
                (
                    x, kernel, input_bias, h0, recurrent_kernel, recurrent_bias,
                    mask_arg, h_mask,
                ),
            ),
            True,
        )

        def grad(d_outs, d_h):
            d_outs = tf.zeros_like(outs) if d_outs is None else d_outs
            d_h = tf.zeros_like(h0) if d_h is None else d_h
            return backward(
                d_outs, d_h, x, saved, kernel, input_bias, h0, recurrent_kernel,
                recurrent_bias, mask_arg, h_mask,
            )

        return (outs, h), grad

    outs, h = run(x, kernel, input_bias, h0, recurrent_kernel, recurrent_bias)
    return outs[-1], tf.transpose(outs, [1, 0, 2]), [h]
