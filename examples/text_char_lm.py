"""
Title: A character-level language model with an LSTM variant, and its gates
Description: Trains Embedding -> peephole (or standard, coupled) LSTM -> Dense
    to predict the next character of Python's own standard library source,
    logs its gates to TensorBoard while it trains, and exports a SavedModel
    that takes text and returns next-character logits or sampled text.
Result: `--quick` (one layer of 128 units, 800k characters, 6 epochs; about
    2 minutes on 2 CPU cores) reaches about 2.5 bits per character on
    validation files never trained on, against 4.6 for a unigram baseline;
    its samples have Python's look (indentation, `def`, `self.`, colons).
Needs: its helper module `_common.py` from the same directory: run it as a
    file, `python examples/text_char_lm.py --quick`, with the `examples`
    extra installed.

What it shows:

* Setup: the TensorFlow backend (for TensorBoard and the SavedModel).
* Data: the standard library's `.py` files (found through `sysconfig`, no
  download): a fixed, sorted selection up to a size budget, every tenth file
  held out for validation. `--corpus FILE` trains on any UTF-8 text instead
  (its last tenth is the validation text).
* Model: `keras.layers.Embedding`, `--layers` LSTM variant layers named
  `text_lstm` (`text_lstm_1`, `text_lstm_2`, ... for several), a `Dense`
  read-out; `model.summary()` is printed.
* Training: `model.fit` with `keras.callbacks.TensorBoard` (loss and bits per
  character) and `keras_lstm_variants.GateHistograms` (the gates of 16
  validation sequences, the heatmap labelled with the first one's characters).
* Evaluation: samples at three temperatures; validation bits per character
  beside a unigram baseline.
* Saving: `<out>/text_char_lm_<cell>.keras` (loads with only `import
  keras_lstm_variants`), `<out>/text_char_lm_<cell>_savedmodel` (strings in:
  `serving_default` gives `next_char_logits`, `generate` gives
  `generated_text`, `vocabulary` gives the `characters` of the logits) and
  `<out>/text_char_lm_<cell>_gates_savedmodel` (character ids in, with a
  `gates` signature).
* TensorBoard (`tensorboard --logdir runs`, Time Series tab): the group
  `gates.text_lstm` holds `0_heatmap` (input, forget and output gate of every
  unit over the probe's characters: look for units that switch at line
  breaks, indentation and quotes), the histograms and the means of each gate
  in the order of the equations; `epoch_loss` and `epoch_bits_per_char` for
  the `train` and `validation` runs.

The default size (two layers of 256 units, 2M characters, 10 epochs) takes
about half an hour on 2 CPU cores.

    python examples/text_char_lm.py --quick
    python examples/text_char_lm.py --cell coupled --corpus my.txt --epochs 20
"""

import math
import sys
import sysconfig
import time
from pathlib import Path

import _common  # first: picks the TensorFlow backend before Keras loads
import keras
import numpy as np
import tensorflow as tf
from keras import ops

PROG = "text_char_lm"
#: Id of characters absent from the training text; the vocabulary starts at 1.
OOV_ID = 0
#: Sampling temperatures of the generated samples (one sample each).
TEMPERATURES = (0.5, 0.8, 1.0)
#: Fraction of a `--corpus` file (its end) kept for validation.
VALIDATION_FRACTION = 0.1
#: `(train, validation)` character budgets of the default corpus.
STDLIB_BUDGET = {"full": (2_000_000, 200_000), "quick": (800_000, 50_000)}


"""
## Data
"""


def bits_per_char(y_true, y_pred):
    """Cross-entropy of the next-character logits in bits (base-2 log)."""
    loss = keras.losses.sparse_categorical_crossentropy(
        y_true, y_pred, from_logits=True
    )
    return loss / math.log(2.0)


def stdlib_corpus(train_budget, validation_budget, root=None):
    """Training and validation text from the standard library's `.py` files.

    Files are taken in sorted order; every tenth readable file goes to the
    validation text, the others to the training text, each up to its budget
    (the last file cut to fit), so the selection is the same on every run.

    Args:
        train_budget: Number of training characters.
        validation_budget: Number of validation characters.
        root: Directory to read; the standard library's by default.

    Returns:
        `(train_text, validation_text, description)`.
    """
    root = Path(root or sysconfig.get_paths()["stdlib"])
    train, validation = [], []
    budgets = {id(train): train_budget, id(validation): validation_budget}
    readable = 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        part = validation if readable % 10 == 9 else train
        readable += 1
        left = budgets[id(part)] - sum(map(len, part))
        if left > 0:
            part.append(text[:left])
    train_text, validation_text = "".join(train), "".join(validation)
    if not train_text or not validation_text:
        raise _common.ExampleError(
            f"found no readable .py files in {root}; pass --corpus FILE"
        )
    description = (
        f"the Python standard library's .py files in {root} "
        f"({len(train_text):,} training, {len(validation_text):,} validation "
        "characters from separate files)"
    )
    return train_text, validation_text, description


def file_corpus(path, min_chars):
    """Training and validation text from one UTF-8 file (its last tenth).

    Args:
        path: The `--corpus` file.
        min_chars: Fewest characters each part must hold.

    Returns:
        `(train_text, validation_text, description)`.

    Raises:
        ExampleError: If the file is missing, unreadable, empty, binary (not
            UTF-8, or holding NUL bytes) or too short.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise _common.ExampleError(f"cannot read --corpus {path!r}: {reason}") from None
    if not data.strip():
        raise _common.ExampleError(f"--corpus {path!r} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise _common.ExampleError(
            f"--corpus {path!r} is not UTF-8 text (it looks binary)"
        )
    split = int(len(text) * (1.0 - VALIDATION_FRACTION))
    train_text, validation_text = text[:split], text[split:]
    if min(len(train_text), len(validation_text)) < min_chars:
        raise _common.ExampleError(
            f"--corpus {path!r} holds {len(text)} characters; need at least "
            f"{math.ceil(min_chars / VALIDATION_FRACTION)} for --seq-len "
            f"{min_chars - 1} (a tenth of it is validation text)"
        )
    description = (
        f"{path} ({len(train_text):,} training, {len(validation_text):,} "
        "validation characters: its last tenth)"
    )
    return train_text, validation_text, description


class Vocabulary:
    """Characters of the training text, with id 0 for any other character."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.ids = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars) + 1

    def encode(self, text):
        return np.array([self.ids.get(c, OOV_ID) for c in text], dtype="int32")

    def decode(self, ids):
        return "".join(self.chars[i - 1] if i != OOV_ID else "\ufffd" for i in ids)


def make_sequences(ids, seq_len):
    """Cuts `ids` into non-overlapping `(inputs, next characters)` rows."""
    n = (len(ids) - 1) // seq_len
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1 : n * seq_len + 1].reshape(n, seq_len)
    return x, y


def unigram_bits_per_char(train_ids, validation_ids, vocab_size):
    """Validation bits per character of the training text's character counts.

    The baseline a model must beat: each character predicted with its
    frequency in the training text (add-one smoothed, so unseen ids count).
    """
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    log2_p = np.log2(counts / counts.sum())
    return float(-log2_p[validation_ids].mean())


"""
## Model
"""


def lstm_layer_names(layers):
    """`text_lstm` for one layer; `text_lstm_1`, `text_lstm_2`, ... for more."""
    if layers == 1:
        return ["text_lstm"]
    return [f"text_lstm_{i + 1}" for i in range(layers)]


def build_model(vocab_size, cell, units, layers, embedding_dim=32):
    """Embedding, `layers` LSTM variant layers, and next-character logits."""
    layer_class = _common.CELLS[cell]
    inputs = keras.Input((None,), dtype="int32", name="chars")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(inputs)
    for name in lstm_layer_names(layers):
        x = layer_class(units, return_sequences=True, name=name)(x)
    logits = keras.layers.Dense(vocab_size, name="next_char_logits")(x)
    return keras.Model(inputs, logits, name=f"char_lm_{cell}")


def generate(model, prompt_ids, length, temperatures, seed):
    """Samples `length` characters after the prompt, one row per temperature.

    Steps the model's cells one character at a time (carrying their states),
    so each new character costs one step, not a pass over the whole prefix.

    Args:
        model: A model from `build_model`.
        prompt_ids: Non-empty 1D array of character ids.
        length: Number of characters to sample.
        temperatures: One temperature per sample; logits are divided by it.
        seed: Seed of the sampling generator.

    Returns:
        An int array `(len(temperatures), length)` of sampled ids.
    """
    rng = np.random.default_rng(seed)
    embedding = model.get_layer("embedding")
    rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    dense = model.layers[-1]
    batch = len(temperatures)
    states = [rnn.cell.get_initial_state(batch) for rnn in rnns]
    scale = np.asarray(temperatures, dtype="float64")[:, None]

    def step(ids):
        x = embedding(ops.convert_to_tensor(ids[:, None].astype("int32")))[:, 0]
        for i, rnn in enumerate(rnns):
            x, states[i] = rnn.cell(x, states[i])
        return ops.convert_to_numpy(dense(x)).astype("float64")

    for char_id in prompt_ids:
        logits = step(np.full(batch, char_id))
    sampled = np.zeros((batch, length), dtype="int32")
    for t in range(length):
        z = logits / scale
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        sampled[:, t] = [rng.choice(p.shape[1], p=row) for row in p]
        logits = step(sampled[:, t])
    return sampled


"""
## Deployment: a SavedModel that takes text
"""


class TextServing(tf.Module):
    """The trained model with its vocabulary: strings in, no Python needed.

    Signatures (in a process with only TensorFlow):

    * `serving_default(text)`: `text`, a batch of strings `(batch,)`;
      returns `next_char_logits` `(batch, vocabulary size)`, the logits of
      the character after each text (the model's last output step).
    * `generate(prompt, num_chars, temperature)`: samples `num_chars`
      characters after the string `prompt`; returns `generated_text`, a
      string (without the prompt).
    * `vocabulary()`: returns `characters` `(vocabulary size,)`, the
      character of each logit (index 0, U+FFFD, stands for characters the
      training text did not hold).
    """

    def __init__(self, model, vocab):
        super().__init__()
        self.model = model
        self.characters = tf.constant(["\ufffd", *vocab.chars])
        self.vocab_size = len(vocab)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([ord(c) for c in vocab.chars], tf.int32),
                tf.range(1, len(vocab.chars) + 1, dtype=tf.int32),
            ),
            default_value=OOV_ID,
        )
        self.rnns = [
            layer for layer in model.layers if isinstance(layer, keras.layers.RNN)
        ]
        self.next_char = tf.function(
            self._next_char,
            input_signature=[tf.TensorSpec([None], tf.string, name="text")],
        )
        self.generate = tf.function(
            self._generate,
            input_signature=[
                tf.TensorSpec([], tf.string, name="prompt"),
                tf.TensorSpec([], tf.int32, name="num_chars"),
                tf.TensorSpec([], tf.float32, name="temperature"),
            ],
        )
        self.vocabulary = tf.function(self._vocabulary, input_signature=[])

    def signatures(self):
        """The signatures to save, by name."""
        return {
            "serving_default": self.next_char.get_concrete_function(),
            "generate": self.generate.get_concrete_function(),
            "vocabulary": self.vocabulary.get_concrete_function(),
        }

    def _encode(self, text):
        codes = tf.strings.unicode_decode(text, "UTF-8", errors="replace")
        if isinstance(codes, tf.RaggedTensor):
            return tf.ragged.map_flat_values(self.table.lookup, codes)
        return self.table.lookup(codes)

    def _next_char(self, text):
        ids = self._encode(text)
        lengths = ids.row_lengths()
        tf.debugging.assert_positive(
            lengths, message="next_char_logits: every text needs a character"
        )
        logits = self.model(ids.to_tensor(default_value=OOV_ID), training=False)
        return {"next_char_logits": tf.gather(logits, lengths - 1, batch_dims=1)}

    def _step(self, char_id, states):
        """One character through the model's cells: `(logits (vocab,), states)`."""
        x = self.model.get_layer("embedding")(tf.reshape(char_id, [1, 1]))[:, 0]
        new_states = []
        for rnn, state in zip(self.rnns, states, strict=True):
            x, state = rnn.cell(x, state, training=False)
            new_states.append(list(state))
        return self.model.layers[-1](x)[0], new_states

    def _generate(self, prompt, num_chars, temperature):
        ids = self._encode(prompt)
        tf.debugging.assert_positive(
            tf.size(ids), message="generate: `prompt` needs a character"
        )
        tf.debugging.assert_positive(
            temperature, message="generate: `temperature` must be > 0"
        )
        tf.debugging.assert_non_negative(
            num_chars, message="generate: `num_chars` must be >= 0"
        )
        states = [
            [tf.convert_to_tensor(s) for s in rnn.cell.get_initial_state(1)]
            for rnn in self.rnns
        ]
        logits = tf.zeros([self.vocab_size])

        def feed(t, logits, states):
            logits, states = self._step(ids[t], states)
            return t + 1, logits, states

        _, logits, states = tf.while_loop(
            lambda t, *_: t < tf.size(ids), feed, (0, logits, states)
        )

        def sample(t, logits, states, out):
            char_id = tf.random.categorical(logits[None] / temperature, 1)[0, 0]
            char_id = tf.cast(char_id, tf.int32)
            logits, states = self._step(char_id, states)
            return t + 1, logits, states, out.write(t, char_id)

        out = tf.TensorArray(tf.int32, size=num_chars)
        *_, out = tf.while_loop(
            lambda t, *_: t < num_chars, sample, (0, logits, states, out)
        )
        text = tf.strings.reduce_join(tf.gather(self.characters, out.stack()))
        return {"generated_text": text}

    def _vocabulary(self):
        return {"characters": self.characters}


"""
## Training and evaluation
"""


def parse_args(argv):
    parser = _common.make_parser(PROG, __doc__)
    _common.add_common_arguments(parser, units=256, epochs=10)
    parser.add_argument(
        "--corpus", help="UTF-8 text file (default: Python's standard library)"
    )
    parser.add_argument(
        "--layers", type=_common.positive_int, default=2, help="LSTM layers"
    )
    parser.add_argument(
        "--seq-len",
        type=_common.positive_int,
        default=100,
        help="characters per training sequence",
    )
    parser.add_argument(
        "--batch-size", type=_common.positive_int, default=64, help="batch size"
    )
    parser.add_argument(
        "--prompt",
        help="start of the generated samples (default: 'def ' for the standard "
        "library, the validation text's first 16 characters for --corpus)",
    )
    parser.add_argument(
        "--sample-length",
        type=_common.positive_int,
        default=240,
        help="characters per sample",
    )
    args = _common.parse_with_quick(
        parser,
        argv,
        {"units": 128, "layers": 1, "seq_len": 64, "batch_size": 128, "epochs": 6},
    )
    if args.prompt == "":
        parser.error("argument --prompt: expected at least one character")
    return args


def run(argv=None):
    """Trains, evaluates and exports; returns the run's `_common.Summary`.

    Raises:
        ExampleError: On bad input.
    """
    args = parse_args(argv)
    if args.corpus:
        train_text, val_text, description = file_corpus(args.corpus, args.seq_len + 1)
    else:
        budget = STDLIB_BUDGET["quick" if args.quick else "full"]
        train_text, val_text, description = stdlib_corpus(*budget)
    prompt = args.prompt or ("def " if not args.corpus else val_text[:16])
    out_dir = _common.prepare_out_dir(args.out)

    vocab = Vocabulary(train_text)
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    x_train, y_train = make_sequences(train_ids, args.seq_len)
    x_val, y_val = make_sequences(val_ids, args.seq_len)
    if len(x_val) == 0:
        raise _common.ExampleError(
            f"the validation text ({len(val_text)} characters) is shorter than "
            f"--seq-len {args.seq_len} + 1"
        )
    _common.print_section("Data")
    print(f"Corpus: {description}.")
    print(
        f"Vocabulary: {len(vocab)} ids ({len(vocab) - 1} characters + 1 for "
        f"unseen ones); {len(x_train)} training and {len(x_val)} validation "
        f"sequences of {args.seq_len} characters."
    )

    _common.print_section("Model")
    keras.utils.set_random_seed(args.seed)
    model = build_model(len(vocab), args.cell, args.units, args.layers)
    model.summary()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.005, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[bits_per_char],
    )
    log_dir = _common.run_log_dir(args.logdir, PROG, args.cell)
    probe = x_val[: min(16, len(x_val))]
    _common.print_section("Training")
    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        callbacks=_common.training_callbacks(
            log_dir, probe, time_labels=vocab.decode(probe[0])
        ),
        verbose=_common.progress_verbosity(),
    )
    train_seconds = time.perf_counter() - start

    _common.print_section("Evaluation")
    sampled = generate(
        model, vocab.encode(prompt), args.sample_length, TEMPERATURES, args.seed
    )
    for temperature, ids in zip(TEMPERATURES, sampled, strict=True):
        print(f"\n--- sample, temperature {temperature} ---")
        lines = (prompt + vocab.decode(ids)).splitlines()
        print("\n".join(line.rstrip() for line in lines))

    _, model_bpc = model.evaluate(x_val, y_val, batch_size=args.batch_size, verbose=0)
    unigram_bpc = unigram_bits_per_char(train_ids, y_val.ravel(), len(vocab))
    print("\nValidation bits per character (lower is better):")
    print(f"  {'unigram baseline':<22} {unigram_bpc:6.3f}")
    print(f"  {_common.LABELS[args.cell] + ' model':<22} {model_bpc:6.3f}")

    # The metric is a function of this script: compiled without it, the saved
    # model loads with only `import keras_lstm_variants`.
    model.compile(optimizer=model.optimizer, loss=model.loss)
    _common.print_section("Saving")
    files = _common.save_model(
        model, out_dir, f"{PROG}_{args.cell}", TextServing(model, vocab)
    )
    _common.print_section("What to look at in TensorBoard")
    groups = ", ".join(f"gates.{name}" for name in lstm_layer_names(args.layers))
    print(
        f"Time Series tab, group {groups}: 0_heatmap (the "
        "gates over the probe's characters), then each gate's histogram and "
        "mean in the order of the equations; epoch_bits_per_char for train "
        "and validation."
    )
    return _common.Summary(
        f"{PROG}: {_common.LABELS[args.cell]}, {args.epochs} epochs in "
        f"{train_seconds:.0f} s; "
        f"validation {model_bpc:.3f} bits/char vs unigram {unigram_bpc:.3f}",
        [*files, ("TensorBoard logs", log_dir)],
        args.logdir,
    )


def main(argv=None):
    """Runs the example; returns the exit status (2 on bad input)."""
    return _common.run_main(run, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
