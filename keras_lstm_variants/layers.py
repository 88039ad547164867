"""Ready layers: `keras.layers.RNN` subclasses around each cell.

Like `keras.layers.LSTM`, each layer takes its cell's arguments and RNN's own
in an explicit signature, builds the cell itself, exposes each cell argument
as a read-only property and serializes to one flat config.
"""

import warnings

import keras

from keras_lstm_variants import fast_path
from keras_lstm_variants import validation
from keras_lstm_variants.cells import PEEPHOLE_ARGUMENTS
from keras_lstm_variants.cells import CoupledLSTMCell
from keras_lstm_variants.cells import LSTMVariantCell
from keras_lstm_variants.cells import PeepholeLSTMCell
from keras_lstm_variants.cells import StandardLSTMCell
from keras_lstm_variants.variants import STANDARD as SWITCHES

_register = keras.saving.register_keras_serializable(package="keras_lstm_variants")

#: The cell arguments every layer takes, after `units`.
COMMON_CELL_ARGUMENTS = (
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
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


def cell_property(name):
    """A read-only property of a layer that gives its cell's attribute `name`."""
    return property(
        lambda self: getattr(self.cell, name),
        doc=f"The cell's `{name}` (read-only).",
    )


class RecurrentLayer(keras.layers.RNN):
    """Base class of the layers: an RNN over one of our cells, with a fast path.

    Builds the cell from the layer's arguments, checks calls early, picks the
    fast path or the generic loop, and serializes to one flat config. Each
    name of a class's own `cell_arguments` becomes a read-only property of
    the layer that reads the cell's attribute of that name (`cell_property`).
    Subclasses name their `cell_class` and `cell_arguments`, pass the cell
    arguments of their signature to `__init__` as `cell_arguments`, and say
    why their cell cannot take the fast path (`_cell_fast_path_reason`) and
    how it runs (`_run_fast_path`).

    Args:
        cell_arguments: Dict of the cell's arguments (`units` included).
        return_sequences: Whether to return the whole output sequence.
        return_state: Whether to return the final states after the output.
        go_backwards: Whether to process the sequence backwards.
        stateful: Whether the final states of a batch start the next one.
        unroll: Whether to unroll the loop.
        zero_output_for_mask: Whether masked steps output zeros.
        use_fast_path: `"auto"`, `True` or `False` (see the subclasses).
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: List of initial states, or `None`.
        mask: Boolean `(batch, timesteps)` tensor, or `None`.
        training: Python boolean, whether dropout applies.
    """

    cell_class = None
    cell_arguments = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in vars(cls).get("cell_arguments", ()):
            if name not in vars(cls):
                setattr(cls, name, cell_property(name))

    def __init__(
        self,
        cell_arguments,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        use_fast_path="auto",
        **kwargs,
    ):
        self.use_fast_path = fast_path.check_use_fast_path(use_fast_path)
        self._refuse_arguments(kwargs)
        cell = self.cell_class(
            **cell_arguments,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.input_spec = keras.InputSpec(ndim=3)
        if self.use_fast_path is True:
            # Fail at construction when nothing about the call can change it.
            self._check_fast_path_possible(self._cell_fast_path_reason())

    def _refuse_arguments(self, kwargs):
        """Raises for arguments of other layers that `kwargs` may hold."""

    def _cell_fast_path_reason(self):
        """Why this layer cannot take the fast path, or `None` (regardless
        of `use_fast_path`)."""
        raise NotImplementedError

    def _run_fast_path(self, sequences, initial_state, mask, training):
        """The fast path's `(last_output, outputs, states)`."""
        raise NotImplementedError

    def _check_fast_path_possible(self, reason):
        if reason is not None:
            raise ValueError(
                f"{self._where()} was given use_fast_path=True, but the fast "
                f"path cannot run here: {reason}. Pass use_fast_path='auto' "
                "to fall back to the generic loop."
            )

    def _where(self):
        return f"{type(self).__name__} '{self.name}'"

    def build(self, sequences_shape, initial_state_shape=None):
        validation.check_sequence_shape(sequences_shape, None, self._where())
        super().build(sequences_shape, initial_state_shape)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = validation.check_sequences(
            sequences, self.cell.input_dim, self.compute_dtype, self._where()
        )
        validation.check_mask(mask, sequences.shape, self._where())
        validation.check_initial_state(
            initial_state, sequences.shape[0], self.cell.state_size, self._where()
        )
        return super().call(
            sequences, initial_state=initial_state, mask=mask, training=training
        )

    def fast_path_fallback_reason(self):
        """Why this layer runs the generic loop, or `None` if it runs fast.

        Returns:
            `None` if a call of this layer takes the fast path, else a short
            sentence saying why not (also when `use_fast_path=False`).
        """
        if self.use_fast_path is False:
            return "use_fast_path=False"
        return self._cell_fast_path_reason()

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if keras.tree.is_nested(mask):
            mask = mask[0]
        reason = self.fast_path_fallback_reason()
        if reason is None:
            return self._run_fast_path(sequences, initial_state, mask, training)
        if self.use_fast_path is True and not fast_path.xla_compiling():
            # An XLA-compiled caller is no reason to fail inside `fit`.
            self._check_fast_path_possible(reason)
        return super().inner_loop(
            sequences, initial_state, mask=mask, training=training
        )

    def get_config(self):
        config = super().get_config()
        config["use_fast_path"] = self.use_fast_path
        cell_config = config.pop("cell")["config"]
        config.update({name: cell_config[name] for name in self.cell_arguments})
        # As the configs of Keras's LSTM and GRU layers, which hold it.
        config["activity_regularizer"] = keras.regularizers.serialize(
            self.activity_regularizer
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("use_fast_path") is True:
            reason = fast_path.backend_reason()
            if reason is not None:
                # A saved file cannot be changed by its reader: load it with
                # the generic loop rather than refuse it.
                warnings.warn(
                    f"{cls.__name__} '{config.get('name')}' was saved with "
                    f"use_fast_path=True, but {reason}; it is loaded with "
                    "use_fast_path='auto' (the generic loop, same numbers).",
                    stacklevel=2,
                )
                config["use_fast_path"] = "auto"
        return cls(**config)


class LSTMVariantLayer(RecurrentLayer):
    """Base class of the LSTM layers: an RNN over one of our LSTM cells.

    Subclasses name their `cell_class` and `cell_arguments` and pass the cell
    arguments of their signature to `__init__` as `cell_arguments`.

    Args:
        cell_arguments: Dict of the cell's arguments (`units` included).
        return_sequences: Whether to return the whole output sequence.
        return_state: Whether to return the final states after the output.
        go_backwards: Whether to process the sequence backwards.
        stateful: Whether the final states of a batch start the next one.
        unroll: Whether to unroll the loop.
        zero_output_for_mask: Whether masked steps output zeros.
        use_fast_path: `"auto"`, `True` or `False` (see the subclasses).
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: List `[h, c]` of initial states, or `None`.
        mask: Boolean `(batch, timesteps)` tensor, or `None`.
        training: Python boolean, whether dropout applies.

    Example:

    >>> class ForgetOnlyPeepholeLSTM(LSTMVariantLayer):
    ...     cell_class = PeepholeLSTMCell
    ...     cell_arguments = COMMON_CELL_ARGUMENTS + PEEPHOLE_ARGUMENTS
    ...     def __init__(self, units, **kwargs):
    ...         cells = {"units": units, "peephole_gates": ("forget",)}
    ...         super().__init__(cells, **kwargs)
    >>> tuple(ForgetOnlyPeepholeLSTM(3)(np.ones((2, 4, 5))).shape)
    (2, 3)
    """

    cell_class = None
    cell_arguments = COMMON_CELL_ARGUMENTS

    def _refuse_arguments(self, kwargs):
        validation.refuse_arguments(
            type(self).__name__,
            kwargs,
            [a for a in PEEPHOLE_ARGUMENTS if a not in self.cell_arguments],
            f"{self.cell_class.__name__} has no peepholes: use PeepholeLSTM",
        )

    def _cell_fast_path_reason(self):
        return fast_path.fallback_reason(self)

    def _run_fast_path(self, sequences, initial_state, mask, training):
        return fast_path.run(self, sequences, initial_state, mask, training)


class _PeepholeLayer(LSTMVariantLayer):
    """The peephole arguments' properties, shared by the layers that take them."""

    cell_arguments = COMMON_CELL_ARGUMENTS + PEEPHOLE_ARGUMENTS


@_register
class StandardLSTM(LSTMVariantLayer):
    """Standard LSTM layer: `keras.layers.RNN` over a `StandardLSTMCell`.

    Same equations and weight layout as `keras.layers.LSTM`.

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
        dropout: Float in [0, 1). Fraction of the input units to drop.
            Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            to drop. Default: 0.
        seed: Random seed for dropout.
        return_sequences: Boolean. Whether to return the whole output sequence
            or only the last output. Default: `False`.
        return_state: Boolean. Whether to return the final states `h` and
            `c` after the output. Default: `False`.
        go_backwards: Boolean (default `False`). If `True`, process the
            sequence backwards and return the reversed sequence.
        stateful: Boolean (default `False`). If `True`, the final states of
            each batch are the initial states of the next one.
        unroll: Boolean (default `False`). If `True`, unroll the loop (faster
            for short sequences, more memory).
        zero_output_for_mask: Boolean (default `False`). If `True`, masked
            steps output zeros instead of repeating the last output.
        use_fast_path: `"auto"` (default), `True` or `False`. Whether to run
            the whole-sequence fast path (TensorFlow backend; see
            `keras_lstm_variants.fast_path`). `"auto"` takes it where it
            applies, `False` always runs the generic `keras.layers.RNN`
            loop, `True` raises a `ValueError` where it cannot apply. Both
            give the same numbers.
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments (`name`,
            `dtype`, `activity_regularizer`, ...).

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, features)`.
        mask: Boolean tensor of shape `(batch, timesteps)`; `False` steps are
            skipped (optional, usually set by `Embedding(mask_zero=True)` or
            `Masking`).
        training: Python boolean, whether dropout applies (optional).
        initial_state: List `[h, c]` of initial state tensors (optional;
            zeros by default).

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> tuple(StandardLSTM(4)(inputs).shape)
    (32, 4)
    """

    cell_class = StandardLSTMCell

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
                "unit_forget_bias": unit_forget_bias,
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
            use_fast_path=use_fast_path,
            **kwargs,
        )


@_register
class PeepholeLSTM(_PeepholeLayer):
    """Peephole LSTM layer: `keras.layers.RNN` over a `PeepholeLSTMCell`.

    Args:
        units: Positive integer, dimensionality of the output space.
        peephole_gates: Subset of `("input", "forget", "output")` that read
            the cell state. Default: all three.
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
        peephole_initializer: Initializer for the peephole vectors (each gets
            its own draw). Default: `"glorot_uniform"`.
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
        dropout: Float in [0, 1). Fraction of the input units to drop.
            Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            to drop. Default: 0.
        seed: Random seed for dropout.
        return_sequences: Boolean. Whether to return the whole output sequence
            or only the last output. Default: `False`.
        return_state: Boolean. Whether to return the final states `h` and
            `c` after the output. Default: `False`.
        go_backwards: Boolean (default `False`). If `True`, process the
            sequence backwards and return the reversed sequence.
        stateful: Boolean (default `False`). If `True`, the final states of
            each batch are the initial states of the next one.
        unroll: Boolean (default `False`). If `True`, unroll the loop (faster
            for short sequences, more memory).
        zero_output_for_mask: Boolean (default `False`). If `True`, masked
            steps output zeros instead of repeating the last output.
        use_fast_path: `"auto"` (default), `True` or `False`. Whether to run
            the whole-sequence fast path (TensorFlow backend; see
            `keras_lstm_variants.fast_path`). `"auto"` takes it where it
            applies, `False` always runs the generic `keras.layers.RNN`
            loop, `True` raises a `ValueError` where it cannot apply. Both
            give the same numbers.
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments (`name`,
            `dtype`, `activity_regularizer`, ...).

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, features)`.
        mask: Boolean tensor of shape `(batch, timesteps)`; `False` steps are
            skipped (optional).
        training: Python boolean, whether dropout applies (optional).
        initial_state: List `[h, c]` of initial state tensors (optional;
            zeros by default).

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> layer = PeepholeLSTM(4, peephole_gates=("forget",), return_sequences=True)
    >>> tuple(layer(inputs).shape)
    (32, 10, 4)
    """

    cell_class = PeepholeLSTMCell

    def __init__(
        self,
        units,
        peephole_gates=("input", "forget", "output"),
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
        use_fast_path="auto",
        **kwargs,
    ):
        super().__init__(
            {
                "units": units,
                "peephole_gates": peephole_gates,
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
            use_fast_path=use_fast_path,
            **kwargs,
        )


@_register
class CoupledLSTM(_PeepholeLayer):
    """Coupled input-forget gate LSTM layer over a `CoupledLSTMCell`.

    Args:
        units: Positive integer, dimensionality of the output space.
        peephole_gates: Optional subset of `("forget", "output")`.
            Default: none.
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
        peephole_initializer: Initializer for the peephole vectors (each gets
            its own draw). Default: `"glorot_uniform"`.
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
        dropout: Float in [0, 1). Fraction of the input units to drop.
            Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of the recurrent units
            to drop. Default: 0.
        seed: Random seed for dropout.
        return_sequences: Boolean. Whether to return the whole output sequence
            or only the last output. Default: `False`.
        return_state: Boolean. Whether to return the final states `h` and
            `c` after the output. Default: `False`.
        go_backwards: Boolean (default `False`). If `True`, process the
            sequence backwards and return the reversed sequence.
        stateful: Boolean (default `False`). If `True`, the final states of
            each batch are the initial states of the next one.
        unroll: Boolean (default `False`). If `True`, unroll the loop (faster
            for short sequences, more memory).
        zero_output_for_mask: Boolean (default `False`). If `True`, masked
            steps output zeros instead of repeating the last output.
        use_fast_path: `"auto"` (default), `True` or `False`. Whether to run
            the whole-sequence fast path (TensorFlow backend; see
            `keras_lstm_variants.fast_path`). `"auto"` takes it where it
            applies, `False` always runs the generic `keras.layers.RNN`
            loop, `True` raises a `ValueError` where it cannot apply. Both
            give the same numbers.
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments (`name`,
            `dtype`, `activity_regularizer`, ...).

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, features)`.
        mask: Boolean tensor of shape `(batch, timesteps)`; `False` steps are
            skipped (optional).
        training: Python boolean, whether dropout applies (optional).
        initial_state: List `[h, c]` of initial state tensors (optional;
            zeros by default).

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, h, c = CoupledLSTM(4, return_state=True)(inputs)
    >>> tuple(c.shape)
    (32, 4)
    """

    cell_class = CoupledLSTMCell

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
                "peephole_gates": peephole_gates,
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
            use_fast_path=use_fast_path,
            **kwargs,
        )


@_register
class LSTMVariant(_PeepholeLayer):
    """An LSTM layer of any variant: `keras.layers.RNN` over an
    `LSTMVariantCell`.

    Greff et al.'s variants by name (`variant="NIG"`, `"NFG"`, `"NOG"`,
    `"NIAF"`, `"NOAF"`, `"NP"`, `"CIFG"`, `"FGR"`, `"vanilla"`), each switch on
    its own, and layer normalization, projection and clipping; see
    `LSTMVariantCell` for the equations, the weights and the states.

    Args:
        units: Positive integer, the number of cells (width of `c`).
        variant: A variant name, or `None` (the standard LSTM).
        input_gate: Whether the input gate exists (`False`: `i = 1`).
        forget_gate: Whether the forget gate exists (`False`: `f = 1`).
        output_gate: Whether the output gate exists (`False`: `o = 1`).
        input_activation: Whether the candidate is `φ(z_c)` (`False`: `z_c`).
        output_activation: Whether `h = o ⊙ φ(c)` (`False`: `o ⊙ c`).
        coupled: Whether the input gate is `1 − forget_gate` (CIFG).
        peephole_gates: Which gates read the cell state.
        full_gate_recurrence: Whether the previous step's gates feed every
            gate (FGR).
        layer_norm: Whether to layer-normalize the products and the state.
        projection_units: Width of the projected output `h`, or `None`.
        cell_clip: Bound of the cell state, or `None`.
        projection_clip: Bound of the projected output, or `None`.
        activation: Activation `φ`. Default: `"tanh"`.
        recurrent_activation: Activation `σ` of the gates. Default:
            `"sigmoid"`.
        use_bias: Boolean (default `True`), whether the cell uses a bias vector.
        kernel_initializer: Initializer for `kernel` (and
            `projection_kernel`). Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel` (and
            `gate_recurrent_kernel`). Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        peephole_initializer: Initializer for the peephole vectors.
            Default: `"glorot_uniform"`.
        unit_forget_bias: Boolean (default `True`): the forget block of the
            bias starts at 1.
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
            to drop.
        seed: Random seed for dropout.
        return_sequences: Boolean. Whether to return the whole output sequence
            or only the last output. Default: `False`.
        return_state: Boolean. Whether to return the final states after the
            output. Default: `False`.
        go_backwards: Boolean (default `False`). If `True`, process the
            sequence backwards and return the reversed sequence.
        stateful: Boolean (default `False`). If `True`, the final states of
            each batch are the initial states of the next one.
        unroll: Boolean (default `False`). If `True`, unroll the loop.
        zero_output_for_mask: Boolean (default `False`). If `True`, masked
            steps output zeros instead of repeating the last output.
        use_fast_path: `"auto"` (default), `True` or `False`, as for
            `StandardLSTM`. The fast path runs every option: Greff's
            switches, full gate recurrence, layer normalization,
            projection and both clips (`fast_path_fallback_reason()` says
            why a call would not take it).
        **kwargs: Further `keras.layers.RNN` / `Layer` arguments.

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, features)`.
        mask: Boolean tensor of shape `(batch, timesteps)` (optional).
        training: Python boolean, whether dropout applies (optional).
        initial_state: List of initial state tensors (optional; zeros by
            default).

    Example:

    >>> layer = LSTMVariant(8, variant="CIFG", projection_units=4)
    >>> tuple(layer(np.ones((2, 5, 3))).shape)
    (2, 4)
    >>> layer.coupled, layer.peephole_gates
    (True, ('forget', 'output'))
    """

    cell_class = LSTMVariantCell
    cell_arguments = (
        COMMON_CELL_ARGUMENTS + PEEPHOLE_ARGUMENTS + ("variant", *SWITCHES)
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
                "variant": variant,
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
            use_fast_path=use_fast_path,
            **kwargs,
        )


class GenericLoopLayer(RecurrentLayer):
    """Base of the layers without a fast path (`DepthGatedLSTM`,
    `ClockworkRNN`): the call-time checks, `InputSpec` and flat config of
    every layer, and always the generic `keras.layers.RNN` loop.

    Subclasses name their `cell_class` and `cell_arguments` (each a
    read-only property of the layer, as for every layer); they take no
    `use_fast_path` argument and
    `fast_path_fallback_reason()` says why.

    Args:
        cell_arguments: Dict of the cell's arguments (`units` included).
        **kwargs: The `keras.layers.RNN` arguments (`return_sequences`, ...).

    Example:

    >>> class OneLevel(GenericLoopLayer):
    ...     cell_class = StandardLSTMCell
    ...     cell_arguments = COMMON_CELL_ARGUMENTS
    >>> layer = OneLevel({"units": 3})
    >>> layer.fast_path_fallback_reason()
    'OneLevel runs the generic keras.layers.RNN loop (it has no fast path)'
    """

    def __init__(self, cell_arguments, **kwargs):
        validation.refuse_arguments(
            type(self).__name__,
            kwargs,
            ("use_fast_path",),
            "it has no fast path and always runs the generic Keras loop",
        )
        validation.refuse_arguments(
            type(self).__name__,
            kwargs,
            [a for a in PEEPHOLE_ARGUMENTS if a not in self.cell_arguments],
            f"{self.cell_class.__name__} has no such argument",
        )
        super().__init__(cell_arguments, **kwargs)

    def _cell_fast_path_reason(self):
        return (
            f"{type(self).__name__} runs the generic keras.layers.RNN loop "
            "(it has no fast path)"
        )

    def get_config(self):
        config = super().get_config()
        del config["use_fast_path"]
        return config
