"""Review 56d (storage: node.db, its rollback guard): attacks tried that did not work. Each test
is a real attempt that fails if the defence it names breaks."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.backups import node_db
from tests.support.forked import ForkedCall
from troth.storage import SqliteDatabase
from troth.storage.rollback import guard_path, read_guard, restored_rows
from troth.storage.sqlite import _MIGRATIONS


def _write(prefix: str) -> None:
    """In the forked writer: create identities, rotate them, append to acme's feed, forever,
    printing each commit it acknowledges."""
    with troth.Node.open("acme") as node:
        authority = node.authority()
        n = 0
        while True:
            n += 1
            node.identities.create(f"{prefix}{n}")
            print("made", n, flush=True)
            node.identities.rotate(f"{prefix}{n}")
            print("rotated", n, flush=True)
            print("revoked", authority.revoke(os.urandom(32)), flush=True)


def _killed_after(lines: int, prefix: str) -> list[tuple[str, int]]:
    """Run `_write` in a child process (forked from this one: an interpreter's start and
    imports were most of its time), SIGKILL it once it acknowledged `lines` commits (it is
    then somewhere in its next write: a commit, the guard's raise after it); what it
    acknowledged."""
    child = ForkedCall(_write, prefix)
    said: list[tuple[str, int]] = []
    try:
        while len(said) < lines:
            line = child.stdout.readline()
            assert line, child.stderr.read()
            what, number = line.split()
            said.append((what, int(number)))
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    return said


@pytest.mark.parametrize("lines", [1, 5, 13])
def test_a_writer_killed_mid_write_loses_nothing_acknowledged(troth_home: Path, lines: int) -> None:
    """Kill -9 (a real SIGKILL, not a crash point) of a process creating identities, rotating
    them and appending to its authority's feed (each counted by the rollback guard, raised
    after the commit): node.db reopens whole (`integrity_check`), every write the process
    acknowledged is there, and the guard finds no restore (a crash never makes a current
    store read as a restored copy: no ticket voided), three rounds on the same node."""
    with troth.Node.open("acme") as acme:
        acme.create_authority()
    path = node_db(troth_home, "acme")
    for round_ in "abc":
        said = _killed_after(lines, round_)
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        with troth.Node.open("acme") as acme:
            ticket = acme.authority().ticket({"team.name": "x"})  # opens the authority: checks
            for what, number in said:
                if what == "made":
                    acme.identities.get(f"{round_}{number}")
                elif what == "rotated":
                    assert acme.identities.get(f"{round_}{number}").changes >= 2
            db = SqliteDatabase(path)
            try:
                assert restored_rows(db) == []
                revoked = [n for what, n in said if what == "revoked"]
                seq = db.fetch_one("SELECT max(seq) FROM revocations")[0]
                assert seq is not None or not revoked
                assert not revoked or seq >= max(revoked)
                assert db.fetch_all("SELECT DISTINCT uses_left FROM tickets") == [(1,)]
            finally:
                db.close()
            assert ticket
        assert read_guard(guard_path(path)) is not None


_REVOKER = """\
import os, sys, troth
from troth.errors import StorageError
with troth.Node.open("acme") as node:
    authority = node.authority()
    for _ in range(int(sys.argv[1])):
        try:
            authority.revoke(os.urandom(32))
        except StorageError as exc:  # review 56d, concurrency 1: committed, not traced
            if "could not be recorded in the trace" not in str(exc):
                raise
"""

_CHECKER = """\
import sys, troth
from troth.storage.rollback import restored_rows
opens = 0
while sys.stdin.readline().strip() != "stop":
    with troth.Node.open("acme") as node:
        node.authority()  # the rollback check of every open
        opens += 1
        assert not restored_rows(node._stored.db), "a current store read as restored"
    print("opened", flush=True)
print(opens)
"""


def test_writers_and_openers_at_once_never_lower_the_guard_nor_read_as_restored(
    troth_home: Path,
) -> None:
    """Two processes appending to the authority's feed at once (each entry counted by the
    rollback guard, raised after its commit under the guard's lock), while a third opens the
    authority again and again (each open checks for a restored copy): no open finds a
    restore (the check reads the guard before the count, and the guard is raised only to a
    committed count), the ticket made before stays usable, and both end equal to the
    entries appended (no raise lowered the guard, no count was lost)."""
    with troth.Node.open("acme") as acme:
        acme.create_authority().ticket({"team.name": "x"})
    each = 12
    writers = [
        subprocess.Popen([sys.executable, "-c", _REVOKER, str(each)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    checker = subprocess.Popen(
        [sys.executable, "-c", _CHECKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert checker.stdin is not None
    assert checker.stdout is not None
    try:
        while any(w.poll() is None for w in writers):
            checker.stdin.write("go\n")
            checker.stdin.flush()
            assert checker.stdout.readline() == "opened\n", checker.stderr
        checker.stdin.write("stop\n")
        checker.stdin.flush()
        err = checker.communicate(timeout=60)[1]
    finally:
        processes: list[subprocess.Popen[Any]] = [*writers, checker]
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)
    assert checker.returncode == 0, err
    assert [w.returncode for w in writers] == [0, 0], [w.stderr.read() for w in writers if w.stderr]
    path = node_db(troth_home, "acme")
    db = SqliteDatabase(path)
    try:
        assert restored_rows(db) == []
        assert db.fetch_one("SELECT counter FROM rollback_counters")[0] == 2 * each
        assert db.fetch_all("SELECT uses_left FROM tickets") == [(1,)]
    finally:
        db.close()
    assert read_guard(guard_path(path)) == {"authority": 2 * each}


def test_an_authority_made_under_an_open_umask_keeps_its_guard_and_trace_private(
    troth_home: Path,
) -> None:
    """Under umask 000, what an authority adds beside node.db (review 55d tried a node
    without one): the rollback guard and its lock (a ticket made, a revocation counted), the
    trace log and its writer's lock (the revocation recorded) are 0600, their directories
    0700."""
    old = os.umask(0)
    try:
        with troth.Node.open("acme") as acme:
            authority = acme.create_authority()
            authority.ticket({"team.name": "x"})
            authority.revoke(os.urandom(32))
    finally:
        os.umask(old)
    folder = node_db(troth_home, "acme").parent
    modes = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in folder.iterdir()}
    assert {"node.db.guard", "node.db.guard.lock", "trace.db", "trace.db.writer"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("version", range(1, len(_MIGRATIONS)))
def test_a_node_db_of_every_earlier_schema_migrates(tmp_path: Path, version: int) -> None:
    """A node.db an older troth left at each earlier schema version opens, every later
    migration applied in one transaction, and is current (no migration assumes a table or
    column another one made and a later one dropped)."""
    path = tmp_path / "node.db"
    SqliteDatabase(path, migrations=_MIGRATIONS[:version]).close()
    db = SqliteDatabase(path)
    try:
        assert db.fetch_one("PRAGMA user_version")[0] == len(_MIGRATIONS)
        assert db.fetch_all("PRAGMA integrity_check") == [("ok",)]
    finally:
        db.close()
