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
  writes a `time × batch × 4·units` tensor); so does, with layer
  normalization, the input part `LN_k(x · kernel) + bias`
  (`equations.input_preactivations`; before the loop for the whole
  sequence, forward passes measured 10-20% slower). Under a gradient tape
  the loop keeps only `z_t` and `c_t` per step (with layer normalization
  `h_{t-1} · recurrent_kernel` instead of `z_t`; with full gate recurrence
  also the gate state `a_t`; `h_t` under a mask), in `TensorArray`s that
  are never stacked: stacking copies, and the copy doubled the peak.
  Without a tape (`predict`, SavedModel serving) it keeps only the
  outputs, or nothing when only the last output is used. A plain loop
  keeps exported models free of XLA;
* backward: back-propagation through time in chunks of about
  `_tf_loops.CHUNK_ROWS` rows (`steps × batch`) and at most `√time` steps,
  from the end. Each
  chunk's steps run in an XLA-compiled loop: each step's local derivatives
  come from autodiff of the very same step function (so the gate formulas
  exist once, in `equations.py`), which also recomputes `h_t` from `z_t` and
  `c_{t-1}`; only `δz_t · recurrent_kernelᵀ` is a product inside it besides
  the step's own (the gate recurrence, the projection). The same autodiff
  gives each step's share of the gradients of the step's own weights: the
  vectors (peepholes, `γ` and `β`) enter broadcast to `(batch, n)`, so
  their gradients add up per row and are summed over the batch once per
  chunk; `projection_kernel`'s adds up per step (`gate_recurrent_kernel`'s
  is one large product per chunk, as `recurrent_kernel`'s). Then the
  chunk's `δz` feeds the gradients of `kernel`,
  `recurrent_kernel`, `bias` and the inputs with one TensorFlow product
  each (with layer normalization after one batched autodiff pass back
  through the chunk's input part), so `δz` never exists for the whole
  sequence. The only derivatives written out are those of the products
  (`δh_{t-1} = δv_t · recurrent_kernelᵀ`, `δa_{t-1} += δfeedback_t ·
  gate_recurrent_kernelᵀ` inside the loop, whose `a_{t-1} ·
  gate_recurrent_kernel` is computed for the whole chunk before it, and
  the large products after it); the tests compare every gradient with the
  generic loop's.

Peak tensor memory of a training step is thus about 5 `batch × time × units`
values (the saved `z` and `c`) plus chunk-sized buffers; `keras.layers.LSTM`
takes about 7.5. Full gate recurrence adds 3 (the saved `a`).

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

from keras_lstm_variants._tf_loops import PARALLEL_ITERATIONS
from keras_lstm_variants._tf_loops import chunk_length
from keras_lstm_variants._tf_loops import compiled
from keras_lstm_variants._tf_loops import flat_product
from keras_lstm_variants._tf_loops import gradient_possible
from keras_lstm_variants._tf_loops import previous
from keras_lstm_variants._tf_loops import read_previous
from keras_lstm_variants.equations import NORM_WEIGHTS
from keras_lstm_variants.equations import input_preactivations
from keras_lstm_variants.equations import lstm_step
from keras_lstm_variants.equations import next_states
from keras_lstm_variants.equations import preactivations
from keras_lstm_variants.equations import recurrent_preactivations

# One forward and backward pair per static configuration, shared by all layers.
_KERNELS = {}

#: The step's matrices besides `kernel` and `recurrent_kernel`, in order.
MATRIX_WEIGHTS = ("gate_recurrent_kernel", "projection_kernel")


class _StepConfig:
    """The static (Python) part of a step: what changes the traced graph.

    Besides `kernel`, `recurrent_kernel` and `bias`, a step reads its own
    weights, passed as a tuple in the order of `weight_names`: with layer
    normalization the input product's `γ` and `β` (`input_norms`, read by
    `input_part`, which the backward pass runs for a whole chunk at once),
    then the vectors the step reads
    (peepholes by gate name, then the other norms' `γ` and `β`) and the
    matrices (`MATRIX_WEIGHTS` the variant has).
    """

    def __init__(self, lstm, masked, zero_out, recurrent_dropout):
        self.lstm = lstm  # the cell's `equations.LSTMStep`
        self.masked = masked
        self.zero_out = zero_out
        self.recurrent_dropout = recurrent_dropout
        self.normalized = lstm.layer_norm
        self.gated_state = lstm.full_gate_recurrence  # the state `a`
        norms = NORM_WEIGHTS if self.normalized else ()
        self.input_norms = norms[:2]  # kernel_norm_gamma, kernel_norm_beta
        self.vectors = lstm.peephole_gates + norms[2:]
        present = (lstm.full_gate_recurrence, lstm.projection_units is not None)
        self.matrices = tuple(
            name for name, has in zip(MATRIX_WEIGHTS, present, strict=True) if has
        )
        self.weight_names = self.input_norms + self.vectors + self.matrices

    def key(self):
        return (self.lstm, self.masked, self.zero_out, self.recurrent_dropout)

    def input_part(self, x_kernel, bias, norms):
        """`equations.input_preactivations` of a whole chunk or sequence
        (`norms`: the values of `input_norms`); with layer normalization the
        steps read it instead of `x_t · kernel`."""
        named = dict(zip(self.input_norms, norms, strict=True))
        return input_preactivations(self.lstm, x_kernel, bias, named)

    def step(self, pre, states, out_prev, keep, weights, feedback=None):
        """One step after the two products: gates, then masking.

        `pre` is `z` (bias included), or with layer normalization the pair
        `(input_part, h_{t-1} · recurrent_kernel)`, whose second part is
        normalized here (`equations.recurrent_preactivations`). `states`
        holds the previous `(h, c)` or `(h, c, a)` (`h` is read only under a
        mask); `weights` the values of `vectors` and `matrices`. Returns
        `(output, states)`, following `keras.layers.RNN`'s rule for masked
        steps: the states are carried over and the output repeats the
        previous output (or is zero with `zero_output_for_mask`). With full
        gate recurrence, `feedback` may hold `a_{t-1} · gate_recurrent_kernel`
        (see `equations.lstm_step`).
        """
        names = self.vectors + self.matrices
        w = dict(zip(names, weights, strict=True))
        z = pre
        if self.normalized:
            z = pre[0] + recurrent_preactivations(self.lstm, pre[1], w)
        values = lstm_step(
            self.lstm,
            z,
            states[1],
            {gate: w[gate] for gate in self.lstm.peephole_gates},
            gates_prev=states[2] if self.gated_state else None,
            gate_recurrent_kernel=w.get("gate_recurrent_kernel"),
            norms=w,
            projection_kernel=w.get("projection_kernel"),
            feedback=feedback,
        )
        new = tuple(next_states(self.lstm, values))
        h = new[0]
        if not self.masked:
            return h, new
        masked_out = tf.zeros_like(h) if self.zero_out else out_prev
        return tf.where(keep, h, masked_out), tuple(
            tf.where(keep, n, p) for n, p in zip(new, states, strict=True)
        )


def _build_kernels(config, sequences):
    """The loops for one configuration; `sequences`: whether the caller uses
    every output (else only the last one).

    Returns `(forward, backward)`: `forward(..., keep)` and the backward pass
    of `forward(..., keep=True)`.
    """
    masked = config.masked
    normalized = config.normalized
    gated = config.gated_state
    keeps_hs = masked  # elsewhere the backward pass recomputes `h_t`

    def dropped(h, h_mask):
        return h * h_mask if config.recurrent_dropout else h

    def forward(
        x, kernel, bias, states0, recurrent_kernel, weights, mask, h_mask, keep
    ):
        """The loop. Returns `(outs, states, saved)`: the outputs (all if
        `sequences`, else the last one), the final states, and, if `keep`,
        what the backward pass needs as the flows of per-step `TensorArray`s,
        never stacked into one tensor (that would copy them): `z_t` (with
        layer normalization `h_{t-1} · recurrent_kernel` instead; the input
        part is recomputed per chunk), `c_t`, `a_t` with full gate
        recurrence, and `h_t` under a mask (elsewhere `h_t` is recomputed from
        the step's inputs). The previous output is a loop variable only under
        a mask (without one it is `h`): each loop variable costs a few control
        ops per step. Traced inline into the caller's graph (see
        `compiled`)."""
        steps = tf.shape(x)[0]
        n_in = len(config.input_norms)
        step_weights = weights[n_in:]

        def body(t, states, out, arrays):
            # The input part does not depend on `h`: the loop runs it for the
            # next steps while this one waits (measured faster on a 2-core
            # CPU than one large product, or normalization, before the loop).
            u = tf.matmul(x[t], kernel)
            v = tf.matmul(dropped(states[0], h_mask), recurrent_kernel)
            if normalized:
                pre = (config.input_part(u, bias, weights[:n_in]), v)
            else:
                pre = preactivations(config.lstm, u, v, bias)
            out, new = config.step(
                pre,
                states,
                out[0] if masked else None,
                mask[t] if masked else None,
                step_weights,
            )
            saved = (v if normalized else pre, *new[1:])
            kept = ((out,) if sequences else ()) + (
                (saved + ((new[0],) if keeps_hs else ())) if keep else ()
            )
            arrays = tuple(a.write(t, k) for a, k in zip(arrays, kept, strict=True))
            return (t + 1, new, (out,) if masked else (), arrays)

        # Known element shapes keep the loop convertible (TF Lite needs them).
        def shape_of(state):
            return tf.TensorShape([x.shape[1], state.shape[-1]]).merge_with(state.shape)

        state_shapes = tuple(shape_of(s) for s in states0)
        pre_shape = state_shapes[0][:-1].concatenate(recurrent_kernel.shape[-1:])
        shapes = ((state_shapes[0],) if sequences else ()) + (
            ((pre_shape, *state_shapes[1:]) + (state_shapes[:1] if keeps_hs else ()))
            if keep
            else ()
        )
        arrays = tuple(
            tf.TensorArray(x.dtype, size=steps, element_shape=shape) for shape in shapes
        )
        loop = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (
                tf.constant(0),
                tuple(states0),
                (tf.zeros_like(states0[0]),) if masked else (),
                arrays,
            ),
            maximum_iterations=steps,
            parallel_iterations=PARALLEL_ITERATIONS,
        )
        _, states, out, arrays = loop
        if sequences:
            outs, arrays = arrays[0].stack(), arrays[1:]
        else:
            outs = (out[0] if masked else states[0])[None]
        # The arrays' flows (TensorLists) cross function boundaries.
        return outs, states, tuple(a.flow for a in arrays)

    def chunk_steps(
        pres,
        us,
        cs,
        c_first,
        gs,
        g_first,
        fbs,
        hs,
        h_first,
        d_outs,
        d_states,
        d_out_next,
        recurrent_kernel,
        weights,
        mask,
        h_mask,
    ):
        """Back-propagation through the steps of one chunk (XLA-compiled),
        from the last step down. Arguments hold the chunk's steps: the saved
        `pres` (`z`, or `h·recurrent_kernel` with layer normalization, whose
        input parts are `us`), the cell states `cs`, the gate states `gs`
        (full gate recurrence) and the hidden states `hs` (under a mask);
        `*_first` the states before the chunk.

        Each step's local derivatives, and its share of the gradients of the
        step's own weights, come from autodiff of the step function (so the
        formulas exist once, in `equations.py`); only `δv_t ·
        recurrent_kernelᵀ` is a product inside the loop besides the step's
        own. The vector weights enter the step broadcast to `(batch, n)`, so
        that their gradients add up per row and are summed over the batch
        once, after the loop. Returns the gradients of both products of every
        step (one tensor `δz` without layer normalization), the (dropped-out)
        `h` of every step, the gradients of the states and the output before
        the chunk, and the chunk's gradients of the step's weights.
        """
        steps = tf.shape(cs)[0]
        batch = tf.shape(c_first)[0]
        recurrent_t = tf.transpose(recurrent_kernel)
        n_vectors = len(config.vectors)
        wide = tuple(
            tf.broadcast_to(v, [batch, tf.shape(v)[0]]) for v in weights[:n_vectors]
        )
        matrices = tuple(weights[n_vectors:])
        # Not `gate_recurrent_kernel`: its gradient is one large product per
        # chunk (`backward`), as the recurrent kernel's.
        learned = wide + tuple(
            m
            for name, m in zip(config.matrices, matrices, strict=True)
            if name != "gate_recurrent_kernel"
        )
        no_output = tf.zeros_like(h_first)
        gate_t = tf.transpose(matrices[0]) if gated else None

        def body(t, d_states, d_out_next, d_weights, arrays):
            c_prev = previous(cs, c_first, t)
            pre = [us[t], pres[t]] if normalized else [pres[t]]
            states = [c_prev] + ([previous(gs, g_first, t)] if gated else [])
            if masked:
                # Masked steps carry the states and the output: those feed
                # the gradient too (the previous output's value does not).
                extra = [previous(hs, h_first, t), no_output]
                targets_grads = [d_outs[t] + d_out_next if sequences else d_out_next]
            else:
                # Here `out = h`, and `h_{t-1}` reaches the step only through
                # the recurrent product.
                extra = []
                d_out = d_outs[t] if sequences else 0.0
                d_states = (d_states[0] + d_out, *d_states[1:])
                targets_grads = []
            # `a_{t-1} · gate_recurrent_kernel`, computed before the loop.
            feedback = [fbs[t]] if gated else []
            sources = [*pre, *states, *extra, *feedback, *learned]
            with tf.GradientTape() as tape:
                tape.watch(sources)
                h_prev, out_prev = extra if masked else (None, None)
                out, new = config.step(
                    tuple(pre) if normalized else pre[0],
                    (h_prev, *states),
                    out_prev,
                    mask[t] if masked else None,
                    wide + matrices,
                    feedback[0] if gated else None,
                )
            grads = tape.gradient(
                ([out] if masked else []) + list(new),
                sources,
                output_gradients=targets_grads + list(d_states),
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            d_pre, grads = grads[: len(pre)], grads[len(pre) :]
            d_prev, grads = grads[: len(states)], grads[len(states) :]
            dh_prev = dropped(tf.matmul(d_pre[-1], recurrent_t), h_mask)
            if masked:
                dh_prev, d_out_next = dh_prev + grads[0], grads[1]
                grads = grads[2:]
            if gated:
                d_feedback, grads = grads[0], grads[1:]
                d_prev = (d_prev[0], d_prev[1] + tf.matmul(d_feedback, gate_t))
            d_weights = tuple(a + g for a, g in zip(d_weights, grads, strict=True))
            values = (*d_pre, dropped(new[0], h_mask))
            arrays = tuple(a.write(t, v) for a, v in zip(arrays, values, strict=True))
            return t - 1, (dh_prev, *d_prev), d_out_next, d_weights, arrays

        loop = tf.while_loop(
            lambda t, *_: t >= 0,
            body,
            (
                steps - 1,
                tuple(d_states),
                d_out_next,
                tuple(tf.zeros_like(w) for w in learned),
                tuple(
                    tf.TensorArray(cs.dtype, size=steps)
                    for _ in range(3 if normalized else 2)
                ),
            ),
            maximum_iterations=steps,
        )
        _, d_states, d_out_next, d_weights, arrays = loop
        d_weights = tuple(
            tf.reduce_sum(g, 0) if k < n_vectors else g for k, g in enumerate(d_weights)
        )
        return tuple(a.stack() for a in arrays), d_states, d_out_next, d_weights

    compiled_chunk_steps = compiled(chunk_steps, jit=True)

    def backward(
        d_outs,
        d_states,
        x,
        saved,
        kernel,
        bias,
        states0,
        recurrent_kernel,
        weights,
        mask,
        h_mask,
    ):
        """Back-propagation through time, chunk by chunk from the end, so
        that `δz` never exists for the whole sequence: each chunk's steps run
        in `chunk_steps` (XLA), then the chunk adds to the gradients of
        `kernel`, `recurrent_kernel` and `bias` and gives the inputs' with
        one large product each (TensorFlow's products: faster here than
        XLA's). `d_outs` holds every output's gradient, or only the last
        one's."""
        pres, cs, *rest = (tf.TensorArray(x.dtype, flow=f) for f in saved)
        gs = rest.pop(0) if gated else None
        hs = rest.pop(0) if masked else None
        h0, c0 = states0[0], states0[1]
        n_in = len(config.input_norms)
        g0 = states0[2] if gated else None
        steps, batch = tf.shape(x)[0], tf.shape(x)[1]
        chunk = chunk_length(batch, steps)
        n_chunks = (steps + chunk - 1) // chunk
        d_out_next = tf.zeros_like(h0)
        d_states = tuple(d_states)
        if not sequences:
            # Only the last output has a gradient: that of the output carried
            # out of the last step (which is `h` without a mask).
            d_out_next = d_outs[0]
            if not masked:
                d_states = (d_states[0] + d_out_next, *d_states[1:])
                d_out_next = tf.zeros_like(h0)
        empty = tf.zeros([0], x.dtype)

        def gate_kernel_gradient(d_own, dz, a_prev):
            """`d_own` with the chunk's gradient of `gate_recurrent_kernel`
            inserted after the vectors': `Σ_t a_{t-1}ᵀ · δz_t[i, f, o]`, as
            the previous gates' product adds to the blocks `i, f, o` of `z`
            (`equations.lstm_step`)."""
            units = tf.shape(a_prev)[-1] // 3
            blocks = [
                config.lstm.blocks.index(g) for g in ("input", "forget", "output")
            ]
            d_gates = tf.concat(
                [dz[..., b * units : (b + 1) * units] for b in blocks], -1
            )
            n = len(config.vectors)
            return (*d_own[:n], flat_product(a_prev, d_gates), *d_own[n:])

        def body(j, *carried):
            new = chunk_body(j, *carried)
            # The compiled chunk's outputs may have lost static shapes (its
            # `tf.function` relaxes them): give back the loop variables'.
            tf.nest.map_structure(
                lambda n, c: n.set_shape(c.shape), new[1:-1], carried[:-1]
            )
            return new

        def chunk_body(j, d_states, d_out_next, d_rec_above, d_weights, d_xs):
            end = steps - j * chunk
            start = tf.maximum(end - chunk, 0)
            times = tf.range(start, end)
            xs = x[start:end]
            g_chunk = gs.gather(times) if gated else empty
            g_first = read_previous(gs, g0, start) if gated else empty
            feedback = empty
            if gated:
                # The previous gates' product for all the chunk's steps.
                a_prev = tf.concat([g_first[None], g_chunk[:-1]], 0)
                gate_kernel = weights[n_in + len(config.vectors)]
                feedback = tf.tensordot(a_prev, gate_kernel, [[2], [0]])
            inputs = empty
            if normalized:
                # The chunk's input part, recomputed under a tape: its
                # gradient is one batched pass after the chunk's steps.
                in_sources = [tf.tensordot(xs, kernel, [[2], [0]]), bias]
                in_sources += list(weights[:n_in])
                with tf.GradientTape() as tape:
                    tape.watch(in_sources)
                    inputs = config.input_part(
                        in_sources[0], in_sources[1], in_sources[2:]
                    )
            products, d_states, d_out_next, d_own = compiled_chunk_steps(
                pres.gather(times),
                inputs,
                cs.gather(times),
                read_previous(cs, c0, start),
                g_chunk,
                g_first,
                feedback,
                hs.gather(times) if masked else empty,
                read_previous(hs, h0, start) if masked else tf.zeros_like(h0),
                d_outs[start:end] if sequences else empty,
                d_states,
                d_out_next,
                recurrent_kernel,
                weights[n_in:],
                mask[start:end] if masked else mask,
                h_mask,
            )
            *d_products, h_out = products
            d_in, d_rec = d_products[0], d_products[-1]
            if gated:
                d_own = gate_kernel_gradient(d_own, d_in, a_prev)
            d_kernel, d_bias, d_recurrent, d_step = d_weights
            if normalized:
                # `δz` of the input part, back through its normalization.
                d_in, d_b, *d_norms = tape.gradient(
                    inputs, in_sources, output_gradients=d_in
                )
                d_bias = d_bias + d_b
                d_own = (*d_norms, *d_own)
            else:
                d_bias = d_bias + tf.reduce_sum(d_in, [0, 1])
            # `h_t` pairs with `δv_{t+1}`; the chunk's last `h` with the first
            # `δv` of the chunk above (zero at the end).
            d_rec_next = tf.concat([d_rec[1:], d_rec_above[None]], 0)
            d_weights = (
                d_kernel + flat_product(xs, d_in),
                d_bias,
                d_recurrent + flat_product(h_out, d_rec_next),
                tuple(a + b for a, b in zip(d_step, d_own, strict=True)),
            )
            d_x = tf.tensordot(d_in, kernel, [[2], [1]])
            d_xs = d_xs.write(n_chunks - 1 - j, d_x)
            return j + 1, d_states, d_out_next, d_rec[0], d_weights, d_xs

        loop = tf.while_loop(
            lambda j, *_: j < n_chunks,
            body,
            (
                tf.constant(0),
                d_states,
                d_out_next,
                tf.zeros([batch, tf.shape(kernel)[-1]], x.dtype),
                (
                    tf.zeros_like(kernel),
                    tf.zeros_like(bias),
                    tf.zeros_like(recurrent_kernel),
                    tuple(tf.zeros_like(w) for w in weights),
                ),
                tf.TensorArray(x.dtype, size=n_chunks, infer_shape=False),
            ),
            maximum_iterations=n_chunks,
        )
        _, d_states0, _, d_rec_first, d_weights, d_xs = loop
        d_kernel, d_bias, d_recurrent, d_step = d_weights
        # The first step's `δv` pairs with the initial state.
        d_recurrent = d_recurrent + tf.matmul(
            dropped(h0, h_mask), d_rec_first, transpose_a=True
        )
        return d_xs.concat(), d_kernel, d_bias, d_states0, d_recurrent, d_step

    return compiled(forward, jit=False), compiled(backward, jit=False)


def _kernels(config, sequences):
    key = (config.key(), sequences)
    if key not in _KERNELS:
        _KERNELS[key] = _build_kernels(config, sequences)
    return _KERNELS[key]


def lstm_sequence(
    x,
    kernel,
    bias,
    initial_state,
    recurrent_kernel,
    weights,
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
        initial_state: The initial states, `[h0, c0]` (`[h0, c0, a0]` with
            full gate recurrence).
        recurrent_kernel: `(units or projection_units, blocks·units)` tensor.
        weights: Dict of the step's own weights, those the step reads: the
            peepholes by gate name (`"input"`, ...), the layer normalization
            weights (`equations.NORM_WEIGHTS`), `gate_recurrent_kernel`,
            `projection_kernel`.
        mask: Boolean `(batch, time)` tensor, or `None`.
        recurrent_mask: Recurrent dropout mask `(batch, units)` that
            multiplies `h_{t-1}` before the recurrent product, or `None`.
        step: The cell's `equations.LSTMStep`.
        go_backwards: Process the sequence in reverse (outputs are in
            processing order, as `keras.layers.RNN` returns them).
        zero_output_for_mask: As `keras.layers.RNN`'s argument.
        return_sequences: Whether the caller uses the whole output sequence;
            if not, no output is kept per step (the returned sequence then
            holds only the last output).

    Returns:
        `(last_output, outputs, states)` as `keras.layers.RNN.inner_loop`
        returns them, outputs batch-major.
    """
    config = _StepConfig(
        step, mask is not None, bool(zero_output_for_mask), recurrent_mask is not None
    )
    forward, backward = _kernels(config, bool(return_sequences))
    weights = tuple(weights[name] for name in config.weight_names)
    states0 = tuple(initial_state)
    n_states = len(states0)
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
    if bias is None:
        bias = tf.zeros([tf.shape(kernel)[-1]], x.dtype)
    if go_backwards:
        x = tf.reverse(x, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    mask_arg = mask if mask is not None else tf.zeros([0], tf.bool)
    h_mask = recurrent_mask if recurrent_mask is not None else tf.zeros([0], x.dtype)

    if not gradient_possible():
        # No tape records this call (e.g. `predict`): keep nothing per step.
        outs, states, _ = forward(
            x,
            kernel,
            bias,
            states0,
            recurrent_kernel,
            weights,
            mask_arg,
            h_mask,
            False,
        )
        return outs[-1], tf.transpose(outs, [1, 0, 2]), list(states)

    @tf.custom_gradient
    def run(x, kernel, bias, recurrent_kernel, *rest):
        states0, weights = rest[:n_states], rest[n_states:]
        # Cut the tape at the loop: its gradient is `grad` below.
        outs, states, saved = forward(
            *tf.nest.map_structure(
                tf.stop_gradient,
                (x, kernel, bias, states0, recurrent_kernel, weights, mask_arg, h_mask),
            ),
            True,
        )

        def grad(d_outs, *d_states):
            d_outs = tf.zeros_like(outs) if d_outs is None else d_outs
            d_states = tuple(
                tf.zeros_like(s) if d is None else d
                for s, d in zip(states0, d_states, strict=True)
            )
            d_x, d_kernel, d_bias, d_states0, d_recurrent, d_step = backward(
                d_outs,
                d_states,
                x,
                saved,
                kernel,
                bias,
                states0,
                recurrent_kernel,
                weights,
                mask_arg,
                h_mask,
            )
            return (d_x, d_kernel, d_bias, d_recurrent, *d_states0, *d_step)

        return (outs, *states), grad

    outs, *states = run(x, kernel, bias, recurrent_kernel, *states0, *weights)
    return outs[-1], tf.transpose(outs, [1, 0, 2]), states
