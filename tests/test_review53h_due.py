"""Review 53h, due 1 (the closing note of 2026-12-05, "Knowingly left": "a `DueTries` count can
get one extra try when two threads resume at once"): a node's poll of its marks and its
handouts spend one count of failed settling syncs (troth.node.duetries), but a try was counted
only once it failed. So two of them asking at once, once a newer mark allowed one more try
(or at the count's last), both tried: `DUE_TRIES` + 1 syncs of a lost authority, each opening
every node here. Now a try is counted while it runs: a second asking meanwhile is refused
(the marks stand: fail closed), and one that ended without a word (an exception, not a failed
sync) gives its place back."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

import troth
import troth.node.syncdue
from troth.clock import SystemClock
from troth.errors import NotFound
from troth.identity import Identifier
from troth.limits import DUE_TRIES
from troth.node.duetries import DueTries

A = Identifier(bytes(32))


def _stopped_at(newest: int) -> DueTries:
    tries = DueTries()
    for _ in range(DUE_TRIES):
        assert tries.resume(A, newest)
        tries.failed(A)
    tries.stop(A, newest)
    return tries


def test_two_resuming_at_once_after_a_newer_mark_get_one_try() -> None:
    tries = _stopped_at(1)
    assert tries.resume(A, 2)  # the poll
    assert not tries.resume(A, 2)  # a handout meanwhile: the one try is the poll's
    assert tries.failed(A)
    tries.stop(A, 2)
    assert not tries.resume(A, 2)


def test_two_at_the_last_try_get_one() -> None:
    tries = DueTries()
    for _ in range(DUE_TRIES - 1):
        assert tries.resume(A, 1)
        assert not tries.failed(A)
    assert tries.resume(A, 1)
    assert not tries.resume(A, 1)


def test_a_try_that_ended_without_a_word_gives_its_place_back() -> None:
    tries = _stopped_at(1)
    assert tries.resume(A, 2)
    assert not tries.resume(A, 2)
    tries.ended(A)
    assert tries.resume(A, 2)


def test_two_threads_handing_out_at_once_sync_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost authority at its last try: one handout's sync is under way (held), another
    handout meanwhile does not sync too; both find the marks standing."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
    syncs: list[int] = []
    started, release = threading.Event(), threading.Event()

    def lost(*_: Any, **__: Any) -> Any:
        syncs.append(1)
        if len(syncs) == DUE_TRIES:  # the last try: held until the other handout asked
            started.set()
            release.wait()
        raise NotFound("no node here hosts that authority")

    monkeypatch.setattr(troth.node.syncdue, "sync_local_feed", lost)
    with troth.Node.open("agents") as agents:
        wallet = agents._stored.wallet
        wallet.store.mark_sync_due(acme.identifier.digest, "", 0)
        now = SystemClock().now()
        for _ in range(DUE_TRIES - 1):
            assert wallet.sync_due(acme.identifier, now=now)
        answers: list[bool] = []
        first = threading.Thread(
            target=lambda: answers.append(wallet.sync_due(acme.identifier, now=now))
        )
        first.start()
        try:
            started.wait()
            assert wallet.sync_due(acme.identifier, now=now)  # the marks stand: refused
        finally:
            release.set()
            first.join()
        assert answers == [True]
        assert len(syncs) == DUE_TRIES
        assert agents._stored.due_tries.stopped(acme.identifier)


def test_a_mark_made_after_a_sync_cleared_the_newest_reads_as_newer() -> None:
    """Due 2: a mark's number was its row id, which SQLite gives again once the newest row is
    deleted: a node whose tries of an authority stopped at its newest mark, that mark cleared
    by a sync in another process and a new one made before the node's poll read the marks
    again, read the new mark as not newer (its chains refused until a restart, a newer mark,
    or being told). Mark numbers are never given twice now (`AUTOINCREMENT`)."""
    with troth.Node.open("agents") as agents:
        node = agents._stored
        store = node.wallet.store
        first = store.mark_sync_due(A.digest, "", 0)
        tries = _stopped_at(first)
        assert store.clear_sync_due(A.digest) == 1  # a sync elsewhere cleared it
        second = store.mark_sync_due(A.digest, "", 0)  # a new revocation's
        assert second > first
        assert tries.resume(A, max(store.marks_due(A.digest)))
    with troth.Node.open("agents") as agents:  # a reopened store too
        store = agents._stored.wallet.store
        assert store.clear_sync_due(A.digest) == 1
        assert store.mark_sync_due(A.digest, "", 0) > second


def test_marks_from_before_the_migration_keep_their_numbers() -> None:
    """Due 2, the migration: a node.db whose `feed_syncs_due` gives ids again (as before it)
    opens with its marks as they were, and a mark made after the newest was cleared reads as
    newer."""
    with troth.Node.open("agents") as agents:
        path = agents._stored.path / "node.db"
    with sqlite3.connect(path) as conn:
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute("DROP TABLE feed_syncs_due")
        conn.execute(
            "CREATE TABLE feed_syncs_due (id INTEGER PRIMARY KEY, authority BLOB NOT NULL, "
            "address TEXT NOT NULL, marked_at INTEGER NOT NULL)"
        )
        conn.execute("CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority)")
        for mark in (3, 7):
            conn.execute(
                "INSERT INTO feed_syncs_due VALUES (?, ?, 'node:acme', 1)", (mark, A.digest)
            )
        conn.execute("DROP TABLE voucher_sources")  # review 54x's, the migration after it
        conn.execute(f"PRAGMA user_version = {current - 5}")  # (and 66i's, 69f's, 71e's)
    with troth.Node.open("agents") as agents:
        store = agents._stored.wallet.store
        assert store.marks_due(A.digest) == [3, 7]
        assert store.syncs_due() == [(A.digest, "node:acme")]
        assert store.clear_sync_due(A.digest, 7) == 1
        assert store.mark_sync_due(A.digest, "node:acme", 2) > 7
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current
