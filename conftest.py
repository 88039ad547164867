"""Set-up shared by the tests and the docstring examples (`--doctest-modules`)."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_lstm_variants  # noqa: E402


@pytest.fixture(autouse=True)
def _docstring_examples(request, doctest_namespace, tmp_path, monkeypatch):
    """Docstring examples see `np`, `keras` and the package's public names, as
    their module's own code does, and write their files into a temporary
    directory."""
    doctest_namespace.update(
        {"np": np, "keras": keras, "klv": keras_lstm_variants},
    )
    public = keras_lstm_variants.__all__
    doctest_namespace.update({n: getattr(keras_lstm_variants, n) for n in public})
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.chdir(tmp_path)
        keras.utils.clear_session()
