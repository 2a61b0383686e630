"""Review 49i, refuted: attacks on the node lifecycle's crash safety that the code withstood
(kept as passing tests)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from tests.support.processes import until_ended
from troth.node import init_node
from troth.node.daemon import control, node_status, start_daemon, stop_daemon


def test_a_node_killed_with_sigkill_starts_again_without_deleting_its_files(
    troth_home: Path,
) -> None:
    """A daemon killed with SIGKILL leaves status.json, node.pid and control.sock (its
    cleanup never ran). `troth node status` says not running (the stale pid reported),
    `troth node stop` says not running and signals nothing, and the next `troth node start`
    starts the node over those files; its control socket answers."""
    init_node("n")
    first = start_daemon(troth_home, "n", None)
    directory = troth_home / "nodes" / "n"
    second: dict[str, object] = {}
    try:
        os.kill(first["pid"], signal.SIGKILL)
        # ended: a zombie, this process its parent (start_daemon's), reaps it at its next
        # subprocess only; a wait for it to be gone waited out its whole 10 s bound (72f ci)
        until_ended(first["pid"])
        assert (directory / "status.json").exists()
        assert (directory / "node.pid").exists()
        status = node_status(troth_home, "n")
        assert status["running"] is False
        assert status["stale_pid"] == first["pid"]
        assert stop_daemon(troth_home, "n") is False
        second = start_daemon(troth_home, "n", None)
        assert second["pid"] != first["pid"]
        assert control(troth_home, "n", "status", {})["identifier"] == first["identifier"]
        assert stop_daemon(troth_home, "n") is True
        assert node_status(troth_home, "n")["running"] is False
    finally:
        for started in (first, second):
            if started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(str(started["pid"])), signal.SIGKILL)


def test_a_migration_cut_short_leaves_the_schema_as_it_was_and_the_next_open_finishes(
    tmp_path: Path,
) -> None:
    """Storage migrations: a process killed (here: an exception) in the middle of a
    migration run, after an earlier migration's statements ran, leaves the file at its old
    schema version with nothing of the run (one transaction, DDL included); the next open
    applies every migration once."""
    import sqlite3

    import pytest

    from troth.storage.sqlite import SqliteDatabase

    def cut(conn: sqlite3.Connection) -> None:
        raise RuntimeError("killed here")

    first = "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1)"
    second = "CREATE TABLE b (y INTEGER)"
    path = tmp_path / "m.db"
    SqliteDatabase(path, migrations=(first,)).close()
    with pytest.raises(RuntimeError, match="killed here"):
        SqliteDatabase(path, migrations=(first, second, cut))
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'b'").fetchall() == []
    raw.close()
    db = SqliteDatabase(path, migrations=(first, second, "CREATE TABLE c (z INTEGER)"))
    try:
        assert db.execute("SELECT count(*) FROM a").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM b").fetchone()[0] == 0
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    finally:
        db.close()


def test_a_stale_pid_taken_by_a_process_that_does_not_name_the_node_is_not_stopped(
    troth_home: Path,
) -> None:
    """A killed node's pid taken by an unrelated process of the same user (its command line
    does not name the node): `troth node status` says not running and `troth node stop`
    signals nothing."""
    import json
    import subprocess
    import sys

    init_node("n")
    directory = troth_home / "nodes" / "n"
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = {"pid": bystander.pid, "listening": None, "control": "x"}
        (directory / "status.json").write_text(json.dumps(stale))
        os.chmod(directory / "status.json", 0o600)
        assert node_status(troth_home, "n")["running"] is False
        assert stop_daemon(troth_home, "n") is False
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_node_create_killed_before_its_identity_leaves_a_node_that_starts(
    troth_home: Path,
) -> None:
    """`troth node create n` killed after the node's directory and configuration, before its
    identity's commit: `troth node create n` again says it exists, and `troth node start n`
    makes the node's own identity (named n) at its first start."""
    from tests.support.cli import run_json
    from tests.support.forked import troth_forked

    troth_forked("node", "create", "n", crash="identity.create.before-commit")
    assert run_json("identity", "list", "--node", "n") == []
    troth_forked("node", "create", "n", code=3, check=True)
    started = start_daemon(troth_home, "n", None)
    try:
        names = [row["name"] for row in run_json("identity", "list", "--node", "n")]
        assert names == ["n"]
        assert control(troth_home, "n", "status", {})["identifier"] == started["identifier"]
    finally:
        stop_daemon(troth_home, "n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signal.SIGKILL)
