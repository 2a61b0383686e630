"""Review 70r (wave2a: of 70i's and 70m's fixes): attacks tried that did not work, kept as
passing tests."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.cli import run
from tests.support.gates import T, make_world
from tests.support.traces import (
    Held,
    as_schema_3,
    db,
    node_trace_db,
    open_log,
    record_on_node,
    recorder,
    tool_call,
)
from tests.test_review59b_trace import _changes, _rotate
from tests.test_review70m_telling2 import marked_node
from troth import limits
from troth.clock import FixedClock, SystemClock
from troth.errors import TraceError
from troth.gates.bundles import load_stored_bundle
from troth.node import open_node, troth_home
from troth.node.localdue import local_nodes_due
from troth.trace import verify_log


@pytest.mark.parametrize("odd", ["a?mode=rwc&b", "a#b", "a%41b", "a%3Fmode=ro", "a\udcffb"])
def test_a_refused_revocations_clear_reaches_a_store_under_a_home_of_uri_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd: str
) -> None:
    """70m's `forget_mark_at` opens the node's store by a `file:` URI built from its path
    (mode=rw): a home whose path holds '?', '#', '%' (read by SQLite as the query, the
    fragment, an escape) or a byte that is not UTF-8 could open another file, make one, or
    miss the store. Tried: the path is quoted (`Path.as_uri`), the mark made there is the one
    cleared, and nothing is made beside it."""
    home = tmp_path / odd / "home"
    monkeypatch.setenv("TROTH_HOME", str(home))
    authority, store = marked_node(home)
    with open_node("revoker") as revoker, local_nodes_due(revoker, authority, now=NOW) as due:
        assert due.names == ["n"]
        due.clear()
    with open_node("n") as node:
        assert node.wallet.store.marks_due(authority.digest) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [odd]
    assert store.is_file()


def test_a_refused_revocations_clear_of_a_symlinked_store_forgets_the_mark_made(
    tmp_path: Path, troth_home: Path
) -> None:
    """A node's node.db a symbolic link to a store elsewhere (its directory's lock file not):
    the mark is made through the link, and 70m's clear (mode=rw, its lock file still the one
    held) forgets it there, neither leaving it nor replacing the link by a new store."""
    authority, store = marked_node(troth_home)
    moved = tmp_path / "elsewhere.db"
    store.rename(moved)
    store.symlink_to(moved)
    with open_node("revoker") as revoker, local_nodes_due(revoker, authority, now=NOW) as due:
        assert due.names == ["n"]
        due.clear()
    assert store.is_symlink()
    with open_node("n") as node:
        assert node.wallet.store.marks_due(authority.digest) == []


def test_a_decision_is_not_held_by_a_reload_checking_a_slow_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70i's reload lock is held across the Cedar check of a stored bundle (a slow or hostile
    one takes up to the validating process's timeout): tried whether a decision waits for it.
    The decision path (`BundleStore.engine`) takes neither the reload lock nor the store's: an
    active bundle decides while another thread's reload is inside its check."""
    world = make_world()
    store = world.store(world.bundle())
    inside, go_on = threading.Event(), threading.Event()

    def slow(data: bytes, **kwargs: Any) -> Any:
        inside.set()
        go_on.wait(10)
        return load_stored_bundle(data, **kwargs)

    monkeypatch.setattr("troth.gates.store.load_stored_bundle", slow)
    store._seen.clear()  # the stored bundle read again: the reload checks it
    reloading = threading.Thread(target=lambda: store.reload(now=T + 5))
    reloading.start()
    try:
        assert inside.wait(5)
        engine = store.engine(world.authority.identifier, feed=world.feed, now=T + 5)
        assert engine is not None
    finally:
        go_on.set()
        reloading.join(10)


_SCHEMA_3_DAMAGE = {
    "text": "CAST(envelope AS TEXT)",
    "trailing": "envelope || x'00'",
    "other agent's": "(SELECT envelope FROM leaves WHERE idx = 0)",
}


@pytest.mark.parametrize("what", sorted(_SCHEMA_3_DAMAGE))
def test_a_damaged_row_of_a_schema_3_log_is_neither_lost_nor_let_through(
    tmp_path: Path, what: str
) -> None:
    """70i's migration to schema 4 copies a schema 3 log's rows in SQLite, a row whose
    envelope is not one filed under no agent: tried whether a damaged row (its envelope TEXT,
    trailing a byte, or another agent's record's envelope in its place) is lost by the copy,
    filed so that it verifies, or vanishes once the log appends again. Every row is copied,
    and the verifier reports the damaged one at its index, after an append too."""
    clock, owner, first, second = FixedClock(NOW), Held(), Held(), Held()
    path = tmp_path / "log.db"
    with open_log(path, clock, owner) as log:
        recorder(log, first, clock).record(tool_call())
        recorder(log, second, clock).record(tool_call())
        raw = db(log)
        as_schema_3(raw)
        edit = _SCHEMA_3_DAMAGE[what]
        raw.execute(f"UPDATE leaves SET envelope = {edit} WHERE idx = 1")  # noqa: S608
        raw.close()
    with open_log(path, clock, owner) as log:
        recorder(log, first, clock).record(tool_call())
        with pytest.raises(TraceError) as refused:
            verify_log(log)
    assert refused.value.index == 1
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM leaves").fetchone() == (3,)


_AHEAD = {  # a damaged row of the node's log dating the identity's newest signature far ahead
    "head's time": "UPDATE agents SET time = 1 << 62",
    "checkpoint's time, the log identity row naming the agent": (
        "UPDATE meta SET value = (SELECT agent FROM agents) WHERE name = 'log_identity'; "
        "UPDATE checkpoints SET time = 1 << 62"
    ),
}


@pytest.mark.parametrize("what", sorted(_AHEAD))
@pytest.mark.parametrize("compromised", [False, True])
def test_a_damaged_row_does_not_date_a_rotation_past_the_skew(what: str, compromised: bool) -> None:
    """70i's `signed_until` reads what an identity signed in the node's log (a head's time,
    the log's newest checkpoint when the identity is the log's) in SQL: tried whether a
    damaged row dating it far ahead dates the rotation there, keeping the old key valid for
    records (a thief's) long after the rotation. The rotation is dated at most
    MAX_CLOCK_SKEW_SECONDS past the node's clock, and a compromised one by the clock alone."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    with sqlite3.connect(node_trace_db(troth_home())) as raw:
        raw.executescript(_AHEAD[what])
    now = SystemClock().now()
    _rotate(now, compromised=compromised)
    dated = _changes("support", now)[-1]
    assert now <= dated <= now + (0 if compromised else limits.MAX_CLOCK_SKEW_SECONDS)
