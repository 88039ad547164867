"""Every ```python block of the README runs as pasted.

Each block runs on its own, in a fresh Python process (TensorFlow backend) in
an empty temporary directory, so a block that uses a name it does not define,
a file no block creates, or an input name its model does not have fails here.
A block also fails if it shows a Python warning (with Python's default filters,
as a user pasting it would see) or a traceback.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def python_blocks(text):
    """`[(line number, code)]` of every ```python block in `text`."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in FENCE.finditer(text)
    ]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    # The extraction itself: a block per fence, the fence lines left out.
    sample = "text\n```python\nx = 1\n```\n\n```sh\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(sample) == [(2, "x = 1\n"), (9, "y = 2\n")]
    assert len(BLOCKS) >= 7


@pytest.mark.parametrize(
    "code", [code for _, code in BLOCKS], ids=[f"line{n}" for n, _ in BLOCKS]
)
def test_block_runs_on_its_own(code, tmp_path):
    env = dict(
        os.environ,
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=str(ROOT),  # this checkout's package
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # TensorFlow's C++ start-up lines are not the block's; Python warnings are.
    python_lines = [
        line
        for line in result.stderr.splitlines()
        if not re.match(r"^(WARNING: All log messages|[IWE]\d{4} )", line)
    ]
    assert not [
        line for line in python_lines if re.search(r"Warning|Traceback", line)
    ], result.stderr[-4000:]
