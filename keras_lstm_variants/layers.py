"""Ready layers: `keras.layers.RNN` subclasses around each cell.

Like `keras.layers.LSTM`, each layer takes its cell's arguments and RNN's own,
builds the cell itself, exposes the cell's arguments as read-only properties
and serializes to one flat config.
"""

import inspect

import keras
from keras import tree

from keras_lstm_variants import fast_path
from keras_lstm_variants import validation
from keras_lstm_variants.cells import CoupledLSTMCell
from keras_lstm_variants.cells import PeepholeLSTMCell
from keras_lstm_variants.cells import StandardLSTMCell

_register = keras.saving.register_keras_serializable(package="keras_lstm_variants")

_LAYER_DOC = """
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
            the whole-sequence fast path (a custom gradient for the whole
            sequence with an XLA-compiled backward loop; TensorFlow
            backend). `"auto"` takes it where it applies and runs
            the generic `keras.layers.RNN` loop elsewhere; `False` always
            runs the generic loop; `True` raises a `ValueError` where the
            fast path cannot apply. It gives the generic loop's numbers; see
            `keras_lstm_variants.fast_path` for the cases that fall back.
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
"""


def _cell_argument_names(cell_class):
    """Names of the arguments a cell class accepts (its own and its base's)."""
    names = []
    for klass in reversed(cell_class.__mro__):
        if "__init__" not in vars(klass) or not hasattr(klass, "coupled"):
            continue
        for param in inspect.signature(klass.__init__).parameters.values():
            positional = param.kind is param.POSITIONAL_OR_KEYWORD
            if positional and param.name not in ("self", *names):
                names.append(param.name)
    if not cell_class.allowed_peephole_gates:
        names = [n for n in names if not n.startswith("peephole_")]
    return tuple(names)


class LSTMVariantLayer(keras.layers.RNN):
    """Base class of the layers; subclasses only name their `cell_class`."""

    cell_class = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.cell_arguments = _cell_argument_names(cls.cell_class)
        for name in cls.cell_arguments:
            if not hasattr(cls, name):
                setattr(cls, name, _cell_property(name))
        if cls.__doc__:
            cls.__doc__ = cls.__doc__.replace("{layer_args}", _LAYER_DOC)

    def __init__(
        self,
        units,
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
        cell_kwargs = {
            name: kwargs.pop(name) for name in self.cell_arguments if name in kwargs
        }
        cell = self.cell_class(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="cell",
            **{k: v for k, v in cell_kwargs.items() if k != "units"},
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
        if self.use_fast_path is True:
            # Fail at construction when nothing about the call can change it.
            self._check_fast_path_possible(fast_path.fallback_reason(self))

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
        validation.check_sequence_shape(
            sequences.shape, self.cell.input_dim, self._where()
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
        if fast_path.generic_loop_forced():
            return "inside fast_path.generic_loop()"
        return fast_path.fallback_reason(self)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if tree.is_nested(mask):
            mask = mask[0]
        reason = self.fast_path_fallback_reason()
        if reason is None:
            return fast_path.run(self, sequences, initial_state, mask, training)
        if self.use_fast_path is True and not fast_path.generic_loop_forced():
            self._check_fast_path_possible(reason)
        return super().inner_loop(
            sequences, initial_state, mask=mask, training=training
        )

    def get_config(self):
        config = super().get_config()
        config["use_fast_path"] = self.use_fast_path
        cell_config = config.pop("cell")["config"]
        config.update(
            {name: cell_config[name] for name in self.cell_arguments}
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _cell_property(name):
    return property(
        lambda self: getattr(self.cell, name),
        doc=f"The cell's `{name}` (read-only).",
    )


@_register
class StandardLSTM(LSTMVariantLayer):
    """Standard LSTM layer: `keras.layers.RNN` over a `StandardLSTMCell`.

    Same equations and weight layout as `keras.layers.LSTM`.

    Args:
        units: Positive integer, dimensionality of the output space.
        **cell arguments: Everything `StandardLSTMCell` takes
            (`activation`, `recurrent_activation`, `use_bias`, the
            initializers, regularizers and constraints, `unit_forget_bias`,
            `dropout`, `recurrent_dropout`, `seed`), readable afterwards as
            properties of the layer.{layer_args}
    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> StandardLSTM(4)(inputs).shape
    (32, 4)
    """

    cell_class = StandardLSTMCell


@_register
class PeepholeLSTM(LSTMVariantLayer):
    """Peephole LSTM layer: `keras.layers.RNN` over a `PeepholeLSTMCell`.

    Args:
        units: Positive integer, dimensionality of the output space.
        peephole_gates: Subset of `("input", "forget", "output")` that read
            the cell state. Default: all three.
        **cell arguments: Everything `PeepholeLSTMCell` takes (those of
            `keras.layers.LSTMCell` plus `peephole_initializer`,
            `peephole_regularizer`, `peephole_constraint`), readable
            afterwards as properties of the layer.{layer_args}
    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> layer = PeepholeLSTM(4, peephole_gates=("forget",), return_sequences=True)
    >>> layer(inputs).shape
    (32, 10, 4)
    """

    cell_class = PeepholeLSTMCell


@_register
class CoupledLSTM(LSTMVariantLayer):
    """Coupled input-forget gate LSTM layer over a `CoupledLSTMCell`.

    Args:
        units: Positive integer, dimensionality of the output space.
        peephole_gates: Optional subset of `("forget", "output")`.
            Default: none.
        **cell arguments: Everything `CoupledLSTMCell` takes, readable
            afterwards as properties of the layer.{layer_args}
    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, h, c = CoupledLSTM(4, return_state=True)(inputs)
    >>> c.shape
    (32, 4)
    """

    cell_class = CoupledLSTMCell
