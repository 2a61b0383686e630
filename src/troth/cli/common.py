"""Options and helpers shared by commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from troth.clock import SystemClock
from troth.node import DEFAULT_NODE, Node, open_node, troth_home

F = TypeVar("F", bound=Callable[..., Any])

CLOCK = SystemClock()


def node_option(func: F) -> F:
    return click.option(
        "--node",
        "node_name",
        default=lambda: os.environ.get("TROTH_NODE", DEFAULT_NODE),
        show_default="$TROTH_NODE or 'default'",
        help="The node whose vault and store to use.",
    )(func)


def home() -> Path:
    return troth_home()


def open_cli_node(name: str) -> Node:
    """Open a node; the default node is created (software vault) on first use."""
    return open_node(name, home=home(), create_default=True)


INPUT_FILE = click.Path(dir_okay=False, allow_dash=True)
"""The click type of an input file argument: a file path, or `-` for stdin."""


def read_input(path: str, limit: int, what: str) -> bytes:
    """The bytes of input file `path` (`-`: stdin), read up to `limit` before anything parses
    them: a larger input (`/dev/zero`) fails at once, after reading limit + 1 bytes.

    Failures are `OSError` (exit 4, I/O): the input was not read, so there is no verdict on it
    (exit 1 means "read, and invalid")."""
    data: bytes
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(limit + 1)
    except OSError as exc:
        raise OSError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise OSError(f"{what} {path}: file is larger than {limit} bytes")
    return data


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> int:
    """`90`, `30s`, `10m`, `1h`, `2d` -> seconds (ValueError otherwise)."""
    text = text.strip()
    number, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90, 30s, 10m, 1h, 2d)")
    return int(number) * _UNITS[unit]


def _to_seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def duration_option(*names: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option taking a duration (90, 30s, 10m, 1h, 2d), converted to seconds."""
    return click.option(*names, type=str, callback=_to_seconds, metavar="DURATION", **kwargs)


def write_output(path: str, data: bytes) -> None:
    Path(path).write_bytes(data)


def node_running(name: str) -> bool:
    """Whether node `name` runs as a daemon."""
    from troth.node.daemon import node_status  # asyncio: on use only

    return bool(node_status(home(), name)["running"])


def open_authority_node(name: str) -> Node:
    """The local node hosting authority NAME (the node has the authority's name)."""
    return open_node(name, home=home())
