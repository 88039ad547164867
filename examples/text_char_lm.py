"""Character-level language model on Python's own source code, with gate logging.

Trains an Embedding -> LSTM variant(s) -> Dense model to predict the next
character. By default the text is the Python standard library's own `.py`
files (found through `sysconfig`, so no download): a fixed, sorted selection up
to a size budget, with every tenth file held out for validation, so validation
text comes from files never trained on. `--corpus FILE` trains on any UTF-8
text file instead (its last tenth is the validation text).

Logs loss and bits per character (`keras.callbacks.TensorBoard`) and the gate
histograms (`keras_lstm_variants.GateHistograms`) to one log directory per run;
then prints generated samples and the validation bits per character beside a
unigram baseline, saves the `.keras` model and exports a SavedModel.

On 2 CPU cores, `--quick` (one layer of 128 units, 800k characters, 6 epochs)
takes about a minute; the default size (two layers of 256 units, 2M
characters, 10 epochs) about half an hour.

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


@keras.saving.register_keras_serializable(package="examples")
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


def build_model(vocab_size, cell, units, layers, embedding_dim=32):
    """Embedding, `layers` LSTM variant layers, and next-character logits."""
    layer_class = _common.CELLS[cell]
    inputs = keras.Input((None,), dtype="int32", name="chars")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(inputs)
    for i in range(layers):
        x = layer_class(units, return_sequences=True, name=f"{cell}_lstm_{i + 1}")(x)
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


def parse_args(argv):
    parser = _common.make_parser(PROG, __doc__)
    _common.add_common_arguments(parser, units=256, epochs=10)
    parser.add_argument(
        "--corpus", help="UTF-8 text file (default: Python's standard library)"
    )
    parser.add_argument("--layers", type=_common.positive_int, default=2)
    parser.add_argument("--seq-len", type=_common.positive_int, default=100)
    parser.add_argument("--batch-size", type=_common.positive_int, default=64)
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
    print(f"Corpus: {description}.")
    print(
        f"Vocabulary: {len(vocab)} ids ({len(vocab) - 1} characters + 1 for "
        f"unseen ones); {len(x_train)} training and {len(x_val)} validation "
        f"sequences of {args.seq_len} characters."
    )

    keras.utils.set_random_seed(args.seed)
    model = build_model(len(vocab), args.cell, args.units, args.layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.005, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[bits_per_char],
    )
    log_dir = _common.run_log_dir(args.logdir, PROG, args.cell)
    probe = x_val[: min(16, len(x_val))]
    print(f"Model: {args.layers} x {args.cell} LSTM, {model.count_params():,} weights.")
    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        callbacks=_common.training_callbacks(log_dir, probe),
        verbose=_common.progress_verbosity(),
    )
    train_seconds = time.perf_counter() - start

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
    print(f"  {args.cell + ' LSTM model':<22} {model_bpc:6.3f}")

    model_path, export_path = _common.save_model(
        model, out_dir, f"{PROG}_{args.cell}"
    )
    return _common.Summary(
        f"{PROG}: {args.cell} LSTM, {args.epochs} epochs in {train_seconds:.0f} s; "
        f"validation {model_bpc:.3f} bits/char vs unigram {unigram_bpc:.3f}",
        [
            ("Keras model", model_path),
            ("SavedModel", export_path),
            ("TensorBoard logs", log_dir),
        ],
        args.logdir,
    )


def main(argv=None):
    """Runs the example; returns the exit status (2 on bad input)."""
    return _common.run_main(run, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
