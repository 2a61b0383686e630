"""Reading an input file (or stdin) no further than a limit, before anything parses it: one
implementation for the CLI's inputs (`troth.cli.common.read_input`) and the library's kept
files (`troth.node.trace_checks.read_kept`)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

__all__ = ["read_bounded"]


def read_bounded(
    path: str | Path, limit: int, what: str, *, stream: BinaryIO | None = None
) -> bytes:
    """The bytes of `what` at `path` (or of `stream`, named `path` in errors), read up to
    `limit`: a larger input (`/dev/zero`) fails at once, after reading limit + 1 bytes.

    Failures are `OSError` naming `what` and the file: the input was not read, so there is no
    verdict on it."""
    data: bytes
    try:
        if stream is not None:
            data = stream.read(limit + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(limit + 1)
    except OSError as exc:
        raise OSError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise OSError(f"{what} {path}: file is larger than {limit} bytes")
    return data
