"""Writes the `.keras` files of version 0.1.0 that the tests keep loading.

Run once, with version 0.1.0 of the package (commit 433b4d8) first on the
path, from the repository root:

    python tests/data/make_v0_1_0_files.py   # with 0.1.0 imported first

(An editable install of a newer version shadows `PYTHONPATH`; remove its
finder from `sys.meta_path` first.)

For every cell and layer configuration of 0.1.0 it saves one model holding
the layer (with its non-default options) and a `keras.layers.RNN` over the
cell, with random weights, plus a fixed input and the model's outputs, all
in `tests/data/v0_1_0/`. `tests/test_serialization.py` loads them with the
current package and compares the outputs.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm_variants as klv  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v0_1_0")

CONFIGS = {
    "standard": [()],
    "peephole": [
        (),
        ("input",),
        ("forget",),
        ("output",),
        ("input", "forget"),
        ("input", "output"),
        ("forget", "output"),
        ("input", "forget", "output"),
    ],
    "coupled": [(), ("forget",), ("output",), ("forget", "output")],
}
CLASSES = {
    "standard": (klv.StandardLSTM, klv.StandardLSTMCell),
    "peephole": (klv.PeepholeLSTM, klv.PeepholeLSTMCell),
    "coupled": (klv.CoupledLSTM, klv.CoupledLSTMCell),
}


def main():
    os.makedirs(HERE, exist_ok=True)
    rng = np.random.default_rng(2026)
    x = rng.uniform(-1, 1, (3, 6, 4)).astype("float32")
    np.save(os.path.join(HERE, "inputs.npy"), x)
    index = {}
    for variant, subsets in CONFIGS.items():
        layer_class, cell_class = CLASSES[variant]
        for gates in subsets:
            name = f"{variant}-{'+'.join(gates) or 'none'}"
            options = {} if variant == "standard" else {"peephole_gates": gates}
            inputs = keras.Input((None, 4))
            a = layer_class(
                5,
                return_sequences=True,
                activation="relu",
                recurrent_dropout=0.1,
                name="layer",
                **options,
            )(inputs)
            b = keras.layers.RNN(
                cell_class(3, use_bias=False, **options), name="rnn"
            )(a)
            model = keras.Model(inputs, [a, b])
            model.set_weights(
                [
                    0.5 * rng.standard_normal(w.shape).astype("float32")
                    for w in model.get_weights()
                ]
            )
            model.save(os.path.join(HERE, f"{name}.keras"))
            outputs = [keras.ops.convert_to_numpy(y) for y in model(x)]
            np.savez(os.path.join(HERE, f"{name}-outputs.npz"), *outputs)
            index[name] = {"variant": variant, "peephole_gates": list(gates)}
    with open(os.path.join(HERE, "index.json"), "w") as f:
        json.dump(
            {"version": klv.__version__, "keras": keras.__version__, "files": index},
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
