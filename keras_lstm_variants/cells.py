"""The RNN cells: `LSTMVariantCell`, which owns the weights and runs any
variant, and its three presets (standard, peephole, coupled).

Each cell declares its step as an `equations.LSTMStep` (which gates, which
peepholes, which options, which activations), creates the weights that step
reads and runs `equations.lstm_step` on them; the variants differ only in that
declaration. The presets fix some switches and keep 0.1.0's arguments and
configs.
"""

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_lstm_variants import equations
from keras_lstm_variants import validation
from keras_lstm_variants import variants
from keras_lstm_variants.equations import NORM_WEIGHTS
from keras_lstm_variants.equations import PEEPHOLE_GATES
from keras_lstm_variants.equations import LSTMStep
from keras_lstm_variants.equations import lstm_step
from keras_lstm_variants.equations import preactivations
from keras_lstm_variants.value_cells import LSTMValues

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


def check_dropout(cell, dropout, recurrent_dropout):
    """The two dropout rates of `cell`, checked: each in [0, 1), and zero
    where this Keras lacks the `DropoutRNNCell` mixin (then a
    `NotImplementedError` says so). Returns `(dropout, recurrent_dropout)`."""
    dropout = validation.check_rate("dropout", dropout)
    recurrent_dropout = validation.check_rate("recurrent_dropout", recurrent_dropout)
    if (dropout or recurrent_dropout) and not getattr(
        cell, "keras_has_dropout_mixin", True
    ):
        raise NotImplementedError(
            f"{type(cell).__name__}: dropout and recurrent_dropout need "
            "Keras's DropoutRNNCell mixin, which this Keras "
            f"({keras.__version__}) does not have where expected; pass "
            "dropout=0 and recurrent_dropout=0, or use a Keras release "
            "that setup.cfg declares."
        )
    return dropout, recurrent_dropout

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
STEP_METHODS = ("call", "gate_values", "next_states", "step_weights")


def own_draw(initializer, k):
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


@_register
class LSTMVariantCell(keras.layers.Layer, DropoutRNNCell, LSTMValues):
    """An LSTM cell of any variant: Greff et al.'s eight and the options of
    TF1, TF-Addons and PyTorch, as configuration of one set of equations.

    `variant` names a starting point (Greff et al. 2017; case-insensitive):
    `"vanilla"` (peepholes on all three gates), `"NIG"` (no input gate),
    `"NFG"` (no forget gate), `"NOG"` (no output gate), `"NIAF"` (no input
    activation), `"NOAF"` (no output activation), `"NP"` (no peepholes, the
    standard LSTM), `"CIFG"` (coupled input and forget gates) or `"FGR"` (full
    gate recurrence); `None` is the standard LSTM. Every switch left at `None`
    takes the variant's setting; any other value overrides it, so switches
    combine (`variant="NOAF", layer_norm=True`). The equations are those of
    `equations.lstm_step`; `z` has a block only for each gate that exists, in
    the order `i, f, c, o`.

    Weights (attributes of the cell under these names, `None` where absent):
    `kernel` `(input_dim, blocks·units)`, `recurrent_kernel` `(units or
    projection_units, blocks·units)`, `bias` `(blocks·units,)`, the peepholes
    `input_gate_peephole_weights` etc. `(units,)`; with full gate recurrence
    `gate_recurrent_kernel` `(3·units, 3·units)` (initialized, regularized and
    constrained like `recurrent_kernel`); with layer normalization
    `kernel_norm_gamma`, `kernel_norm_beta`, `recurrent_norm_gamma`,
    `recurrent_norm_beta` `(blocks·units,)` and `state_norm_gamma`,
    `state_norm_beta` `(units,)` (γ ones, β zeros, ε = 1e-3, as TF-Addons'
    `LayerNormLSTMCell`); with a projection `projection_kernel` `(units,
    projection_units)` (initialized, regularized and constrained like
    `kernel`; no bias).

    States: `[h, c]`, and `[h, c, a]` with full gate recurrence (`a` the
    previous step's `[i, f, o]`, zeros at the start); `h` has
    `projection_units` features with a projection, and so has the output.

    Args:
        units: Positive integer, the number of cells (width of `c`).
        variant: A variant name (see above), or `None`.
        input_gate: Whether the input gate exists (`False`: `i = 1`).
        forget_gate: Whether the forget gate exists (`False`: `f = 1`).
        output_gate: Whether the output gate exists (`False`: `o = 1`).
        input_activation: Whether the candidate is `φ(z_c)` (`False`: `z_c`).
        output_activation: Whether `h = o ⊙ φ(c)` (`False`: `o ⊙ c`).
        coupled: Whether the input gate is `1 − forget_gate` (CIFG).
        peephole_gates: Which gates read the cell state: a subset of
            `("input", "forget", "output")` among the gates that exist.
        full_gate_recurrence: Whether the previous step's gates feed every
            gate (FGR; needs all three gates, not coupled).
        layer_norm: Whether to layer-normalize the two products and the new
            cell state (Ba et al. 2016, as TF-Addons' `LayerNormLSTMCell`).
        projection_units: Positive integer `P`, or `None`: with it, `h_t =
            (o ⊙ φ(c_t)) · projection_kernel` (LSTMP, Sak et al. 2014;
            PyTorch's `proj_size`, TF1's `num_proj`).
        cell_clip: Positive float, or `None`: `c_t` is clipped to
            `[−cell_clip, cell_clip]` after its update (and layer norm), before
            the output peephole and `φ` read it (TF1's `cell_clip`).
        projection_clip: Positive float, or `None`: the projected `h_t` is
            clipped likewise (TF1's `proj_clip`); needs `projection_units`.
        activation: Activation `φ`. Default: `"tanh"`.
        recurrent_activation: Activation `σ` of the gates. Default:
            `"sigmoid"`.
        use_bias: Boolean (default `True`), whether the cell uses a bias vector.
        kernel_initializer: Initializer for `kernel` (and
            `projection_kernel`). Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel` (and
            `gate_recurrent_kernel`). Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        peephole_initializer: Initializer for the peephole vectors; each
            vector gets its own draw. Default: `"glorot_uniform"`.
        unit_forget_bias: Boolean (default `True`). If `True` and the forget
            gate exists, its block of the bias starts at 1.
        kernel_regularizer: Regularizer for `kernel` (and `projection_kernel`).
        recurrent_regularizer: Regularizer for `recurrent_kernel` (and
            `gate_recurrent_kernel`).
        bias_regularizer: Regularizer for `bias`.
        peephole_regularizer: Regularizer for the peephole vectors.
        kernel_constraint: Constraint for `kernel` (and `projection_kernel`).
        recurrent_constraint: Constraint for `recurrent_kernel` (and
            `gate_recurrent_kernel`).
        bias_constraint: Constraint for `bias`.
        peephole_constraint: Constraint for the peephole vectors.
        dropout: Float in [0, 1). Fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            (of `h`) to drop.
        seed: Random seed for dropout.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: The list of states (see above).
        training: Python boolean, whether dropout applies. Default: `False`.

    Example:

    >>> cell = LSTMVariantCell(4, variant="NOAF", layer_norm=True)
    >>> tuple(keras.layers.RNN(cell)(np.ones((2, 3, 5))).shape)
    (2, 4)
    >>> LSTMVariantCell(4, variant="NOG").value_names
    ('input_gate', 'forget_gate', 'candidate', 'cell_state', 'hidden_state')
    >>> LSTMVariantCell(4, variant="NIG").step.blocks
    ('forget', 'candidate', 'output')
    """

    #: The peephole gates a preset accepts, and why not the others.
    allowed_peephole_gates = PEEPHOLE_GATES
    peephole_gates_note = ""
    #: Whether `get_config` holds the variant switches (the presets' configs
    #: keep the arguments they have always had).
    switches_in_config = True
    #: Whether the class computes exactly its `step` (see `STEP_METHODS`).
    declares_its_step = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.declares_its_step = cls.declares_its_step and not any(
            name in vars(cls) for name in STEP_METHODS
        )

    def __init__(
        self,
        units,
        variant=None,
        input_gate=None,
        forget_gate=None,
        output_gate=None,
        input_activation=None,
        output_activation=None,
        coupled=None,
        peephole_gates=None,
        full_gate_recurrence=None,
        layer_norm=None,
        projection_units=None,
        cell_clip=None,
        projection_clip=None,
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
        if peephole_gates is not None or not self.switches_in_config:
            # The presets take a list of gates; only `LSTMVariantCell` reads
            # `None` as "the variant's peepholes".
            peephole_gates = validation.check_peephole_gates(
                peephole_gates, self.allowed_peephole_gates, self.peephole_gates_note
            )
        self.variant = None if variant is None else variants.canonical_name(variant)
        switches = variants.resolve(
            self.variant,
            {
                "input_gate": input_gate,
                "forget_gate": forget_gate,
                "output_gate": output_gate,
                "input_activation": input_activation,
                "output_activation": output_activation,
                "coupled": coupled,
                "peephole_gates": peephole_gates,
                "full_gate_recurrence": full_gate_recurrence,
                "layer_norm": layer_norm,
                "projection_units": projection_units,
                "cell_clip": cell_clip,
                "projection_clip": projection_clip,
            },
        )
        for name, value in switches.items():
            setattr(self, name, value)
        self.dropout, self.recurrent_dropout = check_dropout(
            self, dropout, recurrent_dropout
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
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            **switches,
        )
        self.blocks = self.step.blocks
        self.value_names = self.step.value_names
        self.gate_names = self.step.gate_names
        self.state_names = self.step.state_names
        self.output_size = self.projection_units or self.units
        self.state_size = [self.output_size, self.units]
        if self.full_gate_recurrence:
            self.state_size.append(3 * self.units)
        self.input_dim = None
        self.bias = None
        self.gate_recurrent_kernel = None
        self.projection_kernel = None
        for gate in PEEPHOLE_GATES:
            setattr(self, f"{gate}_gate_peephole_weights", None)
        for name in NORM_WEIGHTS:
            setattr(self, name, None)

    def value_size(self, name):
        """Width of the value `name` (`value_names`) of one step."""
        return self.output_size if name == "hidden_state" else self.units

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
            shape=(self.output_size, width),
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
                initializer=own_draw(self.peephole_initializer, k),
                regularizer=self.peephole_regularizer,
                constraint=self.peephole_constraint,
            )
            setattr(self, name, weight)
        if self.full_gate_recurrence:
            self.gate_recurrent_kernel = self.add_weight(
                shape=(3 * self.units, 3 * self.units),
                name="gate_recurrent_kernel",
                initializer=own_draw(self.recurrent_initializer, 1),
                regularizer=self.recurrent_regularizer,
                constraint=self.recurrent_constraint,
            )
        if self.layer_norm:
            for name in NORM_WEIGHTS:
                size = self.units if name.startswith("state") else width
                weight = self.add_weight(
                    shape=(size,),
                    name=name,
                    initializer="ones" if name.endswith("gamma") else "zeros",
                )
                setattr(self, name, weight)
        if self.projection_units is not None:
            self.projection_kernel = self.add_weight(
                shape=(self.units, self.projection_units),
                name="projection_kernel",
                initializer=own_draw(self.kernel_initializer, 1),
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
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

    def step_weights(self):
        """The weights the step reads, as a dict: `kernel`,
        `recurrent_kernel`, `bias` (`None` without `use_bias`), `peepholes`
        (`{gate: vector}` of the chosen peephole gates),
        `gate_recurrent_kernel`, `norms` (`{name: vector}`) and
        `projection_kernel` (`None` where the variant has none)."""
        return {
            "kernel": self.kernel,
            "recurrent_kernel": self.recurrent_kernel,
            "bias": self.bias,
            "peepholes": {
                gate: getattr(self, f"{gate}_gate_peephole_weights")
                for gate in self.peephole_gates
            },
            "gate_recurrent_kernel": self.gate_recurrent_kernel,
            "norms": {name: getattr(self, name) for name in NORM_WEIGHTS},
            "projection_kernel": self.projection_kernel,
        }

    def gate_values(self, inputs, states, training=False):
        """All values of one step, as a `GateValues` tuple (absent gates are
        `None`; `value_names` lists those that exist)."""
        h_prev, c_prev = states[0], states[1]
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            h_prev = h_prev * self.get_recurrent_dropout_mask(h_prev)
        w = self.step_weights()
        z = preactivations(
            self.step,
            ops.matmul(inputs, w["kernel"]),
            ops.matmul(h_prev, w["recurrent_kernel"]),
            w["bias"],
            w["norms"],
        )
        return lstm_step(
            self.step,
            z,
            c_prev,
            w["peepholes"],
            gates_prev=states[2] if self.full_gate_recurrence else None,
            gate_recurrent_kernel=w["gate_recurrent_kernel"],
            norms=w["norms"],
            projection_kernel=w["projection_kernel"],
        )

    def next_states(self, values):
        """The states after a step, from its `GateValues`."""
        return equations.next_states(self.step, values)

    def call(self, inputs, states, training=False):
        if self.input_dim is not None:
            validation.check_step_input_shape(
                inputs.shape, self.input_dim, f"{type(self).__name__} '{self.name}'"
            )
        values = self.gate_values(inputs, states, training)
        return values.hidden_state, self.next_states(values)

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, d), dtype=self.compute_dtype)
            for d in self.state_size
        ]

    def get_config(self):
        config = {"units": self.units}
        if self.switches_in_config:
            config["variant"] = self.variant
            config.update({name: getattr(self, name) for name in variants.STANDARD})
            config["peephole_gates"] = list(self.peephole_gates)
        config.update(
            {
                "activation": activations.serialize(self.activation),
                "recurrent_activation": activations.serialize(
                    self.recurrent_activation
                ),
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
                "recurrent_constraint": constraints.serialize(
                    self.recurrent_constraint
                ),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
            }
        )
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

    allowed_peephole_gates = ()
    switches_in_config = False

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
            peephole_gates=(),
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
    switches_in_config = False

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

    allowed_peephole_gates = ("forget", "output")
    switches_in_config = False
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
            coupled=True,
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
