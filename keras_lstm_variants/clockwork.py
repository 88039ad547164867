"""The Clockwork RNN (Koutník et al. 2014): its step, its cell and its layer.

The `units` hidden units form `len(periods)` equal modules with increasing
periods. At step `t = 0, 1, 2, ...` module `m` is active when
`t mod periods[m] == 0`; an active module updates like a simple RNN, an
inactive one keeps its value::

    active m:    h_t^m = φ(x_t · kernel_m + h_{t-1} · recurrent_kernel_m + bias_m)
    inactive m:  h_t^m = h_{t-1}^m

The block of `recurrent_kernel` from module `j` (rows) to module `m`
(columns) is zero unless `periods[j] ≥ periods[m]`: slower modules feed
faster ones. The step multiplies the kernel by that block mask, so the masked
entries never reach an output and get zero gradient, and a constraint keeps
the stored weight block-triangular through training.

The step counter is the cell's second state (`clock`, width 1, in the
compute dtype), so `stateful=True` continues the clock across batches. It
holds `t mod lcm(periods)`, which decides every module's activity exactly as
`t` does and stays a small integer that floats represent exactly.
"""

import math
import numbers
from typing import NamedTuple

import keras
import numpy as np
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_lstm_variants import validation
from keras_lstm_variants.cells import DropoutRNNCell
from keras_lstm_variants.cells import check_dropout
from keras_lstm_variants.layers import GenericLoopLayer
from keras_lstm_variants.value_cells import InspectableCell

_register = keras.saving.register_keras_serializable(package="keras_lstm_variants")

#: The default periods (REFERENCE.md): four modules, 1, 2, 4 and 8.
DEFAULT_PERIODS = (1, 2, 4, 8)

#: Largest integer up to which each float dtype represents every integer:
#: the cycle `lcm(periods)` of the clock must not exceed it.
EXACT_INTEGERS = {
    "float16": 2**11,
    "bfloat16": 2**8,
    "float32": 2**24,
    "float64": 2**53,
}

#: The cell's arguments, in signature order (after `units`, `periods`).
CELL_ARGUMENTS = (
    "units",
    "periods",
    "activation",
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
    "seed",
)


class ClockworkValues(NamedTuple):
    """One step of a Clockwork RNN: the values gate inspection reads
    (`active_modules`, `hidden_state`, each `(batch, units)`) and the next
    `clock` `(batch, 1)`."""

    active_modules: object
    hidden_state: object
    clock: object


def clockwork_step(
    inputs,
    h_prev,
    clock,
    kernel,
    recurrent_kernel,
    bias,
    recurrent_mask,
    unit_periods,
    cycle,
    activation,
    h_recurrent=None,
):
    """One step of a Clockwork RNN.

    Args:
        inputs: `x_t`, `(batch, input_dim)`.
        h_prev: `h_{t-1}`, `(batch, units)`.
        clock: `t mod cycle`, `(batch, 1)`.
        kernel: `(input_dim, units)`.
        recurrent_kernel: `(units, units)`.
        bias: `(units,)`, or `None`.
        recurrent_mask: `(units, units)`, 1 where `recurrent_kernel` may be
            non-zero (`periods[row module] ≥ periods[column module]`), else 0.
        unit_periods: `(units,)`, the period of each unit's module.
        cycle: `lcm(periods)`, a Python int.
        activation: `φ`.
        h_recurrent: What the recurrent product reads instead of `h_prev`
            (recurrent dropout), or `None`.

    Returns:
        A `ClockworkValues`: `active_modules` (1.0 on the units of active
        modules, else 0.0), `hidden_state` and the next `clock`.
    """
    h_recurrent = h_prev if h_recurrent is None else h_recurrent
    z = ops.matmul(inputs, kernel) + ops.matmul(
        h_recurrent, recurrent_kernel * recurrent_mask
    )
    if bias is not None:
        z = z + bias
    active = ops.equal(ops.mod(clock, unit_periods), 0)
    h = ops.where(active, activation(z), h_prev)
    return ClockworkValues(ops.cast(active, h.dtype), h, ops.mod(clock + 1, cycle))


def check_periods(periods, units):
    """Returns `periods` as a tuple of ints, or raises: they must be a
    non-empty list or tuple of positive, strictly increasing integers, as
    many as divide `units`."""
    if isinstance(periods, (str, bytes)) or not isinstance(periods, (list, tuple)):
        raise TypeError(
            "Argument `periods` must be a list or tuple of positive integers "
            f"(for example {DEFAULT_PERIODS}); received periods={periods!r}."
        )
    if not periods:
        raise ValueError(
            "Argument `periods` must hold at least one period; received "
            f"periods={periods!r}."
        )
    for p in periods:
        if isinstance(p, bool) or not isinstance(p, numbers.Integral):
            raise TypeError(
                "Argument `periods` must hold positive integers; received "
                f"periods={periods!r}, with {p!r} of type {type(p).__name__}."
            )
        if p <= 0:
            raise ValueError(
                "Argument `periods` must hold positive integers; received "
                f"periods={periods!r}, with {p!r}."
            )
    periods = tuple(int(p) for p in periods)
    if any(a >= b for a, b in zip(periods[:-1], periods[1:], strict=True)):
        raise ValueError(
            "Argument `periods` must be strictly increasing (module m updates "
            f"every periods[m] steps); received periods={periods!r}."
        )
    if units % len(periods):
        raise ValueError(
            f"Argument `units` ({units}) must split into len(periods) = "
            f"{len(periods)} equal modules, but {len(periods)} does not divide "
            f"{units}; received units={units}, periods={periods!r}."
        )
    return periods


def recurrent_mask(periods, units):
    """The `(units, units)` 0/1 mask of the recurrent kernel's allowed
    entries: row unit of module `j`, column unit of module `m`, 1 when
    `periods[j] ≥ periods[m]`."""
    unit_periods = np.repeat(periods, units // len(periods))
    return (unit_periods[:, None] >= unit_periods[None, :]).astype("float64")


class _ZeroBlocks(keras.constraints.Constraint):
    """Keeps the forbidden blocks of the recurrent kernel at zero (after the
    user's own `recurrent_constraint`, if any). Not serialized: the cell
    recreates it from `periods`."""

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        return w * ops.convert_to_tensor(self.mask, dtype=w.dtype)


@_register
class ClockworkRNNCell(keras.layers.Layer, DropoutRNNCell, InspectableCell):
    """A Clockwork RNN cell (Koutník et al. 2014): hidden modules that update
    at their own periods, slower modules feeding faster ones.

    `units` split into `len(periods)` equal modules (module `m` holds units
    `m·units/M ... (m+1)·units/M − 1`). At step `t` (counted from 0 at the
    start of the sequence) module `m` is active when `t mod periods[m] == 0`::

        active m:    h_t^m = φ(x_t · kernel_m + h_{t-1} · recurrent_kernel_m + bias_m)
        inactive m:  h_t^m = h_{t-1}^m

    `recurrent_kernel[rows of module j, columns of module m]` is zero unless
    `periods[j] ≥ periods[m]`. The step uses `recurrent_kernel ⊙ mask` (so
    those entries never influence an output and get zero gradient), and a
    constraint applied after each optimizer update (after
    `recurrent_constraint`) keeps them exactly zero; they also start at zero.

    States: `[h, clock]`. `clock` `(batch, 1)` holds `t mod lcm(periods)`, in
    the compute dtype; zeros start a sequence, and with `stateful=True` the
    clock goes on from batch to batch. Under a mask a masked step changes no
    state, so it does not advance the clock either: each sequence's clock
    counts its own unmasked steps (left padding does not shift the
    schedule). With `go_backwards=True` the clock starts at the last input.

    Every step computes all modules and keeps the inactive ones' old values
    (no computation is saved). Values (gate inspection): `active_modules`
    (1.0 on the units of active modules, else 0.0; also in `gate_names`, as
    it lies in [0, 1]) and `hidden_state`.

    Args:
        units: Positive integer, the number of hidden units, a multiple of
            `len(periods)`.
        periods: Strictly increasing positive integers, one per module.
            Default: `(1, 2, 4, 8)`.
        activation: Activation `φ`. Default: `"tanh"`.
        use_bias: Boolean (default `True`), whether the cell uses a bias.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel` (its
            forbidden blocks are then set to zero). Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        kernel_regularizer: Regularizer for `kernel`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
        bias_regularizer: Regularizer for `bias`.
        kernel_constraint: Constraint for `kernel`.
        recurrent_constraint: Constraint for `recurrent_kernel` (the block
            mask is applied after it).
        bias_constraint: Constraint for `bias`.
        dropout: Float in [0, 1). Fraction of the input units to drop, one
            mask per sequence.
        recurrent_dropout: Float in [0, 1). Fraction of `h_{t-1}` to drop in
            the recurrent product (an inactive module still keeps its
            undropped value), one mask per sequence.
        seed: Random seed for dropout.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: The list `[h, clock]`, shapes `(batch, units)` and
            `(batch, 1)`.
        training: Python boolean, whether dropout applies. Default: `False`.

    Example:

    >>> cell = ClockworkRNNCell(8, periods=(1, 2, 4, 8))
    >>> tuple(keras.layers.RNN(cell)(np.ones((2, 5, 3))).shape)
    (2, 8)
    >>> cell.state_size, cell.value_names
    ([8, 1], ('active_modules', 'hidden_state'))
    """

    value_names = ("active_modules", "hidden_state")
    gate_names = ("active_modules",)
    state_names = ("hidden_state", "clock")

    def __init__(
        self,
        units,
        periods=DEFAULT_PERIODS,
        activation="tanh",
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
        seed=None,
        **kwargs,
    ):
        self.units = validation.check_units(units)
        self.periods = check_periods(periods, self.units)
        self.dropout, self.recurrent_dropout = check_dropout(
            self, dropout, recurrent_dropout
        )
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.use_bias = validation.check_bool("use_bias", use_bias)
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

        self.cycle = math.lcm(*self.periods)
        self.module_size = self.units // len(self.periods)
        self._mask = recurrent_mask(self.periods, self.units)
        self._unit_periods = np.repeat(self.periods, self.module_size).astype("float64")
        self.state_size = [self.units, 1]
        self.output_size = self.units
        self.input_dim = None
        self.bias = None

    def value_size(self, name):
        """Width of the value `name` (`value_names`) of one step: `units`."""
        return self.units

    def build(self, input_shape):
        where = f"{type(self).__name__} '{self.name}'"
        validation.check_step_input_shape(input_shape, None, where)
        limit = EXACT_INTEGERS.get(self.compute_dtype)
        if limit is not None and self.cycle > limit:
            raise ValueError(
                f"{where}: the clock counts up to lcm(periods) = {self.cycle}, "
                f"more than {self.compute_dtype} represents exactly ({limit}); "
                f"received periods={self.periods!r}. Use smaller periods or a "
                "wider compute dtype."
            )
        self.input_dim = int(input_shape[-1])
        self.kernel = self.add_weight(
            shape=(self.input_dim, self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            name="recurrent_kernel",
            initializer=self._masked_recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=_ZeroBlocks(self._mask, self.recurrent_constraint),
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def _masked_recurrent_initializer(self, shape, dtype=None):
        values = self.recurrent_initializer(shape, dtype=dtype)
        return values * ops.convert_to_tensor(self._mask, dtype=values.dtype)

    def gate_values(self, inputs, states, training=False):
        """One step's values, a `ClockworkValues` (computed by
        `clockwork_step`)."""
        h_prev, clock = states[0], states[1]
        h_recurrent = None
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            h_recurrent = h_prev * self.get_recurrent_dropout_mask(h_prev)
        dtype = self.compute_dtype
        return clockwork_step(
            inputs,
            h_prev,
            clock,
            self.kernel,
            self.recurrent_kernel,
            self.bias,
            ops.convert_to_tensor(self._mask, dtype=dtype),
            ops.convert_to_tensor(self._unit_periods, dtype=dtype),
            self.cycle,
            self.activation,
            h_recurrent=h_recurrent,
        )

    def next_states(self, values):
        """The states after a step: `[h, clock]`."""
        return [values.hidden_state, values.clock]

    def output_of(self, values):
        """The cell's output: the hidden state."""
        return values.hidden_state

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
            "periods": list(self.periods),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        for kind in ("kernel", "recurrent", "bias"):
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
class ClockworkRNN(GenericLoopLayer):
    """Clockwork RNN layer: `keras.layers.RNN` over a `ClockworkRNNCell`.

    See `ClockworkRNNCell` for the equations, the block-triangular
    `recurrent_kernel`, the `clock` state (continued by `stateful=True`, not
    advanced by masked steps) and the values. It runs the generic
    `keras.layers.RNN` loop on every backend (there is no fast path;
    `fast_path_fallback_reason()` says so).

    Args:
        units: Positive integer, the number of hidden units, a multiple of
            `len(periods)`.
        periods: Strictly increasing positive integers, one per module.
            Default: `(1, 2, 4, 8)`.
        activation: Activation `φ`. Default: `"tanh"`.
        use_bias: Boolean (default `True`), whether the cell uses a bias.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel` (then
            masked). Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        kernel_regularizer: Regularizer for `kernel`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
        bias_regularizer: Regularizer for `bias`.
        kernel_constraint: Constraint for `kernel`.
        recurrent_constraint: Constraint for `recurrent_kernel` (the block
            mask is applied after it).
        bias_constraint: Constraint for `bias`.
        dropout: Float in [0, 1). Fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1). Fraction of `h_{t-1}` to drop in
            the recurrent product.
        seed: Random seed for dropout.
        return_sequences: Boolean. Whether to return the whole output sequence
            or only the last output. Default: `False`.
        return_state: Boolean. Whether to return the final states `h` and
            `clock` after the output. Default: `False`.
        go_backwards: Boolean (default `False`). If `True`, process the
            sequence backwards and return the reversed sequence.
        stateful: Boolean (default `False`). If `True`, the final states of
            each batch (the clock included) are the initial states of the
            next one.
        unroll: Boolean (default `False`). If `True`, unroll the loop.
        zero_output_for_mask: Boolean (default `False`). If `True`, masked
            steps output zeros instead of repeating the last output.
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, features)`.
        mask: Boolean tensor of shape `(batch, timesteps)`; `False` steps are
            skipped and do not advance the clock (optional).
        training: Python boolean, whether dropout applies (optional).
        initial_state: List `[h, clock]` of initial state tensors (optional;
            zeros by default).

    Example:

    >>> layer = ClockworkRNN(6, periods=(1, 3), return_state=True)
    >>> output, h, clock = layer(np.ones((2, 5, 3)))
    >>> keras.ops.convert_to_numpy(clock)[:, 0].tolist()  # 5 mod lcm(1, 3)
    [2.0, 2.0]
    """

    cell_class = ClockworkRNNCell
    cell_arguments = CELL_ARGUMENTS

    def __init__(
        self,
        units,
        periods=DEFAULT_PERIODS,
        activation="tanh",
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
                "periods": periods,
                "activation": activation,
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
