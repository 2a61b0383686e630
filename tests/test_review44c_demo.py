"""Review 44c, demo: `troth demo` was the one command without `--json`, and the one whose
errors were not mapped to exit codes: a --home it cannot create (under a file) ended in a
ConfigError traceback. It takes --json now (the story's lines in one JSON object, the same
lines as the text) and its errors are typed, with their exit codes, like every command's.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner

from troth.cli.main import cli


def test_a_home_the_demo_cannot_create_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    home = str(tmp_path / "afile" / "demo")
    result = CliRunner().invoke(cli, ["demo", "--home", home, "--chapter", "1"])
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.exit_code == 3
    assert home in result.stderr
    refused = CliRunner().invoke(cli, ["demo", "--home", home, "--chapter", "1", "--json"])
    assert json.loads(refused.stdout)["error"] == "ConfigError"


def test_demo_json_is_one_document_with_the_storys_lines(tmp_path: Path) -> None:
    args = ["demo", "--chapter", "1", "--home"]
    text = CliRunner().invoke(cli, [*args, str(tmp_path / "text")], catch_exceptions=False)
    assert text.exit_code == 0
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "json"), "--json"])
    assert result.exit_code == 0, result.stdout
    document = json.loads(result.stdout)
    assert document["chapters"] == [1]
    assert len(document["lines"]) == len(text.stdout.splitlines())


def _leaves(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    if not isinstance(command, click.Group):
        return [(path, command)]
    ctx = click.Context(command)
    return [
        leaf
        for name in command.list_commands(ctx)
        for leaf in _leaves(command.get_command(ctx, name), f"{path} {name}")  # type: ignore[arg-type]
    ]


def test_every_command_takes_json() -> None:
    leaves = _leaves(cli, "troth")
    assert len(leaves) > 60
    without = [
        path
        for path, command in leaves
        if "--json" not in {opt for param in command.params for opt in param.opts}
    ]
    assert without == []
