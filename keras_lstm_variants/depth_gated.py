"""The Depth-Gated LSTM (Yao et al. 2015): its step, its cell and its layer.

A stack of `depth` standard LSTM levels of equal `units` runs inside one
recurrent step: level 0 reads `x_t`, level `l ≥ 1` reads `h_t^{l-1}`, and a
depth gate lets the lower level's new cell state into this level's:

    d_t^l = σ(h_t^{l-1} · depth_kernel + depth_bias
              + depth_cell_peephole ⊙ c_{t-1}^l + depth_lower_peephole ⊙ c_t^{l-1})
    c_t^l = f ⊙ c_{t-1}^l + i ⊙ g + d_t^l ⊙ c_t^{l-1}

Each level's LSTM part is `equations.lstm_step` of the standard `LSTMStep`
(the depth term enters as its `cell_input`); `depth_gated_step` adds the
depth gate. The cell must hold the whole stack because level `l` needs
`c_t^{l-1}` of the same step, which `keras.layers.StackedRNNCells` does not
pass on.
"""

import collections
from typing import NamedTuple

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_lstm_variants import validation
from keras_lstm_variants.cells import DropoutRNNCell
from keras_lstm_variants.cells import check_dropout
from keras_lstm_variants.cells import own_draw
from keras_lstm_variants.equations import LSTMStep
from keras_lstm_variants.equations import lstm_step
from keras_lstm_variants.equations import preactivations
from keras_lstm_variants.layers import COMMON_CELL_ARGUMENTS
from keras_lstm_variants.layers import GenericLoopLayer
from keras_lstm_variants.value_cells import InspectableCell

_register = keras.saving.register_keras_serializable(package="keras_lstm_variants")

#: The depth gate's weights, which levels 1 and up have.
DEPTH_WEIGHTS = (
    "depth_kernel",
    "depth_bias",
    "depth_cell_peephole",
    "depth_lower_peephole",
)

#: The peephole arguments of the depth gate's two peephole vectors.
DEPTH_PEEPHOLE_ARGUMENTS = (
    "peephole_initializer",
    "peephole_regularizer",
    "peephole_constraint",
)


class LevelValues(NamedTuple):
    """The values of one level at one step, in the order the equations
    compute them, each `(batch, units)`; `depth_gate` is `None` at level 0."""

    input_gate: object
    forget_gate: object
    candidate: object
    depth_gate: object
    cell_state: object
    output_gate: object
    hidden_state: object


#: A level's values that come out of `recurrent_activation`.
LEVEL_GATE_NAMES = ("input_gate", "forget_gate", "depth_gate", "output_gate")


def depth_gated_step(step, inputs, states, levels):
    """One step of a Depth-Gated LSTM: every level, bottom to top.

    Args:
        step: The standard `LSTMStep` (its activations are `φ` and `σ`; `σ`
            is also the depth gate's).
        inputs: `x_t`, `(batch, input_dim)`.
        states: One pair `(h^l, c^l)` of the previous step per level,
            bottom level first, each `(batch, units)`.
        levels: One dict per level with `kernel`, `recurrent_kernel`, `bias`
            (`None` without bias) and, from level 1, `depth_kernel`,
            `depth_bias` (or `None`), `depth_cell_peephole` and
            `depth_lower_peephole`.

    Returns:
        A tuple of `LevelValues`, one per level.
    """
    below_h, below_c = inputs, None
    results = []
    for k, w in enumerate(levels):
        h_prev, c_prev = states[k]
        z = preactivations(
            step,
            ops.matmul(below_h, w["kernel"]),
            ops.matmul(h_prev, w["recurrent_kernel"]),
            w["bias"],
        )
        d = None
        if k > 0:
            pre = ops.matmul(below_h, w["depth_kernel"])
            if w["depth_bias"] is not None:
                pre = pre + w["depth_bias"]
            pre = (
                pre
                + w["depth_cell_peephole"] * c_prev
                + w["depth_lower_peephole"] * below_c
            )
            d = step.recurrent_activation(pre)
        lstm = lstm_step(
            step, z, c_prev, {}, cell_input=None if d is None else d * below_c
        )
        results.append(
            LevelValues(
                lstm.input_gate,
                lstm.forget_gate,
                lstm.candidate,
                d,
                lstm.cell_state,
                lstm.output_gate,
                lstm.hidden_state,
            )
        )
        below_h, below_c = lstm.hidden_state, lstm.cell_state
    return tuple(results)


def level_value_name(level, name):
    """The cell's name of value `name` of level `level`: `level<l>_<name>`."""
    return f"level{level}_{name}"


class DepthGatedLevel(keras.layers.Layer):
    """The weights of one level of a `DepthGatedLSTMCell` (its `levels[l]`).

    Holds `kernel` `(input_dim, 4·units)` (blocks `i, f, c, o`),
    `recurrent_kernel` `(units, 4·units)` and `bias` `(4·units,)` as
    `keras.layers.LSTMCell`, and from level 1 on the depth gate's
    `depth_kernel` `(units, units)`, `depth_bias`, `depth_cell_peephole` and
    `depth_lower_peephole` `(units,)`; an absent weight is `None`. The cell
    creates its levels; they compute nothing themselves.

    Args:
        units: Positive integer, the width of the level.
        index: The level's position in the stack (0 is the bottom).
        options: Dict of the cell's `use_bias`, `unit_forget_bias` and its
            initializers, regularizers and constraints (Keras objects).
        **kwargs: `keras.layers.Layer` arguments.

    Example:

    >>> cell = DepthGatedLSTMCell(3, depth=2)
    >>> cell.build((None, 5))
    >>> tuple(cell.levels[1].depth_kernel.shape), cell.levels[0].depth_kernel
    ((3, 3), None)
    """

    def __init__(self, units, index, options, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.index = index
        self.options = dict(options)
        self.bias = None
        for name in DEPTH_WEIGHTS:
            setattr(self, name, None)

    def _add(self, name, shape, kind, draw):
        o = self.options
        initializer = o[f"{kind}_initializer"]
        if name == "bias":
            initializer = self._bias_initializer
        return self.add_weight(
            shape=shape,
            name=name,
            initializer=own_draw(initializer, draw),
            regularizer=o[f"{kind}_regularizer"],
            constraint=o[f"{kind}_constraint"],
        )

    def build(self, input_shape):
        u, k = self.units, self.index
        input_dim = int(input_shape[-1])
        self.kernel = self._add("kernel", (input_dim, 4 * u), "kernel", 2 * k)
        self.recurrent_kernel = self._add(
            "recurrent_kernel", (u, 4 * u), "recurrent", k
        )
        use_bias = self.options["use_bias"]
        if use_bias:
            self.bias = self._add("bias", (4 * u,), "bias", 0)
        if k > 0:
            self.depth_kernel = self._add("depth_kernel", (u, u), "kernel", 2 * k + 1)
            if use_bias:
                self.depth_bias = self._add("depth_bias", (u,), "bias", 1)
            self.depth_cell_peephole = self._add(
                "depth_cell_peephole", (u,), "peephole", 2 * k
            )
            self.depth_lower_peephole = self._add(
                "depth_lower_peephole", (u,), "peephole", 2 * k + 1
            )
        self.built = True

    def _bias_initializer(self, shape, dtype=None):
        """`bias_initializer`, with the forget block at 1 if
        `unit_forget_bias` (as `keras.layers.LSTMCell`)."""
        init = self.options["bias_initializer"]
        if not self.options["unit_forget_bias"]:
            return init(shape, dtype=dtype)
        u = self.units
        forget = initializers.Ones()((u,), dtype=dtype)
        parts = [init((u,), dtype=dtype), forget, init((2 * u,), dtype=dtype)]
        return ops.concatenate(parts)

    def step_weights(self):
        """The weights `depth_gated_step` reads, as a dict."""
        names = ("kernel", "recurrent_kernel", "bias", *DEPTH_WEIGHTS)
        return {name: getattr(self, name) for name in names}


@_register
class DepthGatedLSTMCell(keras.layers.Layer, DropoutRNNCell, InspectableCell):
    """A Depth-Gated LSTM cell (Yao et al. 2015): `depth` LSTM levels in one
    step, each upper level's cell state fed by the level below through a
    depth gate.

    Level 0 reads `x_t`, level `l ≥ 1` reads `h_t^{l-1}`; each level is a
    standard LSTM (blocks `i, f, c, o`, as `keras.layers.LSTMCell`) whose new
    cell state also receives, for `l ≥ 1`, `d_t^l ⊙ c_t^{l-1}`::

        d_t^l = σ(h_t^{l-1} · depth_kernel + depth_bias
                  + depth_cell_peephole ⊙ c_{t-1}^l
                  + depth_lower_peephole ⊙ c_t^{l-1})
        c_t^l = f ⊙ c_{t-1}^l + i ⊙ g + d_t^l ⊙ c_t^{l-1}
        h_t^l = o ⊙ φ(c_t^l)

    All levels have `units` cells (the depth gate adds one cell state to
    the other). The output is the top level's `h`. Use it in
    `keras.layers.RNN` (also inside `Bidirectional`, with masks) or through
    the ready layer `DepthGatedLSTM`.

    Weights: `cell.levels[l].kernel`, `.recurrent_kernel`, `.bias` (as the
    standard cell), and for `l ≥ 1` `.depth_kernel` `(units, units)`,
    `.depth_bias`, `.depth_cell_peephole`, `.depth_lower_peephole`
    `(units,)`. `depth_kernel` is initialized, regularized and constrained
    like `kernel`, `depth_bias` like `bias` (it is absent without
    `use_bias`), the two peephole vectors by the `peephole_*` arguments.

    States: from the top level down, `[h^{L-1}, c^{L-1}, ..., h^0, c^0]`
    (`state_names` `level<L-1>_hidden_state`, `level<L-1>_cell_state`, ...,
    `level0_cell_state`): the first state is the output, as Keras's RNN loop
    assumes for masked steps (its JAX loop repeats the first state there).
    Values (gate
    inspection), per level `l` in equation order: `level<l>_input_gate`,
    `level<l>_forget_gate`, `level<l>_candidate`, `level<l>_depth_gate`
    (`l ≥ 1`), `level<l>_cell_state`, `level<l>_output_gate`,
    `level<l>_hidden_state`; the gates (`gate_names`) are the input, forget,
    depth and output gates.

    Args:
        units: Positive integer, the width of every level.
        depth: Positive integer, the number of levels. Default: 2.
        activation: Activation `φ`. Default: `"tanh"`.
        recurrent_activation: Activation `σ` of the gates, the depth gate
            included. Default: `"sigmoid"`.
        use_bias: Boolean (default `True`), whether the levels have `bias`
            and `depth_bias`.
        kernel_initializer: Initializer for `kernel` and `depth_kernel`
            (each weight its own draw). Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias` and `depth_bias`.
            Default: `"zeros"`.
        peephole_initializer: Initializer for the depth gate's peephole
            vectors. Default: `"glorot_uniform"`.
        unit_forget_bias: Boolean (default `True`): each level's forget
            block of the bias starts at 1.
        kernel_regularizer: Regularizer for `kernel` and `depth_kernel`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
        bias_regularizer: Regularizer for `bias` and `depth_bias`.
        peephole_regularizer: Regularizer for the peephole vectors.
        kernel_constraint: Constraint for `kernel` and `depth_kernel`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
        bias_constraint: Constraint for `bias` and `depth_bias`.
        peephole_constraint: Constraint for the peephole vectors.
        dropout: Float in [0, 1). Fraction of the input units (of `x_t`) to
            drop, one mask per sequence.
        recurrent_dropout: Float in [0, 1). Fraction of each level's `h_{t-1}`
            to drop before its recurrent product, one independent mask per
            level and sequence.
        seed: Random seed for dropout.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: The list `[h^{L-1}, c^{L-1}, ..., h^0, c^0]` (top level
            first).
        training: Python boolean, whether dropout applies. Default: `False`.

    Example:

    >>> cell = DepthGatedLSTMCell(4, depth=3)
    >>> tuple(keras.layers.RNN(cell)(np.ones((2, 5, 3))).shape)
    (2, 4)
    >>> cell.state_size
    [4, 4, 4, 4, 4, 4]
    >>> cell.value_names[6:10]
    ('level1_input_gate', 'level1_forget_gate', 'level1_candidate', \
'level1_depth_gate')
    """

    def __init__(
        self,
        units,
        depth=2,
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
        self.units = validation.check_units(units)
        self.depth = validation.check_positive_int("depth", depth)
        self.dropout, self.recurrent_dropout = check_dropout(
            self, dropout, recurrent_dropout
        )
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = validation.check_bool("use_bias", use_bias)
        self.unit_forget_bias = validation.check_bool(
            "unit_forget_bias", unit_forget_bias
        )
        options = {"use_bias": self.use_bias, "unit_forget_bias": self.unit_forget_bias}
        for kind, initializer, regularizer, constraint in (
            ("kernel", kernel_initializer, kernel_regularizer, kernel_constraint),
            (
                "recurrent",
                recurrent_initializer,
                recurrent_regularizer,
                recurrent_constraint,
            ),
            ("bias", bias_initializer, bias_regularizer, bias_constraint),
            (
                "peephole",
                peephole_initializer,
                peephole_regularizer,
                peephole_constraint,
            ),
        ):
            options[f"{kind}_initializer"] = initializers.get(initializer)
            options[f"{kind}_regularizer"] = regularizers.get(regularizer)
            options[f"{kind}_constraint"] = constraints.get(constraint)
        for name, value in options.items():
            setattr(self, name, value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

        self.step = LSTMStep(
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
        )
        self.levels = [
            DepthGatedLevel(
                self.units, k, options, name=f"level_{k}", dtype=self.dtype_policy
            )
            for k in range(self.depth)
        ]
        self.value_names = tuple(
            level_value_name(k, name)
            for k in range(self.depth)
            for name in LevelValues._fields
            if k > 0 or name != "depth_gate"
        )
        self.gate_names = tuple(
            name
            for name in self.value_names
            if name.split("_", 1)[1] in LEVEL_GATE_NAMES
        )
        self.state_names = tuple(
            level_value_name(k, name)
            for k in reversed(range(self.depth))
            for name in ("hidden_state", "cell_state")
        )
        self._values_type = collections.namedtuple("DepthGatedValues", self.value_names)
        self.state_size = [self.units] * (2 * self.depth)
        self.output_size = self.units
        self.input_dim = None

    def value_size(self, name):
        """Width of the value `name` (`value_names`) of one step: `units`."""
        return self.units

    def build(self, input_shape):
        where = f"{type(self).__name__} '{self.name}'"
        validation.check_step_input_shape(input_shape, None, where)
        self.input_dim = int(input_shape[-1])
        for k, level in enumerate(self.levels):
            level.build((None, self.input_dim if k == 0 else self.units))
        self.built = True

    def get_recurrent_dropout_mask(self, step_input):
        """One recurrent dropout mask per level, drawn together, `(batch,
        depth·units)`; `step_input` is any one level's `h` (Keras's RNN passes
        the first state)."""
        return super().get_recurrent_dropout_mask(ops.tile(step_input, (1, self.depth)))

    def gate_values(self, inputs, states, training=False):
        """All values of one step, as a named tuple with one field per
        `value_names` entry (computed by `depth_gated_step`)."""
        top = self.depth - 1
        pairs = [
            [states[2 * (top - k)], states[2 * (top - k) + 1]] for k in range(top + 1)
        ]
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            masks = ops.split(
                self.get_recurrent_dropout_mask(states[0]), self.depth, axis=-1
            )
            for pair, mask in zip(pairs, masks, strict=True):
                pair[0] = pair[0] * mask
        results = depth_gated_step(
            self.step, inputs, pairs, [level.step_weights() for level in self.levels]
        )
        return self._values_type(
            **{
                level_value_name(k, name): value
                for k, result in enumerate(results)
                for name, value in result._asdict().items()
                if value is not None or name != "depth_gate"
            }
        )

    def next_states(self, values):
        """The states after a step, top level first (`state_names`)."""
        return [getattr(values, name) for name in self.state_names]

    def output_of(self, values):
        """The cell's output: the top level's hidden state."""
        return getattr(values, level_value_name(self.depth - 1, "hidden_state"))

    def call(self, inputs, states, training=False):
        if self.input_dim is not None:
            validation.check_step_input_shape(
                inputs.shape, self.input_dim, f"{type(self).__name__} '{self.name}'"
            )
        values = self.gate_values(inputs, states, training)
        return self.output_of(values), self.next_states(values)

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, d), dtype=self.compute_dtype)
            for d in self.state_size
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "depth": self.depth,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "unit_forget_bias": self.unit_forget_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        for kind in ("kernel", "recurrent", "bias", "peephole"):
            config[f"{kind}_initializer"] = initializers.serialize(
                getattr(self, f"{kind}_initializer")
            )
            config[f"{kind}_regularizer"] = regularizers.serialize(
                getattr(self, f"{kind}_regularizer")
            )
            config[f"{kind}_constraint"] = constraints.serialize(
                getattr(self, f"{kind}_constraint")
            )
        return {**super().get_config(), **config}


@_register
class DepthGatedLSTM(GenericLoopLayer):
    """Depth-Gated LSTM layer: `keras.layers.RNN` over a `DepthGatedLSTMCell`.

    See `DepthGatedLSTMCell` for the equations, the weights
    (`layer.cell.levels[l].depth_kernel`, ...), the states and the values.
    It runs the generic `keras.layers.RNN` loop on every backend (there is
    no fast path; `fast_path_fallback_reason()` says so).

    Args:
        units: Positive integer, the width of every level and of the output.
        depth: Positive integer, the number of levels. Default: 2.
        activation: Activation `φ`. Default: `"tanh"`.
        recurrent_activation: Activation `σ` of the gates. Default:
            `"sigmoid"`.
        use_bias: Boolean (default `True`), whether the levels have biases.
        kernel_initializer: Initializer for `kernel` and `depth_kernel`.
            Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias` and `depth_bias`.
            Default: `"zeros"`.
        peephole_initializer: Initializer for the depth gate's peephole
            vectors. Default: `"glorot_uniform"`.
        unit_forget_bias: Boolean (default `True`): the forget blocks of the
            biases start at 1.
        kernel_regularizer: Regularizer for `kernel` and `depth_kernel`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
        bias_regularizer: Regularizer for `bias` and `depth_bias`.
        peephole_regularizer: Regularizer for the peephole vectors.
        kernel_constraint: Constraint for `kernel` and `depth_kernel`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
        bias_constraint: Constraint for `bias` and `depth_bias`.
        peephole_constraint: Constraint for the peephole vectors.
        dropout: Float in [0, 1). Fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1). Fraction of each level's
            recurrent units to drop.
        seed: Random seed for dropout.
        return_sequences: Boolean. Whether to return the whole output sequence
            or only the last output. Default: `False`.
        return_state: Boolean. Whether to return the final states after the
            output, top level first: `h^{L-1}, c^{L-1}, ..., h^0, c^0`.
            Default: `False`.
        go_backwards: Boolean (default `False`). If `True`, process the
            sequence backwards and return the reversed sequence.
        stateful: Boolean (default `False`). If `True`, the final states of
            each batch are the initial states of the next one.
        unroll: Boolean (default `False`). If `True`, unroll the loop.
        zero_output_for_mask: Boolean (default `False`). If `True`, masked
            steps output zeros instead of repeating the last output.
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, features)`.
        mask: Boolean tensor of shape `(batch, timesteps)`; `False` steps are
            skipped (optional).
        training: Python boolean, whether dropout applies (optional).
        initial_state: List `[h^{L-1}, c^{L-1}, ..., h^0, c^0]` of initial
            state tensors, top level first (optional; zeros by default).

    Example:

    >>> layer = DepthGatedLSTM(4, depth=2, return_sequences=True)
    >>> tuple(layer(np.ones((2, 5, 3))).shape)
    (2, 5, 4)
    >>> tuple(layer.cell.levels[1].depth_cell_peephole.shape)
    (4,)
    """

    cell_class = DepthGatedLSTMCell
    cell_arguments = (
        COMMON_CELL_ARGUMENTS[:1]
        + ("depth",)
        + COMMON_CELL_ARGUMENTS[1:]
        + DEPTH_PEEPHOLE_ARGUMENTS
    )

    def __init__(
        self,
        units,
        depth=2,
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
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        super().__init__(
            {
                "units": units,
                "depth": depth,
                "activation": activation,
                "recurrent_activation": recurrent_activation,
                "use_bias": use_bias,
                "kernel_initializer": kernel_initializer,
                "recurrent_initializer": recurrent_initializer,
                "bias_initializer": bias_initializer,
                "peephole_initializer": peephole_initializer,
                "unit_forget_bias": unit_forget_bias,
                "kernel_regularizer": kernel_regularizer,
                "recurrent_regularizer": recurrent_regularizer,
                "bias_regularizer": bias_regularizer,
                "peephole_regularizer": peephole_regularizer,
                "kernel_constraint": kernel_constraint,
                "recurrent_constraint": recurrent_constraint,
                "bias_constraint": bias_constraint,
                "peephole_constraint": peephole_constraint,
                "dropout": dropout,
                "recurrent_dropout": recurrent_dropout,
                "seed": seed,
            },
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
