"""Review 57p: attacks on this session's newest code (reviews 57j and 57k) that did not work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner

from troth.cli.main import cli, main
from troth.cli.output import Reporter


def _main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["troth", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    return code if isinstance(code, int) else 1


def test_a_result_shown_before_leaves_a_later_bug_its_json_error(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review 57k's process-level "result shown" flag (cli 2): a command run in the same
    process before (by `main`, or by `cli` through CliRunner, which `main` does not wrap) left
    it set; a later `main` whose command fails with a bug before any result still prints its
    error object on stdout with --json, exit 70 (not stderr only, the script reading nothing)."""
    assert _main(monkeypatch, "identity", "create", "a", "--json") == 0
    assert json.loads(capsys.readouterr().out)["name"] == "a"
    runner = CliRunner().invoke(cli, ["identity", "list", "--json"])
    assert runner.exit_code == 0, runner.output

    def bug(self: Reporter, *args: Any) -> NoReturn:
        raise RuntimeError("injected: a bug before the result")

    monkeypatch.setattr(Reporter, "result", bug)
    assert _main(monkeypatch, "identity", "create", "b", "--json") == 70
    out, _ = capsys.readouterr()
    assert json.loads(out)["error"] == "InternalError"
