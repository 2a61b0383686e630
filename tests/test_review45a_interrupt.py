"""Review 45a, interrupt 1: Ctrl-C while click was still parsing the command line (the root's
options, the subcommand's, or importing the subcommand's module, which `troth.cli.main` does
when it is first looked up) exited 1 with click's "Aborted!", and with --json printed nothing;
inside a command it exits 130 (review 44c). It exits 130 there too now, with --json one error
object, as inside a command."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, NoReturn, cast

import click
import pytest
from click.testing import CliRunner

from troth.cli.main import cli


def _interrupted(*args: object, **kwargs: object) -> NoReturn:
    raise KeyboardInterrupt


def _check(result: Any, as_json: bool) -> None:
    assert result.exit_code == 130, (result.stdout, result.stderr)
    if as_json:
        refused = json.loads(result.stdout)
        assert (refused["error"], refused["exit_code"]) == ("KeyboardInterrupt", 130)
        assert result.stderr == ""
    else:
        assert result.stdout == ""
        assert "interrupted" in result.stderr
        assert "Aborted" not in result.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_while_parsing_the_arguments_exits_130(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    monkeypatch.setattr(click.Command, "parse_args", _interrupted)
    monkeypatch.setattr(click.Group, "parse_args", _interrupted)
    result = CliRunner().invoke(cli, ["node", "list", *(["--json"] if as_json else [])])
    _check(result, as_json)


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_while_importing_the_command_exits_130(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    commands = cast(dict[str, click.Command], cli.commands)
    loaded = dict.pop(commands, "bench", None)  # not imported yet: `_Commands._load` imports it
    monkeypatch.setattr("troth.cli.main.importlib", SimpleNamespace(import_module=_interrupted))
    try:
        result = CliRunner().invoke(cli, ["bench", *(["--json"] if as_json else [])])
    finally:
        if loaded is not None:
            dict.__setitem__(commands, "bench", loaded)
    _check(result, as_json)


def test_a_plain_abort_still_exits_1() -> None:
    @cli.command("abort-test")
    def abort_test() -> None:
        raise click.Abort

    try:
        result = CliRunner().invoke(cli, ["abort-test"])
    finally:
        del cli.commands["abort-test"]
    assert result.exit_code == 1
