"""Review 57d: the CLI as a security engineer uses it, with --json: one document on stdout, on
success and on failure, whatever stops the command and wherever the home is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from tests.support.cli import run_json
from troth.cli.main import cli
from troth.errors import ConfigError
from troth.node import init_node

_real_echo = click.echo


def _cut_short(limit: int) -> Any:
    """A click.echo whose first write of more than `limit` characters writes only that many,
    then raises KeyboardInterrupt: Ctrl-C while the result goes to a reader slow to take it
    (a pager, a full pipe)."""
    state = {"cut": False}

    def echo(message: Any = None, **kwargs: Any) -> None:
        if not state["cut"] and isinstance(message, str) and len(message) > limit:
            state["cut"] = True
            _real_echo(message[:limit], nl=False)
            raise KeyboardInterrupt
        _real_echo(message, **kwargs)

    return echo


def test_ctrl_c_while_the_result_is_written_adds_no_second_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 57d, cli 1. Ctrl-C while a --json result was on its way out (`identity create
    --count 3000 --json | slow-reader`, seen in a real process: the pipe full, the write
    blocked) printed the error object after the part of the result written: stdout held a
    cut document and a second one, no JSON at all, and exit 130. Now the error goes to stderr
    once any of the result is out: stdout holds at most the one document."""
    for name in ("a", "b", "c"):
        run_json("identity", "create", name)
    monkeypatch.setattr(click, "echo", _cut_short(40))
    result = CliRunner().invoke(cli, ["identity", "list", "--json"], catch_exceptions=False)
    assert result.exit_code == 130
    assert "KeyboardInterrupt" not in result.stdout, result.stdout
    assert "interrupted" in result.stderr


def _shared_home(troth_home: Path, owner: int) -> Path:
    """$TROTH_HOME as a shared directory (mode 1777, as /tmp) of user `owner`."""
    troth_home.mkdir()
    os.chmod(troth_home, 0o1777)  # noqa: S103 - the shared directory under test
    os.chown(troth_home, owner, -1)
    return troth_home


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param(
            65534,
            id="another-user",
            marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user: root"),
        ),
        pytest.param(os.geteuid(), id="own-like-tmp"),
    ],
)
def test_a_home_others_own_or_write_in_is_refused_not_taken(troth_home: Path, owner: int) -> None:
    """Review 57d, cli 2. $TROTH_HOME naming a directory of another user, or one every user
    writes in (TROTH_HOME=/tmp), was taken: the first command made it 0700 (shutting its owner
    and every user out of their shared directory: /tmp made 0700 breaks the machine) and kept
    its nodes where its owner, or anyone, could rename them away and plant others. Now the CLI
    refuses it (exit 3), as `troth node start` refuses to start a node there, and changes
    nothing."""
    _shared_home(troth_home, owner)
    result = CliRunner().invoke(cli, ["identity", "create", "a", "--json"])
    assert result.exit_code == 3, result.stdout
    assert json.loads(result.stdout)["error"] == "ConfigError"
    info = troth_home.stat()
    assert (info.st_mode & 0o7777, info.st_uid) == (0o1777, owner)
    assert not (troth_home / "nodes").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="gives a directory to another user: needs root")
def test_init_node_refuses_a_home_of_another_user(troth_home: Path) -> None:
    _shared_home(troth_home, 65534)
    try:
        with pytest.raises(ConfigError):
            init_node("n", home=troth_home)
    finally:
        assert troth_home.stat().st_mode & 0o7777 == 0o1777


def test_a_key_file_name_cannot_forge_a_line_of_vault_rekey_text(tmp_path: Path) -> None:
    """Review 57d, cli 3. `troth vault rekey --new-key-file NAME` with a file that holds no
    key: the usage error quotes NAME as given. A name from a directory others write in
    (`--new-key-file /shared/*`) holding a newline and a right-to-left override forged an
    `Error:` line and reordered the one shown; every other message escapes what it quotes."""
    run_json("identity", "create", "alice")
    name = tmp_path / "k\u202eyek.\nError: the vault key was rotated"
    name.write_bytes(b"not a key")
    name.chmod(0o600)
    result = CliRunner().invoke(cli, ["vault", "rekey", "--new-key-file", str(name)])
    assert result.exit_code == 2, result.stderr
    assert "\u202e" not in result.stderr
    assert "\nError: the vault key was rotated" not in result.stderr


_INTERRUPT_WHILE_LOADING = """
import runpy, sys

class CtrlC:  # Ctrl-C as the CLI's modules load (the first fifth of a second)
    def find_spec(self, name, path=None, target=None):
        if name == "troth.cli.output":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["troth", *sys.argv[1:]]
runpy.run_module("troth.cli.main", run_name="__main__")
"""


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_ctrl_c_while_the_cli_loads_is_no_traceback(as_json: bool) -> None:
    """Review 57d, cli 4. Ctrl-C in the first fifth of a second of a command (while its
    modules load: `troth ... --json` started and stopped at once by a script, or a user
    changing their mind) printed a Python traceback and no JSON; seen in real processes
    sent SIGINT 10-200 ms after they started. Now it exits 130 as inside a command: with
    --json the same error object, else `troth: interrupted`."""
    args = ["identity", "list", *(["--json"] if as_json else [])]
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_WHILE_LOADING, *args],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    if as_json:
        assert json.loads(result.stdout)["error"] == "KeyboardInterrupt"
        assert result.stderr == ""
    else:
        assert result.stderr == "troth: interrupted\n"


def test_an_out_name_too_long_is_reported_as_any_file_not_written(tmp_path: Path) -> None:
    """Review 57d, cli 5. An --out name too long for the system (a name over 255 bytes) failed
    before the write, as Python words it (`[Errno 36] File name too long: 'aaa...'`, the name
    as a Python literal), where every other file not written reads `cannot write FILE:
    REASON`."""
    run_json("identity", "create", "alice")
    out = str(tmp_path / ("a" * 300))
    document = run_json("identity", "export", "alice", "--out", out, code=4)
    assert document["message"] == f"cannot write {out}: File name too long"
