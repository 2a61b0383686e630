"""Review 63v2: attacks on the merged fixes of reviews 63v (stop), 63y (reconnect, traces)
and 63z (verifier) that did not work; each test fails if the defence it names breaks.

- stop: a storage call dropped by `StoreWorker.abandon` before the thread took it up fails its
  caller (CancelledError, never a result) and never runs, even once the thread is free again;
  a call after the stop is refused (RuntimeError), nothing kept; a transaction whose database
  is closed under it from another thread (node.db closed after an abandoned stop) is rolled
  back whole: no half-applied multi-statement write; nor is one whose daemon storage thread
  the interpreter's exit stopped midway (WAL: no commit frame, nothing of it read).
- verifier: the presenter forms the docs name (an `Identity` after a normal rotation, its
  identifier, its text) are accepted whichever source gives the feed; a `Node`, None, bytes
  or a list is an ArgumentError (typed, no AttributeError); the per-verifier SeenSignatures
  stays within its bound however many presenters' histories it checks; every byte of an
  honest presenter's history mangled in turn is a CredentialError or harmless, no other type.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import troth
from troth.clock import FixedClock
from troth.errors import StorageError
from troth.identity import SeenSignatures
from troth.node.worker import StoreWorker
from troth.storage.sqlite import SqliteDatabase

# -- stop -----------------------------------------------------------------------------------


def test_stop_a_call_dropped_before_it_started_fails_its_caller_and_never_runs() -> None:
    ran: list[str] = []
    busy = threading.Event()
    release = threading.Event()

    def stuck() -> None:
        busy.set()
        release.wait(5)

    async def main() -> None:
        worker = StoreWorker()
        first = worker.submit(stuck)
        waiting = asyncio.ensure_future(worker.run(ran.append, "queued write"))
        await asyncio.to_thread(busy.wait, 5)
        await asyncio.sleep(0)
        worker.abandon()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(RuntimeError):
            worker.submit(ran.append, "after the stop")
        release.set()
        await asyncio.wrap_future(first)  # the one under way ends on its own
        await asyncio.sleep(0)

    asyncio.run(main())
    assert ran == []


def test_stop_a_transaction_cut_by_its_database_closing_is_rolled_back_whole(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    first_written = threading.Event()
    closed = threading.Event()
    failures: list[BaseException] = []

    def write_two() -> None:
        try:
            with db.transaction():
                db.execute("INSERT INTO t VALUES (1)")
                first_written.set()
                closed.wait(5)
                db.execute("INSERT INTO t VALUES (2)")
        except (sqlite3.Error, StorageError) as exc:
            failures.append(exc)

    thread = threading.Thread(target=write_two)
    thread.start()
    assert first_written.wait(5)
    db.close()
    closed.set()
    thread.join(5)
    assert failures, "the write after the close fails"
    again = SqliteDatabase(tmp_path / "node.db")
    try:
        assert again.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    finally:
        again.close()


_EXITS_MIDWAY = """
import sys, threading
from pathlib import Path
from troth.storage.sqlite import SqliteDatabase

db = SqliteDatabase(Path(sys.argv[1]))
written = threading.Event()

def write_two() -> None:
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        written.set()
        threading.Event().wait()  # never ends: the process exits under it
        db.execute("INSERT INTO t VALUES (2)")

threading.Thread(target=write_two, daemon=True).start()
written.wait(5)
"""


def test_stop_a_daemon_storage_thread_stopped_by_the_exit_midway_commits_nothing(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    db.close()
    done = subprocess.run(
        [sys.executable, "-c", _EXITS_MIDWAY, str(tmp_path / "node.db")],
        timeout=30,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    again = SqliteDatabase(tmp_path / "node.db")
    try:
        assert again.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    finally:
        again.close()


# -- verifier -------------------------------------------------------------------------------


@dataclass
class Enrolled:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    old: troth.Identity
    new: troth.Identity
    member: troth.Credential


@pytest.fixture
def enrolled(clock: FixedClock) -> Iterator[Enrolled]:
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        old = agents.identities.create("customer")
        member = agents.enroll(acme.ticket({"orders.access": "read"}), identity=old)
        clock.advance(10)
        new = agents.identities.rotate(old)  # a normal rotation, nothing compromised
        yield Enrolled(hub, agents, acme, old, new, member)


@pytest.mark.parametrize("source", ["authority", "node", "both"])
def test_verifier_an_honest_presenter_after_a_normal_rotation_is_accepted(
    enrolled: Enrolled, clock: FixedClock, source: str
) -> None:
    sources: dict[str, list[troth.Node | troth.Authority]] = {
        "authority": [enrolled.acme],
        "node": [enrolled.agents],
        "both": [enrolled.agents, enrolled.acme],
    }
    verifier = troth.Verifier(trust=[enrolled.acme.identifier], feeds=sources[source], clock=clock)
    her = enrolled.new.identifier
    for presenter in (enrolled.new, her, str(her)):
        assert verifier.verify(enrolled.member, presenter=presenter).actor == her


def test_verifier_a_presenter_of_another_type_is_an_argument_error(
    enrolled: Enrolled, clock: FixedClock
) -> None:
    verifier = troth.Verifier(trust=[enrolled.acme.identifier], feeds=[enrolled.acme], clock=clock)
    for presenter in (enrolled.agents, None, b"T00", [enrolled.new]):
        with pytest.raises(troth.ArgumentError):
            verifier.verify(enrolled.member, presenter=presenter)  # type: ignore[arg-type]


def test_verifier_its_seen_signatures_stay_within_their_bound(
    enrolled: Enrolled, clock: FixedClock
) -> None:
    verifier = troth.Verifier(trust=[enrolled.acme.identifier], feeds=[enrolled.acme], clock=clock)
    verifier._seen = SeenSignatures(max_entries=2)
    others = [enrolled.agents.identities.create(f"other{i}") for i in range(3)]
    for other in others:  # each another identity's history: refused, its signatures checked
        with pytest.raises(troth.CredentialError):
            verifier.verify(enrolled.member, presenter=other)
    verifier.verify(enrolled.member, presenter=enrolled.new)
    assert len(verifier._seen) <= 2


def test_verifier_a_mangled_presenter_history_is_a_credential_error(
    enrolled: Enrolled, clock: FixedClock
) -> None:
    """Every byte of an honest presenter's history changed in turn: refused with a
    CredentialError (WRONG_SUBJECT or SUPERSEDED) or, the change meaningless, accepted; never
    another error type out of `verify` (a CryptoError, a DecodeError, a KeyError)."""
    verifier = troth.Verifier(trust=[enrolled.acme.identifier], feeds=[enrolled.acme], clock=clock)
    history = enrolled.new.history
    refused = 0
    for at in range(len(history)):
        for flip in (0x01, 0x80):
            mangled = bytearray(history)
            mangled[at] ^= flip
            presenter = replace(enrolled.new, history=bytes(mangled))
            try:
                verifier.verify(enrolled.member, presenter=presenter)
            except troth.CredentialError:
                refused += 1
    assert refused > len(history)
