"""Serving a SavedModel in a fresh process that cannot import this package."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

SERVER = textwrap.dedent(
    """
    import json
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "keras_lstm_variants":
                raise ImportError("keras_lstm_variants is blocked in this process")

    sys.meta_path.insert(0, Blocker())
    import numpy as np
    import tensorflow as tf

    work = sys.argv[1]
    plan = json.load(open(work + "/plan.json"))
    feeds = np.load(work + "/feeds.npz")
    loaded = tf.saved_model.load(plan["path"])
    results = {}
    for signature in plan["signatures"]:
        out = loaded.signatures[signature](
            **{k: tf.constant(feeds[k]) for k in feeds.files}
        )
        results.update({f"{signature}/{k}": v.numpy() for k, v in out.items()})
    modules = [m for m in sys.modules if m.split(".")[0] == "keras_lstm_variants"]
    np.savez(work + "/results.npz", **results)
    print("OK", len(modules))
    """
)


def serve_without_package(path, feeds, work, signatures=("serving_default",)):
    """Calls `signatures` of the SavedModel at `path` with `feeds` (`{input
    key: array}`) in a fresh TensorFlow process where `import
    keras_lstm_variants` fails; returns `{"<signature>/<output key>": array}`."""
    np.savez(os.path.join(work, "feeds.npz"), **feeds)
    with open(os.path.join(work, "plan.json"), "w") as f:
        json.dump({"path": str(path), "signatures": list(signatures)}, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", SERVER, str(work)],
        capture_output=True, text=True, env=env, cwd=str(work), timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split() == ["OK", "0"], result.stdout
    return dict(np.load(os.path.join(work, "results.npz")))
