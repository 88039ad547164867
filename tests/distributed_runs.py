"""The processes of tests/test_distribution.py (run as a script, not collected).

Devices must be set up before TensorFlow or JAX starts, so each scenario runs
in a process of its own, which the tests start with the right environment:

    python tests/distributed_runs.py tf-train WORK    # 2 logical CPU devices
    python tests/distributed_runs.py tf-load WORK     # a fresh TensorFlow process
    python tests/distributed_runs.py jax-train WORK   # KERAS_BACKEND=jax, XLA_FLAGS
    python tests/distributed_runs.py jax-load WORK    # a fresh JAX process

`*-train` trains one small model holding every layer (on TensorFlow each
layer twice: on its fast path and on the generic loop), from the same initial
weights, for a few SGD steps: once on one device, once under the distribution
(`tf.distribute.MirroredStrategy`, `keras.distribution.DataParallel`). It
saves the weights before and after, the distributed model's outputs and gate
values, its `.keras` file and, on TensorFlow, its SavedModel from
`export_saved_model` and the `GateHistograms` logs of its training. `*-load`
reloads those files in a process that never built the model. Results are
`.npz` files and `info-<mode>.json` in WORK; the tests compare them.
"""

import json
import os
import sys
import time

VARIANTS = ("standard", "peephole", "coupled")
UNITS, TIME, FEATURES, BATCH, STEPS = 6, 7, 3, 8, 3
LEARNING_RATE = 0.5
PROBE = 4  # the probe batch of the gate values and the callback


def layer_names(backend):
    """Layer name: (variant, use_fast_path). JAX has no fast path."""
    if backend == "jax":
        return {v: (v, "auto") for v in VARIANTS}
    return {
        f"{v}_{path}": (v, flag)
        for v in VARIANTS
        for path, flag in (("fast", True), ("generic", False))
    }


def data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (BATCH, TIME, FEATURES)).astype("float32")
    y = np.stack([x.sum(axis=(1, 2)), x[:, -1, 0]], axis=-1).astype("float32")
    return x, y


def build(backend):
    """Every layer side by side on one input, their outputs into one Dense."""
    import keras

    import keras_lstm_variants as klv

    inputs = keras.Input((TIME, FEATURES), name="x")
    branches = []
    for name, (variant, use_fast_path) in layer_names(backend).items():
        kwargs = {"name": name, "use_fast_path": use_fast_path}
        if variant == "standard":
            layer = klv.StandardLSTM(UNITS, **kwargs)
        elif variant == "peephole":
            layer = klv.PeepholeLSTM(UNITS, **kwargs)
        else:
            gates = ("forget", "output")
            layer = klv.CoupledLSTM(UNITS, peephole_gates=gates, **kwargs)
        branches.append(layer(inputs))
    merged = keras.layers.Concatenate(name="merged")(branches)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(merged))


def initial_weights(model):
    import numpy as np

    rng = np.random.default_rng(1)
    return [
        (0.5 * rng.standard_normal(w.shape)).astype(w.dtype)
        for w in model.get_weights()
    ]


def train(model, weights, callbacks=()):
    import keras

    x, y = data()
    model.set_weights(weights)
    model.compile(keras.optimizers.SGD(LEARNING_RATE), "mse")
    # One batch per epoch: STEPS optimizer steps, the callback after each.
    model.fit(
        x, y, batch_size=BATCH, epochs=STEPS, shuffle=False, verbose=0,
        callbacks=list(callbacks),
    )


def layer_weights(model):
    """`{variable path: array}`, for example `"peephole_fast/cell/kernel"`."""
    return {v.path: w for v, w in zip(model.weights, model.get_weights(), strict=True)}


def gate_values(model, x):
    import keras_lstm_variants as klv

    return {
        f"{layer}/{gate}": values
        for layer, gates in klv.gate_activations(model, x).items()
        for gate, values in gates.items()
    }


def save(work, name, arrays):
    import numpy as np

    np.savez(os.path.join(work, name + ".npz"), **arrays)


_LAST_LAP = []


def lap(label):
    """Prints the wall and CPU seconds since the last call to stderr."""
    now = time.perf_counter(), time.process_time()
    if _LAST_LAP:
        wall, cpu = (a - b for a, b in zip(now, _LAST_LAP, strict=True))
        print(f"{label}: {wall:.1f} s ({cpu:.1f} s CPU)", file=sys.stderr)
    _LAST_LAP[:] = now


def tf_train(work):
    import tensorflow as tf

    # Before anything runs a TensorFlow op: one CPU as two logical devices.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

    import keras_lstm_variants as klv

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x, _ = data()
    lap("start")
    single = build("tensorflow")
    weights = initial_weights(single)
    save(work, "initial", layer_weights(single))
    train(single, weights)
    save(work, "single", layer_weights(single))
    lap("single-device fit")

    with strategy.scope():
        model = build("tensorflow")
        callback = klv.GateHistograms(
            x[:PROBE], os.path.join(work, "logs"), every_n_epochs=1
        )
        train(model, weights, [callback])
    lap("distributed fit")
    save(work, "distributed", layer_weights(model))
    save(
        work,
        "outputs",
        {
            "predict": model.predict(x, verbose=0),
            "single_predict": single.predict(x, verbose=0),
            **gate_values(model, x[:PROBE]),
        },
    )
    lap("predict, gates")
    model.save(os.path.join(work, "model.keras"))
    klv.export_saved_model(model, os.path.join(work, "saved_model"))
    lap("save, export")
    return {
        "replicas": strategy.num_replicas_in_sync,
        "jit_compile": [single.jit_compile, model.jit_compile],
        "devices": [d.name for d in tf.config.list_logical_devices("CPU")],
        "variables": {v.path: type(v.value).__name__ for v in model.weights},
        "fallback": {
            name: model.get_layer(name).fast_path_fallback_reason()
            for name in layer_names("tensorflow")
        },
    }


def tf_load(work):
    import keras
    import tensorflow as tf

    import keras_lstm_variants  # noqa: F401  (registers the classes)

    x, _ = data()
    model = keras.saving.load_model(os.path.join(work, "model.keras"))
    loaded = tf.saved_model.load(os.path.join(work, "saved_model"))
    serve = loaded.signatures["serving_default"]
    gates = loaded.signatures["gates"](x=tf.constant(x[:PROBE]))
    save(
        work,
        "reloaded",
        {
            "keras": model.predict(x, verbose=0),
            "serving_default": serve(x=tf.constant(x))["output_0"].numpy(),
            **{f"gates/{k}": v.numpy() for k, v in gates.items()},
        },
    )
    return {}


def jax_train(work):
    import jax
    import keras

    x, _ = data()
    devices = keras.distribution.list_devices("cpu")
    distribution = keras.distribution.DataParallel(devices=devices)
    lap("start")
    single = build("jax")
    weights = initial_weights(single)
    save(work, "initial", layer_weights(single))
    train(single, weights)
    save(work, "single", layer_weights(single))
    single_gates = gate_values(single, x[:PROBE])
    lap("single-device fit")

    with distribution.scope():
        model = build("jax")
        train(model, weights)
        lap("distributed fit")
        outputs = {
            "predict": model.predict(x, verbose=0),
            **gate_values(model, x[:PROBE]),
        }
    save(work, "distributed", layer_weights(model))
    save(work, "outputs", outputs)
    save(work, "single_gates", single_gates)
    model.save(os.path.join(work, "model.keras"))
    lap("predict, gates, save")
    return {
        "devices": [str(d) for d in jax.devices()],
        "jit_compile": [single.jit_compile, model.jit_compile],
        "batch_axes": list(distribution.get_data_layout((BATCH, TIME)).axes),
        "shardings": {
            v.path: [str(v.value.sharding), len(v.value.sharding.device_set)]
            for v in model.weights
        },
        "fallback": {
            name: model.get_layer(name).fast_path_fallback_reason()
            for name in layer_names("jax")
        },
    }


def jax_load(work):
    import keras

    import keras_lstm_variants  # noqa: F401  (registers the classes)

    x, _ = data()
    model = keras.saving.load_model(os.path.join(work, "model.keras"))
    save(work, "reloaded", {"keras": model.predict(x, verbose=0)})
    return {}


def main(mode, work):
    info = {
        "tf-train": tf_train,
        "tf-load": tf_load,
        "jax-train": jax_train,
        "jax-load": jax_load,
    }[mode](work)
    # Only now: the devices had to be set up before TensorFlow started.
    import keras

    import keras_lstm_variants as klv

    info.update(
        backend=keras.backend.backend(),
        package=os.path.dirname(os.path.abspath(klv.__file__)),
        cpu_seconds=time.process_time(),
    )
    with open(os.path.join(work, f"info-{mode}.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
