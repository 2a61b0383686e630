"""Review 51h, due: the rule "after `DUE_TRIES` failed syncs of a marked authority's feed, none
until a newer mark" was written twice (the closing note of 2026-12-05 07:42, "Knowingly
left"): in a running node's poll of its marks (`DueWatch`, review 50j, duewatch 1) and in the
settling before a chain is handed out (`settle_sync(tries=)`, review 50k, due 1), each with its
own tables. It is one count now (troth.node.duetries), the node's (`Node.due_tries`), which its
poll and its handouts spend alike: in one process a lost authority is tried `DUE_TRIES` times
in all, not that many by each.

1. (due 1) One class, `DueTries`, holds the count; both use it.
2. (due 2) The count is per process, not stored: a restart tries again. Restarting a node, like
   making a mark, takes a process with the node's own files; no peer does either over the
   network (troth.node.duetries says why a stored count would bound nothing more).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import troth
import troth.node.runtime as runtime_module
import troth.node.syncdue
from tests.support.nodes import MemNet, run_memnet
from tests.test_review50j_duewatch import _Lost, _polls
from troth import limits
from troth.clock import SystemClock
from troth.errors import NotFound
from troth.identity import Identifier
from troth.limits import DUE_TRIES
from troth.node.duetries import DueTries
from troth.node.duewatch import DueWatch

A, B = Identifier(bytes(32)), Identifier(bytes([1]) * 32)


def test_tries_stop_after_due_tries_and_resume_once_per_newer_mark() -> None:
    tries = DueTries()
    for n in range(1, DUE_TRIES):
        assert tries.resume(A, 1)
        assert not tries.failed(A), n
    assert tries.failed(A)  # the last: the caller stops it at the newest mark
    tries.stop(A, 1)
    assert tries.stopped(A)
    assert not tries.stopped(B)
    assert not tries.resume(A, 1)  # no newer mark: not tried
    assert tries.resume(B, 0)  # each authority its own count
    assert tries.resume(A, 2)  # a newer mark: once more
    assert not tries.stopped(A)
    assert tries.failed(A)  # and it stops again at once
    tries.stop(A, 2)
    assert not tries.resume(A, 2)
    tries.succeeded(A)  # synced at last: forgotten
    assert tries.counted() == frozenset()
    assert tries.resume(A, 2)


def test_an_authority_no_longer_marked_is_forgotten() -> None:
    tries = DueTries()
    assert not tries.failed(A)
    assert not tries.failed(B)
    tries.keep({B})
    assert tries.counted() == frozenset({B})


def test_the_poll_and_the_handouts_of_one_node_spend_one_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Handing out acme's chains failed `DUE_TRIES` settling syncs (acme on no node here): a
    poll given the node's count tries none for an hour, and one more once a newer mark is
    made; the handouts likewise after the poll's try failed."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
    settles: list[int] = []

    def lost(*_: Any, **__: Any) -> Any:
        settles.append(1)
        raise NotFound("no node here hosts that authority")

    monkeypatch.setattr(troth.node.syncdue, "sync_local_feed", lost)
    with troth.Node.open("agents") as agents:
        node = agents._stored
        wallet = node.wallet
        wallet.store.mark_sync_due(acme.identifier.digest, "", 0)
        now = SystemClock().now()
        for _ in range(2 * DUE_TRIES):
            assert wallet.sync_due(acme.identifier, now=now)
        assert len(settles) == DUE_TRIES
        runtime = _Lost(acme.identifier)
        runtime.marks = wallet.store.marks_due(acme.identifier.digest)
        watch = DueWatch(runtime, node.due_tries)  # type: ignore[arg-type]
        clock = [0.0]
        watch.time = lambda: clock[0]
        _polls(watch, clock, 3600.0)
        assert runtime.settles == 0  # the handouts' count stopped the poll's tries too
        wallet.store.mark_sync_due(acme.identifier.digest, "", 0)
        runtime.marks = wallet.store.marks_due(acme.identifier.digest)
        _polls(watch, clock, 3600.0 + 2 * limits.DUE_RETRY_MAX)
        assert runtime.settles == 1  # one more try, the poll's: it failed
        for _ in range(3):
            assert wallet.sync_due(acme.identifier, now=now)
        assert len(settles) == DUE_TRIES  # stopped again for the handouts as well
        assert node.due_tries.stopped(acme.identifier)


def test_a_running_node_polls_with_its_nodes_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`NodeRuntime` gives its poll `Node.due_tries` (the handouts' count)."""
    watches: list[DueWatch] = []

    def watch(*args: Any) -> DueWatch:
        watches.append(DueWatch(*args))
        return watches[-1]

    monkeypatch.setattr(runtime_module, "DueWatch", watch)

    async def test(net: MemNet) -> None:
        a = await net.member("a")
        (mine,) = [w for w in watches if w.runtime is a]
        assert mine.tries is a.node.due_tries

    run_memnet(test, tmp_path)


def test_a_new_process_counts_anew() -> None:
    """Per process (due 2): each open of a node has a count of its own, empty."""
    with troth.Node.open("hub") as hub:
        first = hub._stored.due_tries
        assert first.counted() == frozenset()
        assert not first.failed(A)
    with troth.Node.open("hub") as hub:
        assert hub._stored.due_tries is not first
        assert hub._stored.due_tries.counted() == frozenset()
