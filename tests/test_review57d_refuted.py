"""Review 57d: attacks on the CLI, as a security engineer drives it with --json, that did not
work. Each test is a real attempt and fails if the defence it found breaks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json, troth_process
from troth import limits
from troth.cli.main import cli

HOSTILE: dict[str, bytes | None] = {
    "missing": None,
    "empty": b"",
    "garbage": bytes(range(256)) * 16,
    "deep": b"\x81" * 100_000,  # CBOR arrays nested 100 000 deep
    "json": b'{"a": [1, 2]}',
    "not-utf8": b"\xff\xfe{}",
}


def _hostile_file(tmp_path: Path, kind: str) -> str:
    if kind == "directory":
        return str(tmp_path)
    path = tmp_path / kind
    data = HOSTILE[kind]
    if data is not None:
        path.write_bytes(data)
    return str(path)


def _one_failure(args: list[str]) -> dict[str, Any]:
    """Run `args --json`: one JSON object on stdout, nothing on stderr, a non-zero exit that
    is neither internal (70) nor interrupted (130), and the object's code is the exit code."""
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code not in (0, 70, 130), (result.stdout, result.stderr)
    assert result.stderr == ""
    document: dict[str, Any] = json.loads(result.stdout)
    if "valid" in document:  # a verify command's verdict
        assert document["valid"] is False
        assert result.exit_code == 1
    else:
        assert document["ok"] is False
        assert document["exit_code"] == result.exit_code
    return document


@pytest.mark.parametrize("kind", [*HOSTILE, "directory"])
@pytest.mark.parametrize(
    "command",
    [
        ["identity", "verify"],
        ["identity", "import"],
        ["credential", "import", "--as", "alice"],
        ["credential", "verify", "--trust", "T" + "0" * 64],
        ["credential", "verify", "--format", "vc", "--trust", "T" + "0" * 64],
        ["revoke", "link", "0" * 64, "--as", "alice", "--authority", "acme", "--chain"],
        ["enroll", "--as", "alice"],
    ],
    ids=lambda c: "-".join(w for w in c if not w.startswith(("-", "T0", "0"))),
)
def test_hostile_input_files_fail_as_one_json_object(
    tmp_path: Path, command: list[str], kind: str
) -> None:
    """A missing file, a directory, an empty file, bytes of every value, CBOR nested 100 000
    deep, JSON where CBOR is read, bytes that are not UTF-8: each an error object or a verdict,
    never a traceback, an internal error or text on stderr."""
    run_json("identity", "create", "alice")
    run_json("authority", "create", "acme")
    document = _one_failure([*command, _hostile_file(tmp_path, kind)])
    # judged (1) or not read (4); a directory is refused as a usage error (2), as an argument
    # that names no file: never a usage error for the other options given
    assert (
        document.get("exit_code", 1) == 2
        if kind == "directory"
        else document.get("exit_code", 1) in (1, 4)
    ), document


def test_a_100_mb_input_is_not_read_whole(tmp_path: Path) -> None:
    """A 100 MB chain file (sparse) given to `revoke link --chain`: refused after reading
    MAX_CHAIN_BYTES + 1 bytes, exit 4 (I/O), not read whole nor parsed."""
    run_json("authority", "create", "acme")
    big = tmp_path / "big.chain"
    with big.open("wb") as file:
        file.truncate(100 * 1024 * 1024)
    run_json("identity", "create", "alice")
    args = ["revoke", "link", "0" * 64, "--as", "alice", "--authority", "acme", "--chain"]
    document = _one_failure([*args, str(big)])
    assert document["exit_code"] == 4
    assert f"larger than {limits.MAX_CHAIN_BYTES} bytes" in document["message"]


def _node_db(troth_home: Path) -> Path:
    run_json("identity", "create", "alice")
    return troth_home / "nodes" / "default" / "node.db"


def test_a_node_db_of_a_newer_schema_is_refused_not_migrated(troth_home: Path) -> None:
    """A node.db written by a newer troth (user_version past what this one knows): exit 3,
    one JSON object naming both schemas, and the file left as it was (no migration run
    backwards over it)."""
    db = _node_db(troth_home)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    document = _one_failure(["identity", "list"])
    assert (document["error"], document["exit_code"]) == ("ConfigError", 3)
    assert "schema 999" in document["message"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 999


@pytest.mark.parametrize("damage", ["garbage", "directory"])
def test_a_damaged_node_db_is_an_io_error(troth_home: Path, damage: str) -> None:
    db = _node_db(troth_home)
    for extra in (db.with_name("node.db-wal"), db.with_name("node.db-shm")):
        extra.unlink(missing_ok=True)
    db.unlink()
    if damage == "directory":
        db.mkdir()
    else:
        db.write_bytes(bytes(range(256)) * 64)
    document = _one_failure(["identity", "list"])
    assert (document["error"], document["exit_code"]) == ("StorageError", 4)


def test_a_node_db_another_process_holds_fails_after_the_limit(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds node.db's write lock (a long `identity create --count`): a
    writing command waits TROTH_BUSY_TIMEOUT, then one JSON object, exit 4, naming the holder;
    no hang, no traceback."""
    db = _node_db(troth_home)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setenv("TROTH_BUSY_TIMEOUT", "0.2")
        document = _one_failure(["identity", "create", "bob"])
        assert document["exit_code"] == 4
        assert f"pid {holder.pid}" in document["message"]
    finally:
        holder.communicate("", timeout=30)
    assert "bob" not in run("identity", "list").stdout


def test_a_crash_before_the_rename_leaves_the_old_out_file_whole(tmp_path: Path) -> None:
    """A CLI killed while it writes --out (SIGKILL at the rename, in a real process): the
    file there before is left whole, never a half-written one (written atomically)."""
    troth_process("identity", "create", "alice")
    out = tmp_path / "alice.history"
    out.write_bytes(b"the old file")
    troth_process("identity", "export", "alice", "--out", str(out), crash="node.file.before-rename")
    assert out.read_bytes() == b"the old file"


def test_escapes_in_an_out_name_are_shown_escaped(tmp_path: Path) -> None:
    """An --out name holding a terminal escape and bytes that are not UTF-8 (a real process,
    argv as bytes): the file is written under that very name; the text output shows the name
    escaped (no ESC reaches the terminal) and --json a valid UTF-8 document."""
    troth_process("identity", "create", "alice")
    name = os.fsencode(tmp_path) + b"/o\xff\x1b[2J"
    command = [sys.executable, "-m", "troth.cli.main", "identity", "export", "alice", "--out"]
    shown = subprocess.run([*command, name], capture_output=True, timeout=90, check=True)
    assert b"\x1b" not in shown.stdout + shown.stderr
    assert b"\\x1b[2J" in shown.stdout
    assert os.path.exists(name)
    result = subprocess.run([*command, name, "--json"], capture_output=True, timeout=90, check=True)
    assert json.loads(result.stdout.decode("utf-8"))["file"].endswith("o\\udcff\x1b[2J")


# the batch's first progress line, then a wait (stdin, never written): the SIGINT comes while
# the batch is under way, however loaded the machine (a child that finished its 20,000 before
# the signal was sent exited 0 in a CI run at load 9, review 62)
_PAUSED_AFTER_FIRST = """
import sys
import troth.cli.output as output
from troth.cli.main import main
shown = output.Progress.__call__
def paused(self, done, total=None):
    shown(self, done, total)
    if done == 1:
        sys.stdin.readline()
output.Progress.__call__ = paused
sys.argv[0] = "troth"
main()
"""


def test_ctrl_c_during_a_batch_creation_creates_none_and_says_so() -> None:
    """SIGINT (a real process, sent once its progress shows the batch under way) to
    `identity create --count 20000 --json`: exit 130, one JSON error object on stdout, and
    none of the batch stored (one transaction: all or none, as its help says)."""
    command = [sys.executable, "-c", _PAUSED_AFTER_FIRST, "identity", "create", "batch"]
    process = subprocess.Popen(
        [*command, "--count", "20000", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    assert process.stderr.readline().startswith("created (not yet committed)")
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=90)
    assert process.returncode == 130
    assert json.loads(stdout)["error"] == "KeyboardInterrupt"
    assert "batch-" not in run("identity", "list").stdout
