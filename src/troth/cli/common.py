"""Options and helpers shared by commands."""

from __future__ import annotations

import os
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


def read_input_file(path: str) -> bytes:
    return Path(path).read_bytes()
