"""The import path: no private name that can break it, no TensorFlow where not
needed, imports one way (issue 10.9 and the structure issue)."""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_lstm_variants"


def _run(script, backend):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_survives_the_private_keras_names_moving():
    # Keras is loaded first (it needs its own modules), then the private
    # modules the package may touch disappear: the package still imports and
    # its layers run; only dropout, which needs Keras's mixin, says so.
    out = _run(
        """
        import sys
        import keras
        import numpy as np
        for name in ("keras.src.layers.rnn.dropout_rnn_cell",
                     "keras.src.export.export_utils"):
            sys.modules[name] = None
        import keras_lstm_variants as klv

        x = np.ones((2, 4, 5), "float32")
        assert klv.PeepholeLSTM(3)(x).shape == (2, 3)
        try:
            klv.StandardLSTMCell(3, dropout=0.5)
        except NotImplementedError as error:
            assert "dropout" in str(error), error
        else:
            raise AssertionError("dropout without Keras's mixin was accepted")
        print("OK")
        """,
        "tensorflow",
    )
    assert "OK" in out


def test_import_on_jax_does_not_load_tensorflow():
    pytest.importorskip("jax")
    out = _run(
        """
        import sys
        import keras_lstm_variants  # noqa: F401
        print("tensorflow" in sys.modules)
        """,
        "jax",
    )
    assert out.strip().endswith("False")


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node, node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, None


def test_no_module_reaches_into_another_modules_private_names():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    for path in PACKAGE.glob("*.py"):
        for _, module, name in _imports(ast.parse(path.read_text())):
            if module.startswith("keras_lstm_variants") and name:
                private = name.startswith("_") and name not in modules
                assert not private, f"{path.name} imports {module}.{name}"


def test_private_keras_and_tensorflow_names_are_guarded():
    # Each private import sits in a try block (or inside a function that
    # only TensorFlow-only features call), so the package import survives.
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        guarded = {
            id(n)
            for t in ast.walk(tree)
            if isinstance(t, ast.Try)
            for n in ast.walk(t)
        }
        for node, module, _ in _imports(tree):
            if module.startswith(("keras.src", "tensorflow.python")):
                assert id(node) in guarded, f"{path.name}: unguarded {module}"
