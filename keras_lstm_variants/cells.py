"""The RNN cells: one base class that owns the weights, three thin variants.

Each cell computes its fused pre-activations and hands them to
`keras_lstm_variants.equations.lstm_gates`; the variants differ only in the
number of blocks (four, or three when the gates are coupled) and in which
peephole vectors they create.
"""

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

# Keras's own mixin: `keras.layers.RNN` prepares the dropout masks of cells
# that carry it before entering its loop (needed for stateless backends).
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from keras_lstm_variants import validation
from keras_lstm_variants.equations import PEEPHOLE_GATES
from keras_lstm_variants.equations import block_order
from keras_lstm_variants.equations import lstm_gates

_register = keras.saving.register_keras_serializable(package="keras_lstm_variants")

_COMMON_ARGS_DOC = """
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
        seed: Random seed for dropout."""

_PEEPHOLE_ARGS_DOC = """
        peephole_initializer: Initializer for the peephole vectors. Default:
            `"glorot_uniform"` (as TensorFlow's former `PeepholeLSTMCell`).
        peephole_regularizer: Regularizer for the peephole vectors.
            Default: `None`.
        peephole_constraint: Constraint for the peephole vectors.
            Default: `None`."""

_CALL_DOC = """
    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A list `[h, c]` of two 2D tensors with shape
            `(batch, units)`: the previous hidden state and cell state.
        training: Python boolean, whether dropout applies. Default: `False`.
"""


def _document(cls):
    cls.__doc__ = cls.__doc__.format(
        common_args=_COMMON_ARGS_DOC,
        peephole_args=_PEEPHOLE_ARGS_DOC,
        call_args=_CALL_DOC,
    )
    return cls


class LSTMVariantCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of the cells: weights, dropout, config and the step.

    Subclasses set `coupled` (three blocks `f, c, o` instead of four) and
    which peephole gates they accept; everything else lives here.
    """

    coupled = False
    allowed_peephole_gates = ()
    peephole_gates_note = ""

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

        self.blocks = block_order(self.coupled)
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
        for gate in self.peephole_gates:
            name = f"{gate}_gate_peephole_weights"
            setattr(
                self,
                name,
                self.add_weight(
                    shape=(self.units,),
                    name=name,
                    initializer=self.peephole_initializer,
                    regularizer=self.peephole_regularizer,
                    constraint=self.peephole_constraint,
                ),
            )
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

    def preactivations(self, inputs, h_prev, training=False):
        """`z = x · kernel + h · recurrent_kernel + bias`, with dropout masks."""
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            h_prev = h_prev * self.get_recurrent_dropout_mask(h_prev)
        z = ops.add(
            ops.matmul(inputs, self.kernel),
            ops.matmul(h_prev, self.recurrent_kernel),
        )
        if self.use_bias:
            z = ops.add(z, self.bias)
        return z

    def gate_step(self, z, c_prev):
        """Runs the shared gate equations on pre-activations `z`."""
        return lstm_gates(
            z,
            c_prev,
            coupled=self.coupled,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            input_peephole=self.input_gate_peephole_weights,
            forget_peephole=self.forget_gate_peephole_weights,
            output_peephole=self.output_gate_peephole_weights,
        )

    def gate_values(self, inputs, states, training=False):
        """All gate values of one step, as a `GateValues` tuple."""
        h_prev, c_prev = states
        return self.gate_step(self.preactivations(inputs, h_prev, training), c_prev)

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
@_document
class StandardLSTMCell(LSTMVariantCell):
    """The standard LSTM cell, with a forget gate (Gers et al., 2000).

    Computes, with `z = x_t · kernel + h_{{t-1}} · recurrent_kernel + bias` split
    into blocks `i, f, c, o` (the layout of `keras.layers.LSTMCell`, so weights
    copy across unchanged)::

        i = σ(z_i)   f = σ(z_f)   g = φ(z_c)   o = σ(z_o)
        c_t = f ⊙ c_{{t-1}} + i ⊙ g          h_t = o ⊙ φ(c_t)

    Args:{common_args}
{call_args}
    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(StandardLSTMCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    peephole_gates_note = " The standard cell has no peepholes: use PeepholeLSTMCell."


@_register
@_document
class PeepholeLSTMCell(LSTMVariantCell):
    """LSTM cell with peephole connections (Gers & Schmidhuber, 2000).

    Like `StandardLSTMCell` (blocks `i, f, c, o`), but the chosen gates also
    read the cell state through a diagonal peephole vector: the input and
    forget gates the previous one, the output gate the new one::

        i = σ(z_i + p_i ⊙ c_{{t-1}})   f = σ(z_f + p_f ⊙ c_{{t-1}})   g = φ(z_c)
        c_t = f ⊙ c_{{t-1}} + i ⊙ g
        o = σ(z_o + p_o ⊙ c_t)        h_t = o ⊙ φ(c_t)

    A gate not in `peephole_gates` has no weight (its attribute is `None`) and
    no term. With all three this is the "vanilla" LSTM of Greff et al. (2017),
    and the computation of TensorFlow's fused `BlockLSTM` op.

    Args:{common_args}
        peephole_gates: Which gates get a peephole: any subset of
            `("input", "forget", "output")`. Default: all three.{peephole_args}
{call_args}
    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> cell = PeepholeLSTMCell(4, peephole_gates=("forget", "output"))
    >>> keras.layers.RNN(cell, return_sequences=True)(inputs).shape
    (32, 10, 4)
    >>> cell.input_gate_peephole_weights is None
    True
    """

    allowed_peephole_gates = PEEPHOLE_GATES

    def __init__(self, units, peephole_gates=PEEPHOLE_GATES, **kwargs):
        super().__init__(units, peephole_gates=peephole_gates, **kwargs)


@_register
@_document
class CoupledLSTMCell(LSTMVariantCell):
    """LSTM cell with coupled input and forget gates (CIFG).

    One decision for what to forget and what to write: the forget gate is
    computed and the input gate is its complement. `z` has three blocks,
    `f, c, o`::

        f = σ(z_f [+ p_f ⊙ c_{{t-1}}])   g = φ(z_c)
        c_t = f ⊙ c_{{t-1}} + (1 − f) ⊙ g
        o = σ(z_o [+ p_o ⊙ c_t])         h_t = o ⊙ φ(c_t)

    It has a quarter fewer weights than the standard cell; Greff et al. (2017)
    found it loses little against it.

    Args:{common_args}
        peephole_gates: Optional peepholes, a subset of
            `("forget", "output")`. Default: none.{peephole_args}
{call_args}
    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> cell = CoupledLSTMCell(4)
    >>> keras.layers.RNN(cell)(inputs).shape
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

    def __init__(self, units, peephole_gates=(), **kwargs):
        super().__init__(units, peephole_gates=peephole_gates, **kwargs)
