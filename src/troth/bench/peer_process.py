"""A benchmark peer's server in a process of its own (as a troth node is): started with our
interpreter, it prints its port once listening and stops when its standard input closes."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from typing import Final

from troth.child_path import child_environment

__all__ = ["serving"]

_STOP_TIMEOUT: Final = 15.0


@contextlib.contextmanager
def serving(command: list[str], what: str) -> Iterator[int]:
    """Run `command` (a server printing its port); yield the port, stop it on exit."""
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_environment(os.environ),  # not the cwd (review 53q, import path 1)
    ) as server:
        try:
            if server.stdout is None:
                raise ConnectionError(f"the {what} has no output pipe")
            line = server.stdout.readline()
            if not line.strip().isdigit():
                raise ConnectionError(f"the {what} did not start: {line!r}")
            yield int(line)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
