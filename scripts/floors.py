"""Prints the declared floors of the libraries the callback plugs into, pinned: ``transformers==5.24 ...``.

The floors are read from pyproject.toml's ``train`` extra, the one place they are declared, so that
the floors job (scripts/test_floors.sh) tests exactly what users are promised.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
FLOORED = ("transformers", "trl", "accelerate")


def pinned_floors() -> list[str]:
    """``name==floor`` for each of FLOORED, from its ``>=`` bound in the ``train`` extra."""
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    pins = {}
    for line in extras["train"]:
        requirement = Requirement(line)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if requirement.name in FLOORED and len(floors) == 1:
            pins[requirement.name] = f"{requirement.name}=={floors[0]}"
    missing = [name for name in FLOORED if name not in pins]
    if missing:
        sys.exit(f"pyproject.toml's train extra declares no single >= floor for {', '.join(missing)}")
    return [pins[name] for name in FLOORED]


if __name__ == "__main__":
    print(" ".join(pinned_floors()))
