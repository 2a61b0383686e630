"""Review 65w, policy distribution: attacks that did not work (each test fails if the defence
it names breaks)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

from tests.support.gates import T, make_world
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_gates_distribution import bundle, revision_of, until
from troth.credentials import RevocationKind
from troth.errors import PolicyError, RemoteError
from troth.gates import BundleStore, SqliteBundleTable
from troth.identity import Identifier
from troth.node.runtime import NodeRuntime
from troth.node.services import call
from troth.node.services.policy import POLICY
from troth.storage import SqliteDatabase


def _at(runtime: NodeRuntime, authority: Identifier, revision: int) -> bool:
    return revision_of(runtime, authority) == revision


def test_two_racing_pushes_end_at_the_higher_revision_whatever_their_arrival_order(
    tmp_path: Path,
) -> None:
    """Revisions 2 and 3 pushed at once by two members (and 4 and 5 in the other order): the
    hub and its subscriber end at the higher one, never the one that arrived last."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        await b.maintain()  # subscribes
        end_b = await b.channel_to(route(HUB))
        end_c = await c.channel_to(route(HUB))
        for low, high in ((2, 3), (5, 4)):
            first, second = bundle(net, low), bundle(net, high)
            await asyncio.gather(
                call(b.router, (end_b.enc, POLICY), "push", [first]),
                call(c.router, (end_c.enc, POLICY), "push", [second]),
                return_exceptions=True,  # the lower one, when it comes second, is refused
            )
            top = max(low, high)
            assert revision_of(net.hub, authority) == top  # type: ignore[arg-type]
            await until(functools.partial(_at, b, authority, top), timeout=3)
            await c.maintain()
            assert revision_of(c, authority) == top

    run_memnet(test, tmp_path)


def test_a_subscriber_offline_during_pushes_takes_the_newest_at_its_restart(
    tmp_path: Path,
) -> None:
    """A subscriber stopped while revisions 2 and 3 are installed, then restarted on its node
    (its subscription ended with its channel): its start's pull brings revision 3; a replay of
    revision 2 to it after is refused as a rollback."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        hub.policies.accept(bundle(net, 1), now=net.clock.now())
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        await b.maintain()
        assert revision_of(b, authority) == 1
        await b.stop()
        two = bundle(net, 2)
        for data in (two, bundle(net, 3)):
            await hub.worker.run(hub.policies.accept, data, now=net.clock.now())
        again = NodeRuntime(b.node, clock=net.clock, transport=net.transport("host-agent-b"))
        net.runtimes.append(again)
        await again.start(("host-agent-b", 4100))
        await again.maintain()
        assert revision_of(again, authority) == 3
        end = await c.channel_to(route("/tcp/host-agent-b:4100"))
        with pytest.raises(RemoteError, match="not newer"):
            await call(c.router, (end.enc, POLICY), "push", [two])
        assert revision_of(again, authority) == 3

    run_memnet(test, tmp_path)


def test_a_revoked_admins_bundle_denies_on_every_store_and_its_older_and_newer_are_refused(
    tmp_path: Path,
) -> None:
    """A policy-admin's revision 5 installed, then the admin revoked: the store holding it
    denies (no engine), so does a store opened again on the same table (a restart); the
    admin's older revision 4 (issued before) replayed, and its revision 6 signed since, are
    both refused; the authority's revision 2, issued since, replaces it."""
    world = make_world()
    authority = world.authority.identifier
    db = SqliteDatabase(tmp_path / "node.db")
    store = BundleStore(world.verifier, SqliteBundleTable(db))
    older = world.bundle(revision=4, by_admin=True, now=T)
    store.accept(world.bundle(revision=5, by_admin=True, now=T + 1), feeds=world.feeds(), now=T + 5)
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 100)
    for held in (store, BundleStore(world.verifier, SqliteBundleTable(db))):
        held.reload(now=T + 101)
        with pytest.raises(PolicyError):
            held.engine(authority, feed=world.feed, now=T + 101)
        assert held.replaceable(authority, world.feed)
    with pytest.raises(PolicyError):
        store.accept(older, feeds=world.feeds(), now=T + 102)
    with pytest.raises(PolicyError):
        store.accept(
            world.bundle(revision=6, by_admin=True, now=T + 200), feeds=world.feeds(), now=T + 201
        )
    assert store.active(authority).bundle.body.revision == 5  # type: ignore[union-attr]
    store.accept(world.bundle(revision=2, now=T + 200), feeds=world.feeds(), now=T + 201)
    store.engine(authority, feed=world.feed, now=T + 202)  # in force
    db.close()
