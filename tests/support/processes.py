"""Running what may kill its process (a native stack overflow in cedarpy) in a child process."""

from __future__ import annotations

import subprocess
import sys


def survives(program: str, *args: str, timeout: float = 300) -> str:
    """Run Python `program` (with `args`) in a child process; its standard output. Fails the
    test when the child did not exit 0 (a SIGSEGV shows as -11)."""
    child = subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=timeout
    )
    if child.returncode != 0:
        raise AssertionError(
            f"the child exited {child.returncode}: {child.stdout[-200:]} {child.stderr[-500:]}"
        )
    return child.stdout
