"""Writes a pip constraints file that pins each declared floor of setup.cfg.

The floors live in one place, setup.cfg: every requirement of
`install_requires` and of the extras named on the command line must declare
its lowest supported version with `>=`, and this script turns each into an
exact `==` pin, so that `make test-floors` installs precisely those versions.

    python tools/floor_constraints.py --extras test > constraints.txt

A requirement without a `>=` floor, or one package declared with two
different floors, is an error (exit status 1), not a guess.
"""

import argparse
import configparser
import pathlib
import re
import sys

SETUP_CFG = pathlib.Path(__file__).resolve().parent.parent / "setup.cfg"

# A name, optional [extras], then the version specifiers, then an optional
# environment marker after ";".
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r"(?P<specifiers>[^;]*?)\s*(?:;\s*(?P<marker>.+))?$"
)


class FloorError(ValueError):
    """A requirement in setup.cfg declares no usable floor."""


def _lines(value):
    return [line.strip() for line in value.splitlines() if line.strip()]


def requirements(config, extras):
    """(section, requirement) pairs: install_requires, then each extra's."""
    pairs = [
        ("install_requires", line)
        for line in _lines(config.get("options", "install_requires", fallback=""))
    ]
    declared = (
        config["options.extras_require"]
        if config.has_section("options.extras_require")
        else {}
    )
    for extra in extras:
        if extra not in declared:
            raise FloorError(f"setup.cfg declares no extra named {extra!r}")
        pairs += [(f"extra {extra!r}", line) for line in _lines(declared[extra])]
    return pairs


def floor_pin(section, requirement):
    """('name', 'name==floor[; marker]') for one requirement line."""
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise FloorError(f"{section}: cannot read requirement {requirement!r}")
    name = match["name"]
    floors = [
        spec.strip()[2:].strip()
        for spec in match["specifiers"].split(",")
        if spec.strip().startswith(">=")
    ]
    if len(floors) != 1:
        raise FloorError(
            f"{section}: {requirement!r} must declare exactly one floor with '>='"
        )
    pin = f"{name}=={floors[0]}"
    if match["marker"]:
        pin += f"; {match['marker']}"
    return re.sub(r"[-_.]+", "-", name).lower(), pin


def constraints(config, extras):
    """The constraint lines, one per package, in the order first declared."""
    pins = {}
    for section, requirement in requirements(config, extras):
        key, pin = floor_pin(section, requirement)
        if key in pins and pins[key] != pin:
            raise FloorError(
                f"{section}: {pin!r} disagrees with the floor declared "
                f"elsewhere, {pins[key]!r}"
            )
        pins.setdefault(key, pin)
    return list(pins.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--extras",
        default="",
        help="comma-separated extras whose floors to pin as well, e.g. test",
    )
    parser.add_argument("--setup-cfg", default=str(SETUP_CFG))
    args = parser.parse_args(argv)
    config = configparser.ConfigParser(interpolation=None)
    if not config.read(args.setup_cfg):
        parser.error(f"cannot read {args.setup_cfg}")
    extras = [extra.strip() for extra in args.extras.split(",") if extra.strip()]
    try:
        lines = constraints(config, extras)
    except FloorError as error:
        print(f"floor_constraints: {error}", file=sys.stderr)
        return 1
    print(f"# The floors that {pathlib.Path(args.setup_cfg).name} declares, pinned.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
