"""The module search path of the Python children troth starts (the node daemon, the Cedar
validation child, the benchmarks' peers): never the working directory.

They run with `-P`, which leaves out the entry `-m`, `-c` and a script put first (review 53f,
node home 4), but Python reads an empty entry of PYTHONPATH (a leading or trailing `:`, `::`)
as the working directory too, and a module planted there (/tmp, a shared checkout) ran in the
child: in the daemon, which holds the vault key and the PIN (review 53q, import path 1)."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["child_environment", "child_pythonpath"]


def child_pythonpath(value: str) -> str:
    """PYTHONPATH `value` without its empty entries, its relative ones made absolute against
    this process's working directory (where Python, started here, would have read them), so
    the child finds the same modules from any directory and none in its own."""
    return os.pathsep.join(os.path.abspath(entry) for entry in value.split(os.pathsep) if entry)


def child_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environment` whose PYTHONPATH is `child_pythonpath`'s (left out when
    nothing is left of it)."""
    child = dict(environment)
    value = child.pop("PYTHONPATH", None)
    if value is not None and child_pythonpath(value):
        child["PYTHONPATH"] = child_pythonpath(value)
    return child
