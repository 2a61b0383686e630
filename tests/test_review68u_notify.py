"""Review 68u, notify: how a rotation on this machine tells the nodes here (review 68p,
cache 1), attacked.

notify 1 (medium: a rotation's supersession reaches no other node here when the node hosting
the authority announces it itself) Review 68p made `announce_locally` (the CLI's and the API's
announcement, and a daemon's announcement to an authority hosted by another node here) mark
the home's other nodes due a sync of the authority's feed before its commit and tell their
daemons after it. But a running node announcing a pending rotation of one of its own local
identities to the authority it hosts itself (`Announcer._announce_hosted`: the maintenance
round after `troth identity rotate` whose announcement failed or was killed, the node's first
round when it starts) appended the supersession and only re-read its own store: no other node
here was marked due a sync, nor was a daemon asked to sync. A program deciding on another
node's `Node.feed` kept the copy from before, which did not supersede the history a thief's
backup shows. Now that path marks and tells as `announce_locally` does (`rotated_here`, and
the authority service's telling thread: `NodeRuntime._tell_hosted`).

notify 2 (medium: the same, for a rotation announced over the network) A member on another
machine (or reaching the authority by a route) announcing its rotation to the authority this
daemon hosts (service `authority`, method `rotated`) appended the supersession and told no
daemon running here, though a link revocation taken the same way does (review 48c, revocation
3). Now `rotated` tells them as `revoke` does, once a supersession was appended.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import troth
import troth.node.daemon
import troth.node.traces
from tests import test_review67f_secrets as review67f
from tests.support.killed import killed_after
from tests.support.nodes import MemNet, run_memnet
from tests.support.public_api import READ, Agents
from troth.clock import SystemClock
from troth.node.node import open_node
from troth.node.rotation import rotate_local

world = review67f.world  # acme's hub (node `acme`) hosting the authority, `agents` a member


def _rotated_unannounced(who: str) -> None:
    """`who` of node `acme` rotated by another process killed before it announced."""

    def work() -> None:
        with open_node("acme") as node:
            rotate_local(node, who, clock=SystemClock(), compromised=True)

    assert killed_after(0, work) == 0


def test_notify1_the_hosting_node_announcing_its_own_marks_the_other_nodes(
    world: Agents, troth_home: Path
) -> None:
    """`ops` (on the hub, a member of acme) rotated, its announcement left pending; the hub
    started (its first round announces it to the authority it hosts): `gate`, open in a
    program deciding on `gate.feed(acme)` with a fresh copy, reads a feed superseding the
    history before the rotation."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    with troth.Node.open("gate") as gate:
        gate.enroll(world.acme.ticket(READ))
        held = gate.feed(world.acme.identifier)
        assert held is not None
        assert held.supersession(ops.identifier) is None
        _rotated_unannounced("ops")

        async def main() -> None:
            async with world.hub.serve(listen=("127.0.0.1", 0)):
                pass  # (its first maintenance round ran: the announcement)

        asyncio.run(main())
        with open_node("acme") as hub:
            assert hub.wallet.unannounced("ops")[1] == []  # announced by the hub's round
        feed = gate.feed(world.acme.identifier)
        assert feed is not None
        assert feed.supersession(ops.identifier) is not None


def _told(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, object]]:
    """The control ops sent to the daemons of the home, every node taken as running (stood in
    for, as in review 63u: only the telling can be checked without timing)."""
    told: list[tuple[str, str, object]] = []

    def status(home: object, name: str) -> dict[str, object]:
        return {"name": name, "running": True}

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        told.append((name, op, arguments))

    monkeypatch.setattr(troth.node.daemon, "node_status", status)
    monkeypatch.setattr(troth.node.traces, "_control", control)
    return told


def _tellings_ended() -> None:
    for thread in threading.enumerate():
        if thread.name == "troth-tell-local-nodes":
            thread.join(5)


def test_notify1_the_hosting_node_announcing_its_own_tells_the_daemons_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's local identity `ops`, a member of the hub's authority, rotated; the hub's
    announcement of it asks the daemon running the member `m` to sync the feed."""

    async def test(net: MemNet) -> None:
        await net.member("m")
        assert net.hub is not None
        hub = net.hub
        hub.node.identities.create(now=net.clock.now(), name="ops")
        await hub.enroll(net.ticket(), "ops")
        told = _told(monkeypatch)
        hub.node.identities.rotate("ops", now=net.clock.now())
        (row,) = await hub.announce_rotations("ops")
        assert row["announced"] is True
        _tellings_ended()
        assert ("m", "feed.sync", {"authority": str(net.authority.identifier)}) in told

    run_memnet(test, tmp_path / "home", budget=30)


def test_notify2_a_rotation_announced_over_the_network_tells_the_daemons_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """n (a member, reaching the hub by its route) rotates and announces it: the daemon
    running the other member `m` is asked to sync the feed."""

    async def test(net: MemNet) -> None:
        n = await net.member("n")
        await net.member("m")
        told = _told(monkeypatch)
        n.node.identities.rotate("n", now=net.clock.now())
        (row,) = await n.announce_rotations()
        assert row["announced"] is True
        _tellings_ended()
        assert ("m", "feed.sync", {"authority": str(net.authority.identifier)}) in told

    run_memnet(test, tmp_path / "home", budget=30)
