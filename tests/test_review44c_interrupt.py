"""Review 44c, interrupt: Ctrl-C during a command exited 1, the code the README gives "invalid
or denied" (`troth credential verify ... || echo refused` read an interrupted verification as
a refusal), and with --json printed nothing (a script parsing stdout got no document). It
exits 130 (128 + SIGINT, the shell's code for it) now, with --json one error object.
"""

from __future__ import annotations

import json
from typing import NoReturn

import pytest
from click.testing import CliRunner

from troth.cli import node_cmds
from troth.cli.main import cli


def _interrupted(*args: object, **kwargs: object) -> NoReturn:
    raise KeyboardInterrupt


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_exits_130_with_one_json_document(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    monkeypatch.setattr(node_cmds, "list_nodes", _interrupted)
    result = CliRunner().invoke(cli, ["node", "list", *(["--json"] if as_json else [])])
    assert result.exit_code == 130, (result.stdout, result.stderr)
    if as_json:
        refused = json.loads(result.stdout)
        assert refused["exit_code"] == 130
        assert refused["error"] == "KeyboardInterrupt"
    else:
        assert result.stdout == ""
        assert "interrupted" in result.stderr
