"""LSTM variant cells and layers for Keras 3: standard, peephole, coupled and
the whole variant space of Greff et al. (2017), with layer normalization,
projection and clipping."""

from keras_lstm_variants.callbacks import GateHistograms
from keras_lstm_variants.cells import CoupledLSTMCell
from keras_lstm_variants.cells import LSTMVariantCell
from keras_lstm_variants.cells import PeepholeLSTMCell
from keras_lstm_variants.cells import StandardLSTMCell
from keras_lstm_variants.clockwork import ClockworkRNN
from keras_lstm_variants.clockwork import ClockworkRNNCell
from keras_lstm_variants.depth_gated import DepthGatedLSTM
from keras_lstm_variants.depth_gated import DepthGatedLSTMCell
from keras_lstm_variants.equations import GATE_NAMES
from keras_lstm_variants.gru import GRU
from keras_lstm_variants.gru import GRUCell
from keras_lstm_variants.inspection import gate_activations
from keras_lstm_variants.layers import CoupledLSTM
from keras_lstm_variants.layers import LSTMVariant
from keras_lstm_variants.layers import PeepholeLSTM
from keras_lstm_variants.layers import StandardLSTM
from keras_lstm_variants.onnx_export import export_onnx
from keras_lstm_variants.saved_model import export_saved_model
from keras_lstm_variants.sites import signature_key
from keras_lstm_variants.tflite import export_tflite

__version__ = "0.1.0"

__all__ = [
    "GATE_NAMES",
    "ClockworkRNN",
    "ClockworkRNNCell",
    "GRU",
    "GRUCell",
    "CoupledLSTM",
    "CoupledLSTMCell",
    "DepthGatedLSTM",
    "DepthGatedLSTMCell",
    "GateHistograms",
    "LSTMVariant",
    "LSTMVariantCell",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "StandardLSTM",
    "StandardLSTMCell",
    "__version__",
    "export_onnx",
    "export_saved_model",
    "export_tflite",
    "gate_activations",
    "signature_key",
]
