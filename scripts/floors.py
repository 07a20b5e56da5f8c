"""Prints the declared floors of the libraries the callback plugs into, pinned: ``transformers==5.24 ...``.

The floors are read from liveparams' ``train`` extra, as installed from pyproject.toml (the one place
they are declared), so that the floors job (scripts/test_floors.sh) tests exactly what users are promised.
"""

from __future__ import annotations

import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

FLOORED = ("transformers", "trl", "accelerate")


def pinned_floors() -> list[str]:
    """``name==floor`` for each of FLOORED, from its ``>=`` bound in the ``train`` extra."""
    pins = {}
    for line in requires("liveparams") or []:
        requirement = Requirement(line)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        in_train = requirement.marker is not None and requirement.marker.evaluate({"extra": "train"})
        if in_train and requirement.name in FLOORED and len(floors) == 1:
            pins[requirement.name] = f"{requirement.name}=={floors[0]}"
    missing = [name for name in FLOORED if name not in pins]
    if missing:
        sys.exit(f"liveparams' train extra declares no single >= floor for {', '.join(missing)}")
    return [pins[name] for name in FLOORED]


if __name__ == "__main__":
    print(" ".join(pinned_floors()))
