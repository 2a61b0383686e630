"""Review 63q: attacks on this session's CLI, limits and trace-export fixes that did not work.

Each test is a real attempt; it fails if the defence it names breaks. Every file written lives
under tmp_path; a write that would replace a system name is guarded (`_never_replaced`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from troth.cli import common
from troth.cli.main import cli
from troth.cli.output import terminal_json


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


def test_a_file_named_stdin_or_under_a_directory_named_dev_is_a_file(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not refused as stdin or a descriptor: only /dev itself (resolved) names them."""
    run("identity", "create", "agent")
    monkeypatch.chdir(tmp_path)
    run_json("identity", "export", "agent", "--out", "stdin")
    (tmp_path / "dev").mkdir()
    run_json("identity", "export", "agent", "--out", str(tmp_path / "dev" / "stdout"))
    assert (tmp_path / "stdin").is_file()
    assert (tmp_path / "dev" / "stdout").is_file()
    assert not common.names_stdout("/proc/1/fd/1")  # another process's: a path, not ours


def test_a_relative_name_from_dev_is_the_descriptor(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out stderr` run from /dev writes through descriptor 2, never replaces /dev/stderr."""
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    monkeypatch.chdir("/dev")
    assert run_json("identity", "export", "agent", "--out", "stderr")["file"] == "stderr"


def test_a_link_at_out_to_a_system_like_file_is_replaced_not_followed(
    tmp_path: Path, troth_home: Path
) -> None:
    """The atomic write renames over the link itself: its target (a stand-in for
    /etc/passwd, mode 0644) keeps its bytes and mode."""
    run("identity", "create", "agent")
    system = tmp_path / "passwd"
    system.write_text("root:x:0:0:root:/root:/bin/sh\n")
    system.chmod(0o644)
    link = tmp_path / "export.bin"
    link.symlink_to(system)
    run_json("identity", "export", "agent", "--out", str(link))
    assert system.read_text().startswith("root:x:0:0")
    assert system.stat().st_mode & 0o777 == 0o644
    assert link.is_file()
    assert not link.is_symlink()


def test_an_out_naming_a_directory_or_a_link_to_one_is_a_usage_error(
    tmp_path: Path, troth_home: Path
) -> None:
    run("identity", "create", "agent")
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    for out in (folder, tmp_path / "link"):
        run("identity", "export", "agent", "--out", str(out), code=2)
    assert folder.is_dir()
    assert (tmp_path / "link").is_symlink()
    assert list(folder.iterdir()) == []


def test_a_failed_json_command_leaves_no_handler_behind(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The --json handler (records as warnings) is removed on failure too, and a logger's
    state after the otel export (its own dropping handler) is as before."""
    run("identity", "create", "agent")
    monkeypatch.setattr(logging.root, "handlers", [])
    otel = logging.getLogger("opentelemetry")
    before = (list(otel.handlers), otel.propagate)
    result = CliRunner().invoke(cli, ["identity", "show", "nobody-63q", "--json"])
    assert result.exit_code != 0
    assert json.loads(result.stdout)["ok"] is False
    result = CliRunner().invoke(
        cli, ["trace", "export", "--format", "otel", "--endpoint", "x", "--json"]
    )
    assert result.exit_code == 3, result.output
    assert logging.root.handlers == []
    assert (list(otel.handlers), otel.propagate) == before


def test_a_bundle_escaped_for_a_terminal_is_the_same_json() -> None:
    """`Reporter.document` to a terminal: DEL, C1 and bidi controls escaped, the JSON the same
    (a raw one after an escaped backslash too)."""
    value = "a\x7f\x9b31m\u202e\\\x85\u2066z"
    text = json.dumps({"v": value, "k\x9b": [value]}, ensure_ascii=False)
    shown = terminal_json(text)
    assert json.loads(shown) == json.loads(text)
    assert not any(c in shown for c in "\x7f\x9b\u202e\x85\u2066")
