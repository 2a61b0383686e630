"""docs/cli.md is generated from the click definitions (it cannot drift), every command and
option has help, every group an example, and each option name has one meaning."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import click

from troth.cli.main import cli
from troth.cli.reference import reference

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def commands(
    command: click.Command = cli, path: str = "troth"
) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from commands(sub, f"{path} {name}")


def test_docs_cli_md_is_the_generated_reference() -> None:
    assert DOCS.read_text() == reference(), (
        "docs/cli.md is stale: python -m troth.cli.reference > docs/cli.md"
    )


def test_every_command_and_option_has_help_and_every_group_an_example() -> None:
    for path, command in commands():
        assert command.help, path
        if isinstance(command, click.Group) or path.count(" ") == 1:
            assert "Example:" in (command.epilog or ""), path
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{path} {param.opts[0]}"


def test_each_option_name_has_one_meaning() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for _, command in commands():
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    meanings[opt].add(param.metavar or param.type.name)
    several = {opt: sorted(kinds) for opt, kinds in meanings.items() if len(kinds) > 1}
    assert several == {}
    assert meanings["--as"] == {"IDENTITY"}
    assert meanings["--node"] == {"NODE"}
    assert meanings["--authority"] == {"AUTHORITY"}
    assert meanings["--trust"] == {"AUTHORITY"}
    assert meanings["--to"] == {"IDENTITY"}
    assert "--from" not in meanings
    assert "--by" not in meanings
    assert "--identity" not in meanings
