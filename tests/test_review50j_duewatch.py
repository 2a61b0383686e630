"""Review 50j, duewatch: what review 50b's marks (troth.node.localdue) and a running node's poll
of them (troth.node.duewatch) left.

1. A mark whose authority is on no node here any more (nor reached otherwise) was tried every
   `DUE_RETRY_MAX` seconds for good, each try opening the nodes here to look for it: the poll
   now stops after `DUE_TRIES` tries whose marks stood, and tries again only once a newer
   mark of that authority is made (at most once per `DUE_RETRY_MAX`), when told, or
   restarted. The marks are never cleared for it: the authority's chains stay refused.
2. Marking another node waited, without bound, for its `node.db.revoking` while that node held
   it alone (settling a sync): the wait is now bounded by `MARK_BUSY_SECONDS`, and that node is
   left unmarked (logged) while the revocation commits.
3. `MARK_BUSY_SECONDS`, `DUE_POLL`, `DUE_RETRY_MAX` are hard limits, named in troth.limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest

import troth
import troth.node.syncdue
import troth.node.traces
from tests.support.locks import finishes_while_held_alone
from tests.test_review50b_revdue import _marks
from troth import limits
from troth.clock import SystemClock
from troth.identity import Identifier
from troth.node.authorities import sync_local_feed
from troth.node.duewatch import DueWatch


class _Lost:
    """What `DueWatch` uses of a runtime whose marks' authority is on no node here: a feed
    copy held, the authority not trusted, every settling sync failing (its marks stand)."""

    def __init__(self, authority: Identifier) -> None:
        self.settles = 0
        self.marks = [1]
        self.trust = SimpleNamespace(
            due=frozenset({authority}),
            hosted=None,
            routes={},
            read_due=lambda: None,
            learn_held=lambda: None,
        )
        store = SimpleNamespace(marks_due=lambda digest: list(self.marks))
        self.node = SimpleNamespace(settle_due=self._settle, wallet=SimpleNamespace(store=store))
        self.worker = SimpleNamespace(run=self._run)
        self.clock = SimpleNamespace(now=lambda: 0)

    def _settle(self, authority: Identifier, now: int) -> bool:
        self.settles += 1  # (the real one opens every node here looking for the authority)
        return False

    async def _run(self, function: Any, *args: Any) -> Any:
        return function(*args)


def _polls(watch: DueWatch, now: list[float], until: float) -> None:
    async def polls() -> None:
        while now[0] < until:
            await watch.poll()
            now[0] += limits.DUE_POLL

    asyncio.run(polls())


def test_a_mark_whose_authority_is_gone_is_tried_a_bounded_number_of_times() -> None:
    """The authority's node was deleted after the mark: the poll tries `DUE_TRIES` syncs, then
    none for an hour while the marks stay as they are; a newer mark is tried once, after the
    longest wait. The marks stand throughout (the authority stays in `due`: refused)."""
    authority = Identifier(bytes(32))
    runtime = _Lost(authority)
    watch = DueWatch(runtime)  # type: ignore[arg-type]
    now = [0.0]
    watch.time = lambda: now[0]
    _polls(watch, now, 3600.0)
    assert runtime.settles == limits.DUE_TRIES
    runtime.marks.append(2)  # another revocation by it marked the node again
    _polls(watch, now, 3600.0 + 2 * limits.DUE_RETRY_MAX)
    assert runtime.settles == limits.DUE_TRIES + 1
    _polls(watch, now, 7200.0)
    assert runtime.settles == limits.DUE_TRIES + 1
    assert runtime.trust.due == frozenset({authority})
    runtime.trust.due = frozenset()  # synced at last (told): forgotten
    asyncio.run(watch.poll())
    assert watch.waiting() == frozenset()
    assert watch.tries.counted() == frozenset()


def test_a_revocation_waits_for_a_node_settling_a_sync_at_most_mark_busy_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`agents` holds its `node.db.revoking` alone (as its settling sync does, for as long as
    the sync takes): hub's removal of a member commits without it, `agents` left unmarked and
    logged so (before, the revocation waited for as long as `agents` held it)."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
        member = agents.identity.identifier
    done: list[object] = []

    def remove() -> None:
        with troth.Node.open("hub") as hub:
            node = hub._stored
            done.extend(
                troth.node.traces.remove_member_as_authority(
                    node, node.authority(), member, reason="left", clock=SystemClock()
                )
            )
            done.append(True)

    with caplog.at_level(logging.WARNING, logger="troth.node"):
        assert finishes_while_held_alone("agents", remove)
    assert done[-1] is True
    assert len(done) == 2  # committed: the member's one credential revoked
    assert _marks("agents", acme.identifier) == 0
    assert any("node 'agents' was not marked" in r.getMessage() for r in caplog.records)


def test_the_marks_waits_are_named_in_troth_limits() -> None:
    """The poll's period, its longest wait, its tries and the marking's wait are hard limits:
    `troth.limits`' own, the very objects the modules read."""
    import troth.node.duewatch as duewatch
    import troth.node.localdue as localdue

    read = {**vars(duewatch), **vars(localdue)}
    for name in ("DUE_POLL", "DUE_RETRY_MAX", "DUE_TRIES", "MARK_BUSY_SECONDS"):
        assert read[name] is getattr(limits, name), name
    assert (limits.DUE_POLL, limits.DUE_RETRY_MAX, limits.MARK_BUSY_SECONDS) == (1.0, 30.0, 2.0)
    assert not {"DUE_POLL", "DUE_RETRY_MAX"} & set(duewatch.__all__)
    assert "MARK_BUSY_SECONDS" not in localdue.__all__


def test_a_node_settling_a_sync_is_marked_by_a_revocation_meanwhile(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`agents` settles a mark of acme's feed (a revoker killed earlier) while hub removes a
    member: the removal marks `agents` at once (its settling sync held `node.db.revoking`
    alone for the whole sync, so the removal waited `MARK_BUSY_SECONDS` and left it
    unmarked), and the settling clears only the marks it read before its sync: the removal's
    stands until a sync after it."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
        member = agents.identity.identifier
        agents._stored.wallet.store.mark_sync_due(acme.identifier.digest, "", 0)
    syncing, go = threading.Event(), threading.Event()
    real = sync_local_feed

    def slow(*args: Any, **kwargs: Any) -> Any:
        syncing.set()
        go.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(troth.node.syncdue, "sync_local_feed", slow)
    settled: list[bool] = []

    def settle() -> None:
        with troth.Node.open("agents") as agents:
            settled.append(agents._stored.settle_due(acme.identifier, SystemClock().now()))

    settler = threading.Thread(target=settle, daemon=True)
    settler.start()
    try:
        assert syncing.wait(60)
        with caplog.at_level(logging.WARNING, logger="troth.node"), troth.Node.open("hub") as hub:
            node = hub._stored
            troth.node.traces.remove_member_as_authority(
                node, node.authority(), member, reason="left", clock=SystemClock()
            )
    finally:
        go.set()
        settler.join()
    assert not any("node 'agents' was not marked" in r.getMessage() for r in caplog.records)
    assert settled == [False]  # the removal's mark stands: its commit may postdate the sync
    assert _marks("agents", acme.identifier) == 1
    with troth.Node.open("agents") as agents:
        assert agents._stored.settle_due(acme.identifier, SystemClock().now())
    assert _marks("agents", acme.identifier) == 0


class _Stuck:
    """What `DueWatch` uses of a runtime whose sync of one authority's feed never ends (its
    node answers slowly, over the network): the marks read as the store holds them."""

    def __init__(self) -> None:
        self.stored: set[Identifier] = set()
        self.trust = SimpleNamespace(due=frozenset(), hosted=None, routes={}, read_due=self._read)
        self.worker = SimpleNamespace(run=self._run)

    def _read(self) -> None:
        self.trust.routes = dict.fromkeys(self.stored, "/tcp/127.0.0.1:9")
        self.trust.due = frozenset(self.stored)

    async def _run(self, function: Any, *args: Any) -> Any:
        return function(*args)

    async def sync_trusted_feed(self, authority: Identifier) -> int:
        await asyncio.Event().wait()  # never ends
        return 0


def test_a_slow_sync_holds_back_no_reading_of_newer_marks() -> None:
    """The sync of one marked authority's feed hangs: a mark of another authority made
    meanwhile is still read (its chains refused) within a poll or so, not once that sync
    ended (up to `FEED_SYNC_SECONDS` and more before)."""
    first, second = Identifier(bytes(32)), Identifier(bytes([1]) * 32)
    runtime = _Stuck()
    runtime.stored.add(first)
    watch = DueWatch(runtime)  # type: ignore[arg-type]

    async def main() -> bool:
        task = asyncio.create_task(watch.run())
        try:
            for _ in range(40):
                await asyncio.sleep(limits.DUE_POLL / 4)
                if runtime.trust.due == frozenset({first}):
                    break
            runtime.stored.add(second)  # a revocation by another authority marked the node
            for _ in range(40):
                await asyncio.sleep(limits.DUE_POLL / 4)
                if second in runtime.trust.due:
                    return True
            return False
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert asyncio.run(main())


def test_the_marks_a_sync_clears_go_in_one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A revocation loop leaves many marks standing (10,000: each revocation held them, so no
    sync could clear them): the sync after it clears them in one transaction, all or none,
    not one commit each (3.8 s of the storage worker with durability "full" here, every
    request of the node waiting on it)."""
    from troth.node.syncdue import clear_marks

    authority = Identifier(bytes(32))
    with troth.Node.open("agents") as agents:
        node = agents._stored
        store = node.wallet.store
        marks = [store.mark_sync_due(authority.digest, "", 0) for _ in range(3)]
        cleared: list[int] = []
        clear = store.clear_sync_due

        def failing(digest: bytes, mark: int | None = None) -> int:
            if cleared:
                raise troth.StorageError("disk full")
            cleared.append(clear(digest, mark))
            return cleared[-1]

        monkeypatch.setattr(store, "clear_sync_due", failing)
        with pytest.raises(troth.StorageError):
            clear_marks(node, authority, marks)
        monkeypatch.undo()
        assert store.marks_due(authority.digest) == marks  # none cleared: one transaction
        clear_marks(node, authority, marks)
        assert store.marks_due(authority.digest) == []
