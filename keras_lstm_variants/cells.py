"""The RNN cells: one base class that owns the weights and the step, three presets.

Each cell declares its step as an `equations.LSTMStep` (structure and
activations) and runs it on its fused pre-activations; the variants differ
only in that declaration: four blocks or three (coupled gates), and which
peephole vectors exist.
"""

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_lstm_variants import validation
from keras_lstm_variants.equations import GATE_NAMES
from keras_lstm_variants.equations import PEEPHOLE_GATES
from keras_lstm_variants.equations import STATE_NAMES
from keras_lstm_variants.equations import LSTMStep

try:
    # Keras's dropout mixin: `keras.layers.RNN` prepares the dropout masks of
    # cells that carry it before its loop (needed on stateless backends); it
    # has no public name.
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell
except ImportError:  # a Keras that moved it: everything but dropout works

    class DropoutRNNCell:
        """Stand-in for a Keras without the mixin: cells refuse dropout."""

        keras_has_dropout_mixin = False


_register = keras.saving.register_keras_serializable(package="keras_lstm_variants")

#: The peephole arguments, which only cells with peepholes take.
PEEPHOLE_ARGUMENTS = (
    "peephole_gates",
    "peephole_initializer",
    "peephole_regularizer",
    "peephole_constraint",
)

#: The methods that make up a step. A subclass that overrides any of them
#: computes something its `LSTMStep` does not describe, so the fast path
#: (which runs the declaration) leaves it to the generic loop.
STEP_METHODS = ("call", "gate_values", "preactivations", "step_weights")


def _own_draw(initializer, k):
    """`initializer` for the `k`-th of several same-shaped weights.

    A Keras 3 initializer seeded with an integer (or unseeded, which draws
    one integer seed when it is created) returns the same values at every
    call; the `k`-th weight gets the seed `seed + k` instead, so each weight
    has its own draw, reproducible under `keras.utils.set_random_seed`.
    """
    seed = getattr(initializer, "seed", None)
    if k == 0 or isinstance(seed, bool) or not isinstance(seed, int):
        return initializer
    config = initializer.get_config()
    config["seed"] = seed + k
    return type(initializer).from_config(config)


class LSTMVariantCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of the LSTM cells: weights, dropout, config and the step.

    A subclass sets `coupled` (three blocks `f, c, o` instead of four) and
    `allowed_peephole_gates`; its `__init__` passes the peephole arguments it
    takes. The step is `step` (an `LSTMStep`) run on `step_weights()`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation `φ` for the candidate and the cell state.
        recurrent_activation: Activation `σ` for the gates.
        use_bias: Boolean, whether the cell uses a bias vector.
        kernel_initializer: Initializer for `kernel`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
        bias_initializer: Initializer for `bias`.
        unit_forget_bias: Boolean; if `True`, the forget block of the bias
            starts at 1.
        kernel_regularizer: Regularizer for `kernel`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
        bias_regularizer: Regularizer for `bias`.
        kernel_constraint: Constraint for `kernel`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
        bias_constraint: Constraint for `bias`.
        dropout: Float in [0, 1), fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1), fraction of the recurrent units
            to drop.
        seed: Random seed for dropout.
        peephole_gates: Gates that read the cell state.
        peephole_initializer: Initializer for the peephole vectors.
        peephole_regularizer: Regularizer for the peephole vectors.
        peephole_constraint: Constraint for the peephole vectors.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A list `[h, c]` of two 2D tensors with shape
            `(batch, units)`: the previous hidden state and cell state.
        training: Python boolean, whether dropout applies.

    Example:

    >>> class ForgetPeepholeCell(LSTMVariantCell):
    ...     allowed_peephole_gates = ("forget",)
    >>> cell = ForgetPeepholeCell(4, peephole_gates=("forget",))
    >>> tuple(keras.layers.RNN(cell)(np.ones((2, 3, 5))).shape)
    (2, 4)
    """

    coupled = False
    allowed_peephole_gates = ()
    peephole_gates_note = ""

    #: Names of the per-step values `gate_values` returns, in order.
    value_names = GATE_NAMES
    #: Names of the states, in the order of the `states` list.
    state_names = STATE_NAMES

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.declares_its_step = getattr(cls, "declares_its_step", True) and not any(
            name in vars(cls) for name in STEP_METHODS
        )

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        peephole_gates=(),
        peephole_initializer="glorot_uniform",
        peephole_regularizer=None,
        peephole_constraint=None,
        **kwargs,
    ):
        self.units = validation.check_units(units)
        self.peephole_gates = validation.check_peephole_gates(
            peephole_gates, self.allowed_peephole_gates, self.peephole_gates_note
        )
        self.dropout = validation.check_rate("dropout", dropout)
        self.recurrent_dropout = validation.check_rate(
            "recurrent_dropout", recurrent_dropout
        )
        if (self.dropout or self.recurrent_dropout) and not getattr(
            self, "keras_has_dropout_mixin", True
        ):
            raise NotImplementedError(
                f"{type(self).__name__}: dropout and recurrent_dropout need "
                "Keras's DropoutRNNCell mixin, which this Keras "
                f"({keras.__version__}) does not have where expected; pass "
                "dropout=0 and recurrent_dropout=0, or use a Keras release "
                "that setup.cfg declares."
            )
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)

        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.peephole_initializer = initializers.get(peephole_initializer)

        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.peephole_regularizer = regularizers.get(peephole_regularizer)

        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.peephole_constraint = constraints.get(peephole_constraint)

        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

        self.step = LSTMStep(
            coupled=self.coupled,
            peephole_gates=self.peephole_gates,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
        )
        self.blocks = self.step.blocks
        self.state_size = [self.units, self.units]
        self.output_size = self.units
        self.input_dim = None
        self.bias = None
        for gate in PEEPHOLE_GATES:
            setattr(self, f"{gate}_gate_peephole_weights", None)

    def build(self, input_shape):
        validation.check_step_input_shape(
            input_shape, None, f"{type(self).__name__} '{self.name}'"
        )
        self.input_dim = int(input_shape[-1])
        width = len(self.blocks) * self.units
        self.kernel = self.add_weight(
            shape=(self.input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(width,),
                name="bias",
                initializer=self._full_bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        for k, gate in enumerate(self.peephole_gates):
            name = f"{gate}_gate_peephole_weights"
            weight = self.add_weight(
                shape=(self.units,),
                name=name,
                initializer=_own_draw(self.peephole_initializer, k),
                regularizer=self.peephole_regularizer,
                constraint=self.peephole_constraint,
            )
            setattr(self, name, weight)
        self.built = True

    def _full_bias_initializer(self, shape, dtype=None):
        """The bias initializer, with the forget block at 1 if asked."""
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype)
        parts = []
        for block in self.blocks:
            block_init = (
                initializers.Ones() if block == "forget" else self.bias_initializer
            )
            parts.append(block_init((self.units,), dtype=dtype))
        return ops.concatenate(parts)

    def step_weights(self):
        """The weights the step reads: `(kernel, recurrent_kernel, bias,
        peepholes)`, with `bias` `None` without `use_bias` and `peepholes` a
        dict `{gate: vector}` of the chosen peephole gates."""
        peepholes = {
            gate: getattr(self, f"{gate}_gate_peephole_weights")
            for gate in self.peephole_gates
        }
        return self.kernel, self.recurrent_kernel, self.bias, peepholes

    def preactivations(self, inputs, h_prev, training=False):
        """`z = x · kernel + h · recurrent_kernel + bias`, with dropout masks."""
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            h_prev = h_prev * self.get_recurrent_dropout_mask(h_prev)
        kernel, recurrent_kernel, bias, _ = self.step_weights()
        z = ops.add(ops.matmul(inputs, kernel), ops.matmul(h_prev, recurrent_kernel))
        if bias is not None:
            z = ops.add(z, bias)
        return z

    def gate_values(self, inputs, states, training=False):
        """All values of one step, as a `GateValues` tuple (`value_names`)."""
        h_prev, c_prev = states
        z = self.preactivations(inputs, h_prev, training)
        return self.step(z, c_prev, self.step_weights()[3])

    def call(self, inputs, states, training=False):
        if self.input_dim is not None:
            validation.check_step_input_shape(
                inputs.shape, self.input_dim, f"{type(self).__name__} '{self.name}'"
            )
        gates = self.gate_values(inputs, states, training)
        return gates.hidden_state, [gates.hidden_state, gates.cell_state]

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, d), dtype=self.compute_dtype)
            for d in self.state_size
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(
                self.recurrent_regularizer
            ),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        if self.allowed_peephole_gates:
            config.update(
                {
                    "peephole_gates": list(self.peephole_gates),
                    "peephole_initializer": initializers.serialize(
                        self.peephole_initializer
                    ),
                    "peephole_regularizer": regularizers.serialize(
                        self.peephole_regularizer
                    ),
                    "peephole_constraint": constraints.serialize(
                        self.peephole_constraint
                    ),
                }
            )
        return {**super().get_config(), **config}


@_register
class StandardLSTMCell(LSTMVariantCell):
    """The standard LSTM cell, with a forget gate (Gers et al., 2000).

    Computes, with `z = x_t · kernel + h_{t-1} · recurrent_kernel + bias` split
    into blocks `i, f, c, o` (the layout of `keras.layers.LSTMCell`, so weights
    copy across unchanged)::

        i = σ(z_i)   f = σ(z_f)   g = φ(z_c)   o = σ(z_o)
        c_t = f ⊙ c_{t-1} + i ⊙ g          h_t = o ⊙ φ(c_t)

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation `φ` for the candidate and the cell state.
            Default: `"tanh"`. `None` means linear.
        recurrent_activation: Activation `σ` for the gates. Default:
            `"sigmoid"`. `None` means linear.
        use_bias: Boolean (default `True`), whether the cell uses a bias vector.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        unit_forget_bias: Boolean (default `True`). If `True`, the forget block
            of the bias starts at 1 (Jozefowicz et al., 2015).
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        dropout: Float in [0, 1). Fraction of the input units to drop (one
            mask per sequence, shared by all blocks). Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            to drop (one mask per sequence). Default: 0.
        seed: Random seed for dropout.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...). The
            peephole arguments are refused: use `PeepholeLSTMCell`.

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A list `[h, c]` of two 2D tensors with shape
            `(batch, units)`: the previous hidden state and cell state.
        training: Python boolean, whether dropout applies. Default: `False`.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(StandardLSTMCell(4))
    >>> tuple(rnn(inputs).shape)
    (32, 4)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        validation.refuse_arguments(
            type(self).__name__,
            kwargs,
            PEEPHOLE_ARGUMENTS,
            "the standard cell has no peepholes: use PeepholeLSTMCell",
        )
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )


@_register
class PeepholeLSTMCell(LSTMVariantCell):
    """LSTM cell with peephole connections (Gers & Schmidhuber, 2000).

    Like `StandardLSTMCell` (blocks `i, f, c, o`), but the chosen gates also
    read the cell state through a diagonal peephole vector: the input and
    forget gates the previous one, the output gate the new one::

        i = σ(z_i + p_i ⊙ c_{t-1})   f = σ(z_f + p_f ⊙ c_{t-1})   g = φ(z_c)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        o = σ(z_o + p_o ⊙ c_t)        h_t = o ⊙ φ(c_t)

    A gate not in `peephole_gates` has no weight (its attribute is `None`) and
    no term. With all three this is the "vanilla" LSTM of Greff et al. (2017),
    and the computation of TensorFlow's fused `BlockLSTM` op.

    Args:
        units: Positive integer, dimensionality of the output space.
        peephole_gates: Which gates get a peephole: any subset of
            `("input", "forget", "output")`. Default: all three.
        activation: Activation `φ` for the candidate and the cell state.
            Default: `"tanh"`. `None` means linear.
        recurrent_activation: Activation `σ` for the gates. Default:
            `"sigmoid"`. `None` means linear.
        use_bias: Boolean (default `True`), whether the cell uses a bias vector.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        peephole_initializer: Initializer for the peephole vectors; each
            vector gets its own draw. Default: `"glorot_uniform"` (as
            TensorFlow's former `PeepholeLSTMCell`).
        unit_forget_bias: Boolean (default `True`). If `True`, the forget block
            of the bias starts at 1 (Jozefowicz et al., 2015).
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        peephole_regularizer: Regularizer for the peephole vectors.
            Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        peephole_constraint: Constraint for the peephole vectors.
            Default: `None`.
        dropout: Float in [0, 1). Fraction of the input units to drop (one
            mask per sequence, shared by all blocks). Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            to drop (one mask per sequence). Default: 0.
        seed: Random seed for dropout.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A list `[h, c]` of two 2D tensors with shape
            `(batch, units)`: the previous hidden state and cell state.
        training: Python boolean, whether dropout applies. Default: `False`.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> cell = PeepholeLSTMCell(4, peephole_gates=("forget", "output"))
    >>> tuple(keras.layers.RNN(cell, return_sequences=True)(inputs).shape)
    (32, 10, 4)
    >>> cell.input_gate_peephole_weights is None
    True
    """

    allowed_peephole_gates = PEEPHOLE_GATES

    def __init__(
        self,
        units,
        peephole_gates=PEEPHOLE_GATES,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        peephole_initializer="glorot_uniform",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        peephole_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        peephole_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            units,
            peephole_gates=peephole_gates,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            peephole_initializer=peephole_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            peephole_regularizer=peephole_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            peephole_constraint=peephole_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )


@_register
class CoupledLSTMCell(LSTMVariantCell):
    """LSTM cell with coupled input and forget gates (CIFG).

    One decision for what to forget and what to write: the forget gate is
    computed and the input gate is its complement. `z` has three blocks,
    `f, c, o`::

        f = σ(z_f [+ p_f ⊙ c_{t-1}])   g = φ(z_c)
        c_t = f ⊙ c_{t-1} + (1 − f) ⊙ g
        o = σ(z_o [+ p_o ⊙ c_t])         h_t = o ⊙ φ(c_t)

    It has a quarter fewer weights than the standard cell; Greff et al. (2017)
    found it loses little against it.

    Args:
        units: Positive integer, dimensionality of the output space.
        peephole_gates: Optional peepholes, a subset of
            `("forget", "output")`. Default: none.
        activation: Activation `φ` for the candidate and the cell state.
            Default: `"tanh"`. `None` means linear.
        recurrent_activation: Activation `σ` for the gates. Default:
            `"sigmoid"`. `None` means linear.
        use_bias: Boolean (default `True`), whether the cell uses a bias vector.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        peephole_initializer: Initializer for the peephole vectors; each
            vector gets its own draw. Default: `"glorot_uniform"`.
        unit_forget_bias: Boolean (default `True`). If `True`, the forget block
            of the bias starts at 1 (Jozefowicz et al., 2015).
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        peephole_regularizer: Regularizer for the peephole vectors.
            Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        peephole_constraint: Constraint for the peephole vectors.
            Default: `None`.
        dropout: Float in [0, 1). Fraction of the input units to drop (one
            mask per sequence, shared by all blocks). Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            to drop (one mask per sequence). Default: 0.
        seed: Random seed for dropout.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A list `[h, c]` of two 2D tensors with shape
            `(batch, units)`: the previous hidden state and cell state.
        training: Python boolean, whether dropout applies. Default: `False`.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> cell = CoupledLSTMCell(4)
    >>> tuple(keras.layers.RNN(cell)(inputs).shape)
    (32, 4)
    >>> tuple(cell.kernel.shape)
    (8, 12)
    """

    coupled = True
    allowed_peephole_gates = ("forget", "output")
    peephole_gates_note = (
        " The coupled cell has no input gate of its own (it is 1 - forget_gate),"
        " so it cannot have an input peephole."
    )

    def __init__(
        self,
        units,
        peephole_gates=(),
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        peephole_initializer="glorot_uniform",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        peephole_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        peephole_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            units,
            peephole_gates=peephole_gates,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            peephole_initializer=peephole_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            peephole_regularizer=peephole_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            peephole_constraint=peephole_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )
