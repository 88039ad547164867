"""tools/floor_constraints.py: setup.cfg's floors become exact pins, or an error."""

import configparser
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location(
    "floor_constraints", ROOT / "tools" / "floor_constraints.py"
)
floor_constraints = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(floor_constraints)


def _config(text):
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(text)
    return config


def test_pins_install_requires_and_the_named_extras_once_each():
    config = _config(
        """
[options]
install_requires =
    keras>=3.8
    numpy >= 1.26, <3

[options.extras_require]
test =
    tensorflow>=2.16.1
    numpy>=1.26
    pytest>=8; python_version >= "3.10"
docs =
    sphinx>=7
"""
    )
    assert floor_constraints.constraints(config, ["test"]) == [
        "keras==3.8",
        "numpy==1.26",
        "tensorflow==2.16.1",
        'pytest==8; python_version >= "3.10"',
    ]
    assert floor_constraints.constraints(config, []) == ["keras==3.8", "numpy==1.26"]


@pytest.mark.parametrize(
    "requirement", ["numpy", "numpy<3", "numpy==1.26", "numpy>=1.24,>=1.26"]
)
def test_a_requirement_without_exactly_one_floor_is_an_error(requirement):
    config = _config(f"[options]\ninstall_requires =\n    {requirement}\n")
    with pytest.raises(floor_constraints.FloorError, match="exactly one floor"):
        floor_constraints.constraints(config, [])


def test_two_different_floors_for_one_package_are_an_error():
    config = _config(
        """
[options]
install_requires =
    numpy>=1.26

[options.extras_require]
test =
    NumPy>=1.24
"""
    )
    with pytest.raises(floor_constraints.FloorError, match="disagrees"):
        floor_constraints.constraints(config, ["test"])


def test_an_unknown_extra_is_an_error():
    config = _config("[options]\ninstall_requires =\n    numpy>=1.26\n")
    with pytest.raises(floor_constraints.FloorError, match="no extra named 'tset'"):
        floor_constraints.constraints(config, ["tset"])


def test_the_projects_setup_cfg_declares_a_floor_for_every_tested_requirement():
    lines = floor_constraints.constraints(
        _config((ROOT / "setup.cfg").read_text()), ["test"]
    )
    names = [line.split("==")[0].lower() for line in lines]
    for name in ("keras", "numpy", "tensorflow", "tensorboard", "jax"):
        assert name in names
    assert all("==" in line and ">" not in line.split(";")[0] for line in lines)
