"""The GRU (Cho et al. 2014): its equations, `GRUCell` and the layer `GRU`.

`gru_step` is the one place where the GRU's formulas live: the cell calls it
once per time step, the TensorFlow fast path (`_tf_gru_sequence`) inside its
loop, and gate inspection reads the `GRUValues` it returns. It is a pure
function of tensors and settings, so it also reads the gates of Keras's own
`keras.layers.GRUCell` from that cell's weights.

The weights are those of `keras.layers.GRUCell` (same names, shapes and block
order `z, r, h`), so weights copy between the two either way and give the
same outputs, for `reset_after=True` (Keras's default) and `False`.
"""

from typing import NamedTuple

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_lstm_variants import fast_path
from keras_lstm_variants import validation
from keras_lstm_variants.cells import DropoutRNNCell
from keras_lstm_variants.cells import check_dropout
from keras_lstm_variants.layers import RecurrentLayer
from keras_lstm_variants.value_cells import InspectableCell

_register = keras.saving.register_keras_serializable(package="keras_lstm_variants")

#: The values of one GRU step, in the order the equations compute them.
GRU_VALUE_NAMES = ("update_gate", "reset_gate", "candidate", "hidden_state")

#: The GRU's values that come out of `recurrent_activation`.
GRU_GATE_NAMES = ("update_gate", "reset_gate")

#: The one state a GRU carries.
GRU_STATE_NAMES = ("hidden_state",)

#: The methods that make up a GRU step: a subclass that overrides one of them
#: computes something `gru_step` does not, and runs the generic loop.
GRU_STEP_METHODS = ("call", "gate_values", "next_states", "step_weights")


class GRUValues(NamedTuple):
    """The values of one GRU step, each of shape `(batch, units)`."""

    update_gate: object
    reset_gate: object
    candidate: object
    hidden_state: object


def gru_step(
    x_part,
    h_prev,
    recurrent_kernel,
    recurrent_bias,
    reset_after,
    activation,
    recurrent_activation,
    recurrent_mask=None,
    recurrent_part=None,
):
    """One GRU step from the input part of its pre-activations.

    With `[x_z, x_r, x_h] = x_part` (that is `x_t · kernel + input bias`),
    `U = recurrent_kernel` split into `U_z, U_r, U_h`, `h = h_{t-1}`, `σ` the
    recurrent activation and `φ` the activation::

        reset_after=True:   [u_z, u_r, u_h] = h · U + recurrent_bias
                            z = σ(x_z + u_z)   r = σ(x_r + u_r)
                            h̃ = φ(x_h + r ⊙ u_h)
        reset_after=False:  z = σ(x_z + h · U_z)   r = σ(x_r + h · U_r)
                            h̃ = φ(x_h + (r ⊙ h) · U_h)
        h_t = z ⊙ h + (1 − z) ⊙ h̃

    With `recurrent_mask` (recurrent dropout) `h` is multiplied by it where it
    enters a product (not in the last line), as in `keras.layers.GRUCell`.

    Args:
        x_part: `(batch, 3·units)`, the input product plus the input bias.
        h_prev: Previous hidden state, `(batch, units)`.
        recurrent_kernel: `(units, 3·units)`.
        recurrent_bias: `(3·units,)` with `reset_after`, or `None`.
        reset_after: Whether the reset gate applies after the recurrent
            product (`True`) or before it.
        activation: `φ`.
        recurrent_activation: `σ`.
        recurrent_mask: `(batch, units)` recurrent dropout mask, or `None`.
        recurrent_part: With `reset_after`, `[u_z, u_r, u_h]` if already
            computed (the fast path keeps it for its backward pass), else
            `None`.

    Returns:
        A `GRUValues` tuple.
    """
    h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    x_z, x_r, x_h = ops.split(x_part, 3, axis=-1)
    if reset_after:
        u = recurrent_part
        if u is None:
            u = recurrent_product(h_in, recurrent_kernel, recurrent_bias)
        u_z, u_r, u_h = ops.split(u, 3, axis=-1)
        z = recurrent_activation(x_z + u_z)
        r = recurrent_activation(x_r + u_r)
        h_tilde = activation(x_h + r * u_h)
    else:
        units = ops.shape(recurrent_kernel)[0]
        u_z, u_r = ops.split(
            ops.matmul(h_in, recurrent_kernel[:, : 2 * units]), 2, axis=-1
        )
        z = recurrent_activation(x_z + u_z)
        r = recurrent_activation(x_r + u_r)
        h_tilde = activation(
            x_h + ops.matmul(r * h_in, recurrent_kernel[:, 2 * units :])
        )
    h = z * h_prev + (1.0 - z) * h_tilde
    return GRUValues(z, r, h_tilde, h)


def recurrent_product(h_in, recurrent_kernel, recurrent_bias):
    """`[u_z, u_r, u_h] = h_in · recurrent_kernel + recurrent_bias` (the
    recurrent part of the pre-activations with `reset_after`)."""
    u = ops.matmul(h_in, recurrent_kernel)
    return u if recurrent_bias is None else u + recurrent_bias


def split_bias(bias, reset_after):
    """`(input_bias, recurrent_bias)` of a GRU bias (either may be `None`):
    the rows of a `(2, 3·units)` bias with `reset_after`, else the bias and
    `None`."""
    if bias is None:
        return None, None
    if not reset_after:
        return bias, None
    return bias[0], bias[1]


@_register
class GRUCell(keras.layers.Layer, DropoutRNNCell, InspectableCell):
    """Gated recurrent unit cell (Cho et al. 2014), weight-compatible with
    `keras.layers.GRUCell`.

    Blocks `z, r, h` (update gate, reset gate, candidate); the equations are
    those of `gru_step`::

        z = σ(x_z + u_z)   r = σ(x_r + u_r)   h̃ = φ(x_h + r ⊙ u_h)
        h_t = z ⊙ h_{t-1} + (1 − z) ⊙ h̃

    with `x = x_t · kernel + bias[0]` and `u = h_{t-1} · recurrent_kernel +
    bias[1]` (`reset_after=True`), or, with `reset_after=False`, one bias
    added to `x` and `r` applied to `h_{t-1}` before its product with the
    candidate's block of `recurrent_kernel`.

    Weights (attributes of the cell under these names): `kernel`
    `(input_dim, 3·units)`, `recurrent_kernel` `(units, 3·units)`, `bias`
    `(2, 3·units)` with `reset_after`, else `(3·units,)` (`None` without
    `use_bias`). State: `[h]`. Inspected values (`value_names`, an
    `InspectableCell`): `update_gate`, `reset_gate` (the `gate_names`),
    `candidate`, `hidden_state`; TensorBoard tags `1_update_gate` to
    `4_hidden_state`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation `φ` of the candidate. Default: `"tanh"`.
            `None` means linear.
        recurrent_activation: Activation `σ` of the gates. Default:
            `"sigmoid"`. `None` means linear.
        use_bias: Boolean (default `True`), whether the cell uses a bias.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        dropout: Float in [0, 1). Fraction of the input units to drop (one
            mask per sequence, shared by the three blocks). Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the units of
            `h_{t-1}` to drop where it enters the recurrent products (one
            mask per sequence). Default: 0.
        reset_after: Boolean (default `True`, as Keras and cuDNN). Whether
            the reset gate applies after the recurrent product.
        seed: Random seed for dropout.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A list `[h]` of one 2D tensor `(batch, units)`.
        training: Python boolean, whether dropout applies. Default: `False`.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> cell = GRUCell(4)
    >>> tuple(keras.layers.RNN(cell)(inputs).shape)
    (32, 4)
    >>> tuple(cell.bias.shape), GRUCell(4).value_names[:2]
    ((2, 12), ('update_gate', 'reset_gate'))
    """

    value_names = GRU_VALUE_NAMES
    gate_names = GRU_GATE_NAMES
    state_names = GRU_STATE_NAMES
    #: Whether the class computes exactly `gru_step` (see `GRU_STEP_METHODS`).
    declares_its_step = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.declares_its_step = cls.declares_its_step and not any(
            name in vars(cls) for name in GRU_STEP_METHODS
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
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        reset_after=True,
        seed=None,
        **kwargs,
    ):
        self.units = validation.check_units(units)
        self.dropout, self.recurrent_dropout = check_dropout(
            self, dropout, recurrent_dropout
        )
        self.reset_after = validation.check_bool("reset_after", reset_after)
        self.use_bias = bool(use_bias)
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = [self.units]
        self.output_size = self.units
        self.input_dim = None
        self.bias = None

    def value_size(self, name):
        """Width of the value `name` (`value_names`) of one step."""
        return self.units

    def build(self, input_shape):
        validation.check_step_input_shape(
            input_shape, None, f"{type(self).__name__} '{self.name}'"
        )
        self.input_dim = int(input_shape[-1])
        self.kernel = self.add_weight(
            shape=(self.input_dim, 3 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(2, 3 * self.units) if self.reset_after else (3 * self.units,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def step_weights(self):
        """The weights the step reads, as a dict: `kernel`, `input_bias`,
        `recurrent_kernel`, `recurrent_bias` (the biases `None` where the
        cell has none)."""
        input_bias, recurrent_bias = split_bias(self.bias, self.reset_after)
        return {
            "kernel": self.kernel,
            "input_bias": input_bias,
            "recurrent_kernel": self.recurrent_kernel,
            "recurrent_bias": recurrent_bias,
        }

    def gate_values(self, inputs, states, training=False):
        """All values of one step, as a `GRUValues` tuple."""
        h_prev = states[0]
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        recurrent_mask = None
        if training and self.recurrent_dropout > 0.0:
            recurrent_mask = self.get_recurrent_dropout_mask(h_prev)
        w = self.step_weights()
        x_part = ops.matmul(inputs, w["kernel"])
        if w["input_bias"] is not None:
            x_part = x_part + w["input_bias"]
        return gru_step(
            x_part,
            h_prev,
            w["recurrent_kernel"],
            w["recurrent_bias"],
            self.reset_after,
            self.activation,
            self.recurrent_activation,
            recurrent_mask,
        )

    def next_states(self, values):
        """The states after a step, from its `GRUValues`."""
        return [values.hidden_state]

    def call(self, inputs, states, training=False):
        if self.input_dim is not None:
            validation.check_step_input_shape(
                inputs.shape, self.input_dim, f"{type(self).__name__} '{self.name}'"
            )
        values = self.gate_values(inputs, states, training)
        return self.output_of(values), self.next_states(values)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
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
            "reset_after": self.reset_after,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


#: The cell arguments the layer takes.
GRU_CELL_ARGUMENTS = (
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "reset_after",
    "seed",
)


@_register
class GRU(RecurrentLayer):
    """GRU layer: `keras.layers.RNN` over a `GRUCell`, weight-compatible with
    `keras.layers.GRU`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation `φ` of the candidate. Default: `"tanh"`.
        recurrent_activation: Activation `σ` of the gates. Default:
            `"sigmoid"`.
        use_bias: Boolean (default `True`), whether the cell uses a bias.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        dropout: Float in [0, 1). Fraction of the input units to drop.
            Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            to drop. Default: 0.
        reset_after: Boolean (default `True`). Whether the reset gate applies
            after the recurrent product (see `GRUCell`).
        seed: Random seed for dropout.
        return_sequences: Boolean. Whether to return the whole output sequence
            or only the last output. Default: `False`.
        return_state: Boolean. Whether to return the final state `h` after
            the output. Default: `False`.
        go_backwards: Boolean (default `False`). If `True`, process the
            sequence backwards and return the reversed sequence.
        stateful: Boolean (default `False`). If `True`, the final state of
            each batch is the initial state of the next one.
        unroll: Boolean (default `False`). If `True`, unroll the loop.
        zero_output_for_mask: Boolean (default `False`). If `True`, masked
            steps output zeros instead of repeating the last output.
        use_fast_path: `"auto"` (default), `True` or `False`. Whether to run
            the whole-sequence fast path (TensorFlow backend; see
            `keras_lstm_variants.fast_path`), as for `StandardLSTM`. Both
            give the same numbers.
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments (`name`,
            `dtype`, `activity_regularizer`, ...).

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, features)`.
        mask: Boolean tensor of shape `(batch, timesteps)` (optional).
        training: Python boolean, whether dropout applies (optional).
        initial_state: List `[h]` of one initial state tensor (optional;
            zeros by default).

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, h = GRU(4, return_sequences=True, return_state=True)(inputs)
    >>> tuple(outputs.shape), tuple(h.shape)
    ((32, 10, 4), (32, 4))
    """

    cell_class = GRUCell
    cell_arguments = GRU_CELL_ARGUMENTS

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        reset_after=True,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        use_fast_path="auto",
        **kwargs,
    ):
        super().__init__(
            {
                "units": units,
                "activation": activation,
                "recurrent_activation": recurrent_activation,
                "use_bias": use_bias,
                "kernel_initializer": kernel_initializer,
                "recurrent_initializer": recurrent_initializer,
                "bias_initializer": bias_initializer,
                "kernel_regularizer": kernel_regularizer,
                "recurrent_regularizer": recurrent_regularizer,
                "bias_regularizer": bias_regularizer,
                "kernel_constraint": kernel_constraint,
                "recurrent_constraint": recurrent_constraint,
                "bias_constraint": bias_constraint,
                "dropout": dropout,
                "recurrent_dropout": recurrent_dropout,
                "reset_after": reset_after,
                "seed": seed,
            },
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            use_fast_path=use_fast_path,
            **kwargs,
        )

    def _cell_fast_path_reason(self):
        return fast_path.gru_fallback_reason(self)

    def _run_fast_path(self, sequences, initial_state, mask, training):
        return fast_path.run_gru(self, sequences, initial_state, mask, training)
