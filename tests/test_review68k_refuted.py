"""Review 68k, docs: promises of README.md and docs/*.md about the CLI that held, each checked so
that it keeps holding.

- Every command line shown in an indented code block (docs/vault.md shows `troth node init`,
  `troth vault rekey`, `troth identity release-restored` so) parses with the CLI's own parser:
  tests/test_review56r_docs.py reads only fenced blocks and inline code.
- README.md: "Every command takes `--json`", and "a list command's result an array".
- README.md: exit 2 for "a name that does not exist", 3 for "a node not running".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.test_review56r_docs import parse
from troth.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def indented_command_lines() -> Iterator[tuple[str, str]]:
    """(document, line) of each `troth ...` line of an indented code block, continuations
    joined (docs/cli.md, generated from the commands themselves, left out)."""
    for path in DOCUMENTS:
        if path.name == "cli.md":
            continue
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # fenced: 56r's
        text = re.sub(r"\\\n\s*", " ", text)
        for match in re.finditer(r"^ {4,}(troth [^\n]*)", text, re.M):
            yield path.name, match.group(1)


def leaves(
    command: click.Command = cli, path: str = "troth"
) -> Iterator[tuple[str, click.Command]]:
    """Every command that runs (no group), with its path."""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from leaves(sub, f"{path} {name}")
    else:
        yield path, command


def test_every_command_line_of_an_indented_block_parses() -> None:
    lines = list(indented_command_lines())
    assert len(lines) >= 8
    for document, line in lines:
        parse(line.split("  # ", 1)[0])  # click.UsageError: an option or argument it lacks
        assert document


def test_every_command_takes_json() -> None:
    found = dict(leaves())
    assert len(found) > 60
    lacking = [p for p, c in found.items() if "--json" not in {o for x in c.params for o in x.opts}]
    assert lacking == []


@pytest.mark.parametrize(
    "args",
    [("identity", "list"), ("node", "list"), ("authority", "list"), ("policy", "show")],
)
def test_a_list_commands_json_result_is_an_array(args: tuple[str, ...]) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["identity", "create", "alice", "--json"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), list)


def test_a_name_that_does_not_exist_is_usage_and_a_node_not_running_config() -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["identity", "show", "nobody", "--json"])
    assert (missing.exit_code, json.loads(missing.stdout)["error"]) == (2, "NotFound")
    assert runner.invoke(cli, ["identity", "create", "alice", "--json"]).exit_code == 0
    stopped = runner.invoke(cli, ["channel", "list", "--json"])
    assert (stopped.exit_code, json.loads(stopped.stdout)["error"]) == (3, "ConfigError")
