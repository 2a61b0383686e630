"""docs/cli.md, generated from the click definitions: every command's help as `troth ...
--help` prints it, at a fixed width. `tests/test_cli_reference.py` regenerates it and compares,
so the reference cannot drift from the code.

    python -m troth.cli.reference > docs/cli.md
"""

from __future__ import annotations

import sys

import click

__all__ = ["WIDTH", "reference"]

WIDTH = 100
"""The terminal width the reference is rendered at (stable whatever terminal generates it)."""

_HEADER = """\
# `troth` command reference

Generated from the click definitions by `python -m troth.cli.reference > docs/cli.md`; do not
edit (a test regenerates it and compares). Every command also takes `--help`.
"""


def _walk(command: click.Command, ctx: click.Context, out: list[str], depth: int) -> None:
    out.append(f"{'#' * depth} `{ctx.command_path}`\n")
    out.append("```text\n" + command.get_help(ctx).rstrip() + "\n```\n")
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                child = click.Context(sub, info_name=name, parent=ctx)
                _walk(sub, child, out, min(depth + 1, 6))


def reference(root: click.Command | None = None, prog: str = "troth") -> str:
    """The Markdown reference of `root` (default: the troth CLI)."""
    if root is None:
        from troth.cli.main import cli

        root = cli
    out = [_HEADER]
    with click.Context(root, info_name=prog, terminal_width=WIDTH, max_content_width=WIDTH) as ctx:
        _walk(root, ctx, out, 2)
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(reference())
