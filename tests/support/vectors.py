"""Writing golden vector files: what every tests/vectors/*/generate.py prints."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_vectors(about: str, vectors: dict[str, Any]) -> None:
    """Print {"about": ..., "vectors": ...} as the vector file's JSON on stdout."""
    json.dump({"about": about, "vectors": vectors}, sys.stdout, indent=2)
    sys.stdout.write("\n")
