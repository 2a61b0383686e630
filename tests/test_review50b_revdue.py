"""Review 50b, revdue 1 (review 49l's, left): a revocation an authority on this machine takes
itself marks every other node here that trusts it due a sync of its feed before it commits
(troth.node.localdue), and a running node reads its marks every `DUE_POLL` seconds and syncs
(troth.node.duewatch): a revoker killed before it told the daemons still has them refuse what
it revoked soon, not at their next maintenance round. A node whose store cannot be marked
fails no revocation; a mark standing costs at most one sync per wait, the waits doubling."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import troth
import troth.node.traces
from tests.support.cli import run
from tests.support.forked import troth_forked
from tests.support.revocation import (
    echo_as_sub,
    refused_as_revoked,
    sub_chain_and_running_agents,
)
from troth.clock import SystemClock
from troth.identity import Identifier
from troth.limits import DUE_POLL, DUE_RETRY_MAX
from troth.node.duewatch import DueWatch
from troth.storage import SqliteCredentialStore, SqliteDatabase


def _killed(*_: object) -> None:
    raise KeyboardInterrupt


def _marks(node: str, authority: Identifier) -> int:
    """How many marks of `authority` node `node`'s store holds (read apart from any node)."""
    path = Path(os.environ["TROTH_HOME"]) / "nodes" / node / "node.db"
    db = SqliteDatabase(path)
    try:
        return len(SqliteCredentialStore(db).marks_due(authority.digest))
    finally:
        db.close()


def test_a_running_node_refuses_what_a_killed_revoker_revoked_before_its_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """acme (on hub) revokes the link `agents` delegated to `sub`, its process killed after the
    commit and before it told the daemons running here: the daemon running `agents` found its
    mark, synced acme's feed and cleared it, and refuses the chain (before this, it admitted it
    until its next maintenance round, MAINTENANCE_SECONDS)."""
    chain, route = sub_chain_and_running_agents()
    try:
        assert echo_as_sub(route, monkeypatch) == "hi"
        with troth.Node.open("hub") as hub:
            acme = hub.authority()
            with monkeypatch.context() as patched:
                patched.setattr(troth.node.traces, "tell_local_nodes", _killed)
                with pytest.raises(KeyboardInterrupt):
                    acme.revoke(chain, reason="done")
            assert hub._stored.authority().store.revocation_tip()[0] == 1  # taken
            identifier = acme.identifier
        deadline = time.monotonic() + 20  # (well below the 30-s round: the poll is every 1 s)
        while _marks("agents", identifier) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _marks("agents", identifier) == 0  # its daemon synced, and cleared it
        refused_as_revoked(route, chain, monkeypatch)
    finally:
        run("node", "stop", "agents")


@pytest.mark.parametrize("command", ["revoke credential", "authority members remove"])
def test_a_running_node_refuses_what_a_revoker_killed_after_the_commit_revoked(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`troth revoke credential` (of the link `agents` delegated to `sub`) or `troth authority
    members remove` (of `agents`, whose credential the chain extends), the process really
    killed right after the authority's commit (crash point `authority.revoke.after-commit`):
    the daemon running `agents`, never told, found its mark, synced and refuses the chain."""
    chain, route = sub_chain_and_running_agents()
    try:
        assert echo_as_sub(route, monkeypatch) == "hi"
        with troth.Node.open("agents") as agents:
            member = str(agents.identity.identifier)
        with troth.Node.open("hub") as hub:
            identifier = hub.authority().identifier
        args: tuple[str, ...]
        if command == "revoke credential":
            args = ("revoke", "credential", chain.id.hex(), "--authority", "hub")
        else:
            args = ("authority", "members", "remove", member, "--authority", "hub")
        troth_forked(*args, crash="authority.revoke.after-commit")
        with troth.Node.open("hub") as hub:
            assert hub._stored.authority().store.revocation_tip()[0] >= 1  # taken
        deadline = time.monotonic() + 20  # (well below the 30-s round: the poll is every 1 s)
        while _marks("agents", identifier) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _marks("agents", identifier) == 0
        with pytest.raises(troth.ChannelError, match="revoked"):
            echo_as_sub(route, monkeypatch)
    finally:
        run("node", "stop", "agents")


def test_a_node_whose_store_cannot_be_marked_fails_no_revocation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Beside `agents` (marked), a node whose node.db is garbage, one whose node.db is gone,
    and one whose store is held locked by another writer: the revocation commits, each is
    logged unmarked (best effort), and the missing store is not made."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        member = agents.enroll(acme.ticket({"orders.access": "read"}))
        for name in ("garbage", "gone", "locked"):
            with troth.Node.open(name) as other:
                other.enroll(acme.ticket({"orders.access": "none"}))
        home = Path(os.environ["TROTH_HOME"]) / "nodes"
        for suffix in ("", "-wal", "-shm"):
            (home / "garbage" / f"node.db{suffix}").unlink(missing_ok=True)
            (home / "gone" / f"node.db{suffix}").unlink(missing_ok=True)
        (home / "garbage" / "node.db").write_bytes(b"not a database" * 512)
        blocker = sqlite3.connect(home / "locked" / "node.db", isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            assert acme.revoke(member, reason="left") == 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert hub._stored.authority().store.revocation_tip()[0] == 1
        assert dict(agents._stored.wallet.store.syncs_due()).get(acme.identifier.digest) == ""
        assert not (home / "gone" / "node.db").exists()
        assert _marks("locked", acme.identifier) == 0
        unmarked = {
            name
            for name in ("agents", "garbage", "gone", "locked")
            for r in caplog.records
            if f"node {name!r} was not marked" in r.getMessage()
        }
        assert unmarked == {"garbage", "locked"}


def test_a_refused_revocation_leaves_no_mark() -> None:
    """The authority refuses a revocation (the member removed twice): the marks it made at the
    other nodes go with it."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
        node = hub._stored
        authority = node.authority()
        ident = agents.identity.identifier
        troth.node.traces.remove_member_as_authority(
            node, authority, ident, reason="left", clock=SystemClock()
        )
        before = _marks("agents", acme.identifier)
        with pytest.raises(troth.AuthorityError):
            troth.node.traces.remove_member_as_authority(
                node, authority, ident, reason="again", clock=SystemClock()
            )
        assert _marks("agents", acme.identifier) == before == 1


class _Runtime:
    """What `DueWatch` uses of a runtime: marks that stand whatever the syncs do."""

    def __init__(self, authority: Identifier) -> None:
        self.syncs = 0
        self.trust = SimpleNamespace(
            due=frozenset({authority}),
            hosted=None,
            routes={authority: "node:hub"},
            read_due=lambda: None,
        )
        self.worker = SimpleNamespace(run=self._run)
        store = SimpleNamespace(marks_due=lambda digest: [1])  # (review 50j: read once parked)
        self.node = SimpleNamespace(wallet=SimpleNamespace(store=store))

    async def _run(self, function: Any, *args: Any) -> Any:
        return function(*args)

    async def sync_trusted_feed(self, authority: Identifier) -> int:
        self.syncs += 1
        return 1


def test_a_mark_that_stands_is_synced_at_most_once_per_wait() -> None:
    """A mark no sync clears (a revoker that holds it, an authority out of reach): the node
    syncs that feed once, then after waits doubling from DUE_POLL up to DUE_RETRY_MAX, not at
    every poll (a mark is no lever to make a node refetch without bound)."""
    authority = Identifier(bytes(32))
    runtime = _Runtime(authority)
    watch = DueWatch(runtime)  # type: ignore[arg-type]
    now = [0.0]
    watch.time = lambda: now[0]
    syncs_at: list[float] = []

    async def polls() -> None:
        while now[0] < 200:
            before = runtime.syncs
            await watch.poll()
            if runtime.syncs != before:
                syncs_at.append(now[0])
            now[0] += DUE_POLL

    asyncio.run(polls())
    gaps = [b - a for a, b in itertools.pairwise(syncs_at)]
    assert gaps[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert set(gaps[5:]) == {DUE_RETRY_MAX}
    runtime.trust.due = frozenset()  # synced at last: the wait is forgotten
    asyncio.run(watch.poll())
    assert watch.waiting() == frozenset()
