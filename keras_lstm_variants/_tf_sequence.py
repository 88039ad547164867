"""The TensorFlow whole-sequence kernel behind the layers' fast path.

Imported lazily by `keras_lstm_variants.fast_path`, and only on the TensorFlow
backend: the only module of the package that imports TensorFlow at its top
(the export and callback modules import it inside their functions).

The recurrence runs as one custom gradient for the whole sequence:

* forward (a plain TensorFlow loop, traced inline into the caller's graph):
  `z_t = x_t · kernel + h_{t-1} · recurrent_kernel + bias`, then the shared
  gate equations `equations.lstm_gates`, then the layer's masking rule. The
  input product stays inside the loop: it does not depend on `h`, so the
  loop runs it for later steps while the current one waits (on a 2-core CPU
  that measured faster than one large product before the loop, which also
  writes a `time × batch × 4·units` tensor). Under a gradient tape the loop
  keeps `z_t`, `h_t`, `c_t`; without one (`predict`, SavedModel serving) it
  keeps only the outputs, or nothing when only the last output is used.
  XLA did not speed this loop up here (its elementwise kernels run on one
  thread), and a plain loop keeps exported models free of XLA;
* backward (XLA-compiled): back-propagation through time. Each step's local
  derivatives come from autodiff of the very same step function (so the gate
  formulas exist once, in `equations.py`); only `δz_t · recurrent_kernelᵀ`
  is a product inside the loop. The gradients of `recurrent_kernel`,
  `kernel`, `bias`, the inputs and the peepholes are large products and
  reductions over the saved `δz` after it, outside XLA.

Measured and dropped: a hand-written backward step (derivative formulas for
sigmoid / tanh, post-activations saved by the forward loop) ran no faster
than XLA's fusion of the autodiff step, and precomputing the derivatives of
all steps in batched ops before the loop cost more memory traffic than it
saved.

`JIT_FORWARD` and `JIT_BACKWARD` below choose which loop XLA compiles.

XLA cannot compile the gradient of a compiled `while_loop` taken from outside
(its saved per-step values are TensorLists, which may not cross the XLA
boundary); the custom gradient avoids that, and it removes the per-step
bookkeeping of TensorFlow's generic loop gradient, which dominates on CPU.
"""

import tensorflow as tf

from keras_lstm_variants.equations import block_order
from keras_lstm_variants.equations import lstm_gates

# One compiled pair of loops per static configuration, shared by all layers.
_KERNELS = {}

#: Whether each of the two loops is XLA-compiled (measured choice, see above).
JIT_FORWARD = False
JIT_BACKWARD = True

#: Loop iterations TensorFlow may run at once (the input product of later
#: steps overlaps the current step; Keras's own RNN loop uses 32 too).
PARALLEL_ITERATIONS = 32


class _StepConfig:
    """The static (Python) part of a step: what changes the traced graph."""

    def __init__(
        self,
        coupled,
        activation,
        recurrent_activation,
        peepholes,
        masked,
        zero_out,
        recurrent_dropout,
    ):
        self.coupled = coupled
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.peepholes = peepholes  # tuple of gate names that have a weight
        self.masked = masked
        self.zero_out = zero_out
        self.recurrent_dropout = recurrent_dropout

    def key(self):
        return (
            self.coupled,
            self.activation,
            self.recurrent_activation,
            self.peepholes,
            self.masked,
            self.zero_out,
            self.recurrent_dropout,
        )

    def step(self, z, h_prev, c_prev, out_prev, keep, peephole_values):
        """One step after the recurrent product: gates, then masking.

        Returns `(output, h, c)`, following `keras.layers.RNN`'s rule for
        masked steps: the states are carried over and the output repeats the
        previous output (or is zero with `zero_output_for_mask`).
        """
        weights = dict(zip(self.peepholes, peephole_values, strict=True))
        gates = lstm_gates(
            z,
            c_prev,
            coupled=self.coupled,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            input_peephole=weights.get("input"),
            forget_peephole=weights.get("forget"),
            output_peephole=weights.get("output"),
        )
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


def _build_kernels(config, jit_forward, jit_backward):
    """The forward and backward loops for one configuration.

    Saved per step for the backward pass: `z_t`, `h_t` and `c_t`, and the
    output only when a mask makes it differ from `h_t`.
    """
    keeps_outputs = config.masked

    def dropped(h, h_mask):
        return h * h_mask if config.recurrent_dropout else h

    def forward(
        x, kernel, bias, h0, c0, recurrent_kernel, peepholes, mask, h_mask, keep
    ):
        """The loop. `keep` says what it keeps per step: `"saved"` what the
        backward loop needs, `"outputs"` the outputs only (inference), `None`
        nothing (inference of the last output only). The previous output is a
        loop variable only under a mask (without one it is `h`): each loop
        variable costs a few control ops per step."""
        steps = tf.shape(x)[0]

        def body(t, h, c, *rest):
            *out, arrays = rest
            out_prev = out[0] if keeps_outputs else None
            # The input product does not depend on `h`: the loop runs it for
            # the next steps while this one waits (measured faster on a
            # 2-core CPU than one large product before the loop).
            z = tf.matmul(x[t], kernel)
            z = z + tf.matmul(dropped(h, h_mask), recurrent_kernel) + bias
            out, h, c = config.step(
                z, h, c, out_prev, mask[t] if config.masked else None, peepholes
            )
            if keep == "saved":
                values = (z, h, c, out) if keeps_outputs else (z, h, c)
            else:
                values = (out,) if keep == "outputs" else ()
            arrays = tuple(a.write(t, v) for a, v in zip(arrays, values, strict=True))
            return (t + 1, h, c, *((out,) if keeps_outputs else ()), arrays)

        n_arrays = {"saved": 4 if keeps_outputs else 3, "outputs": 1, None: 0}[keep]
        # Known element shapes keep the loop convertible (TF Lite needs them).
        state_shape = tf.TensorShape([x.shape[1], h0.shape[-1]]).merge_with(h0.shape)
        z_shape = state_shape[:-1].concatenate(recurrent_kernel.shape[-1:])
        shapes = (z_shape, state_shape, state_shape, state_shape)
        if keep != "saved":
            shapes = (state_shape,)
        arrays = tuple(
            tf.TensorArray(x.dtype, size=steps, element_shape=shape)
            for shape in shapes[:n_arrays]
        )
        loop = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (
                tf.constant(0), h0, c0,
                *((tf.zeros_like(h0),) if keeps_outputs else ()),
                arrays,
            ),
            maximum_iterations=steps,
            parallel_iterations=PARALLEL_ITERATIONS,
        )
        saved = tuple(a.stack() for a in loop[-1])
        if keep is None:
            return (loop[3] if keeps_outputs else loop[1])[None], loop[1], loop[2]
        if keep == "outputs":
            return saved[0], loop[1], loop[2]  # outs, h, c
        return saved if keeps_outputs else (*saved, saved[1])  # zs, hs, cs, outs

    def backward(
        d_outs, d_h, d_c, zs, hs, cs, outs, h0, c0, recurrent_kernel, peepholes,
        mask, h_mask,
    ):
        steps = tf.shape(zs)[0]
        recurrent_t = tf.transpose(recurrent_kernel)
        no_output = tf.zeros_like(h0)

        def body(t, d_h, d_c, *rest):
            *d_out_next, dz_array = rest
            z = zs[t]
            c_prev = _previous(cs, c0, t)
            if config.masked:
                # Masked steps carry the states and the output: those feed
                # the gradient too.
                h_prev = _previous(hs, h0, t)
                out_prev = (
                    _previous(outs, no_output, t) if keeps_outputs else no_output
                )
                sources = [z, c_prev, h_prev, out_prev]
                targets_and_grads = (
                    [0, 1, 2], [d_outs[t] + d_out_next[0], d_h, d_c]
                )
            else:
                # Here `out = h`, and `h_{t-1}` reaches the step only through
                # `z` (the product below).
                h_prev = out_prev = None
                sources = [z, c_prev]
                targets_and_grads = ([1, 2], [d_outs[t] + d_h, d_c])
            with tf.GradientTape() as tape:
                tape.watch(sources)
                keep = mask[t] if config.masked else None
                step = config.step(z, h_prev, c_prev, out_prev, keep, peepholes)
            which, output_gradients = targets_and_grads
            grads = tape.gradient(
                [step[k] for k in which],
                sources,
                output_gradients=output_gradients,
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            dz, dc_prev = grads[:2]
            dh_prev = dropped(tf.matmul(dz, recurrent_t), h_mask)
            if not config.masked:
                return t - 1, dh_prev, dc_prev, dz_array.write(t, dz)
            dh_prev = dh_prev + grads[2]
            return t - 1, dh_prev, dc_prev, grads[3], dz_array.write(t, dz)

        loop = tf.while_loop(
            lambda t, *_: t >= 0,
            body,
            (
                steps - 1,
                d_h,
                d_c,
                *((tf.zeros_like(d_h),) if config.masked else ()),
                tf.TensorArray(zs.dtype, size=steps),
            ),
            maximum_iterations=steps,
            parallel_iterations=PARALLEL_ITERATIONS,
        )
        d_h0, d_c0, dz_array = loop[1], loop[2], loop[-1]
        return dz_array.stack(), d_h0, d_c0

    def saving_forward(*args):
        return forward(*args, keep="saved")

    def inference_forward(*args):
        return forward(*args, keep="outputs")

    def last_output_forward(*args):
        return forward(*args, keep=None)

    return (
        _compiled(saving_forward, jit_forward),
        _compiled(backward, jit_backward),
        _compiled(inference_forward, jit_forward),
        _compiled(last_output_forward, jit_forward),
    )


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


def _gradient_possible():
    """Whether a gradient tape may record the current call.

    False under `predict` and SavedModel serving (traced without a tape);
    True in `fit`'s train step and under any active `tf.GradientTape`. Where
    TensorFlow's private helper is missing, assume a tape (always correct).
    """
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover
        return True
    return record.could_possibly_record()


def _recurrent_kernel_gradient(h0, hs, dzs, h_mask):
    """`Σ_t h_{t-1}ᵀ · δz_t` as one large product, outside XLA (measured:
    TensorFlow's own product is faster here than XLA's for this shape)."""
    h_prevs = tf.concat([h0[None], hs[:-1]], 0)
    if h_mask.shape.rank == 2:  # recurrent dropout (else an empty placeholder)
        h_prevs = h_prevs * h_mask
    units, width = tf.shape(h0)[-1], tf.shape(dzs)[-1]
    return tf.matmul(
        tf.reshape(h_prevs, [-1, units]), tf.reshape(dzs, [-1, width]),
        transpose_a=True,
    )


def _peephole_gradients(dzs, c0, cs, gates, coupled):
    """Each peephole's gradient, from the saved `δz` after the loop.

    A peephole enters its gate's pre-activation additively, `a = z + p ⊙ c`
    (`c_{t-1}` for the input and forget gates, `c_t` for the output gate), so
    `δa = δz` and `δp = Σ_{t, batch} δz_gate ⊙ c`: large reductions here
    rather than one per step inside the loop. At masked steps `δz = 0`.
    """
    if not gates:
        return ()
    names = block_order(coupled)
    units = tf.shape(c0)[-1]
    c_prevs = tf.concat([c0[None], cs[:-1]], 0)
    return tuple(
        tf.reduce_sum(
            dzs[:, :, names.index(g) * units : (names.index(g) + 1) * units]
            * (cs if g == "output" else c_prevs),
            [0, 1],
        )
        for g in gates
    )


def _input_gradients(x, kernel, dzs):
    """Gradients of the inputs, `kernel` and `bias`: large products each."""
    features, width = tf.shape(x)[-1], tf.shape(dzs)[-1]
    d_x = tf.tensordot(dzs, kernel, axes=[[2], [1]])
    d_kernel = tf.matmul(
        tf.reshape(x, [-1, features]), tf.reshape(dzs, [-1, width]), transpose_a=True
    )
    return d_x, d_kernel, tf.reduce_sum(dzs, [0, 1])


def _kernels(config):
    key = (config.key(), JIT_FORWARD, JIT_BACKWARD)
    if key not in _KERNELS:
        _KERNELS[key] = _build_kernels(config, JIT_FORWARD, JIT_BACKWARD)
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
    coupled,
    activation,
    recurrent_activation,
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
        coupled, activation, recurrent_activation: As the cell's.
        go_backwards: Process the sequence in reverse (outputs are in
            processing order, as `keras.layers.RNN` returns them).
        zero_output_for_mask: As `keras.layers.RNN`'s argument.
        return_sequences: Whether the caller uses the whole output sequence;
            if not, inference keeps no output per step (the returned
            sequence then holds only the last output).

    Returns:
        `(last_output, outputs, [h, c])` as `keras.layers.RNN.inner_loop`
        returns them, outputs batch-major.
    """
    gates = tuple(sorted(peepholes))
    config = _StepConfig(
        coupled,
        activation,
        recurrent_activation,
        gates,
        mask is not None,
        bool(zero_output_for_mask),
        recurrent_mask is not None,
    )
    forward, backward, inference_forward, last_output_forward = _kernels(config)
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
        loop = inference_forward if return_sequences else last_output_forward
        outs, h, c = loop(
            x, kernel, bias, h0, c0, recurrent_kernel,
            tuple(peepholes[g] for g in gates), mask_arg, h_mask,
        )
        return outs[-1], tf.transpose(outs, [1, 0, 2]), [h, c]

    @tf.custom_gradient
    def run(x, kernel, bias, h0, c0, recurrent_kernel, *peephole_values):
        # Cut the tape at the compiled loop: its gradient is `grad` below,
        # and a taped call would hand TensorLists across the XLA boundary.
        zs, hs, cs, outs = forward(
            *tf.nest.map_structure(
                tf.stop_gradient,
                (
                    x, kernel, bias, h0, c0, recurrent_kernel, peephole_values,
                    mask_arg, h_mask,
                ),
            )
        )

        def grad(d_outs, d_h, d_c):
            d_outs = tf.zeros_like(outs) if d_outs is None else d_outs
            d_h = tf.zeros_like(h0) if d_h is None else d_h
            d_c = tf.zeros_like(c0) if d_c is None else d_c
            dzs, d_h0, d_c0 = backward(
                d_outs, d_h, d_c, zs, hs, cs, outs, h0, c0, recurrent_kernel,
                peephole_values, mask_arg, h_mask,
            )
            d_recurrent = _recurrent_kernel_gradient(h0, hs, dzs, h_mask)
            d_peep = _peephole_gradients(dzs, c0, cs, gates, coupled)
            d_x, d_kernel, d_bias = _input_gradients(x, kernel, dzs)
            return (d_x, d_kernel, d_bias, d_h0, d_c0, d_recurrent, *d_peep)

        return (outs, hs[-1], cs[-1]), grad

    outs, h, c = run(
        x, kernel, bias, h0, c0, recurrent_kernel, *(peepholes[g] for g in gates)
    )
    return outs[-1], tf.transpose(outs, [1, 0, 2]), [h, c]
