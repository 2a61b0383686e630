"""Review 65s: attacks on review 65p's relay cut-off and review 65l's re-check close that held.

1. A refused owner creating its name again at once (racing the refusal with a new
   registration over the same channel): `create` decides on the channel's caller as it shows
   now, so the removed member is denied and the name stays held, nothing forwarded.
2. A refusal repeated round after round (an owner kept refused, or the feed hook re-deciding
   on every feed installed): the cut-off runs once, when a relay is newly refused; a later
   round that refuses it again walks no connection (no O(connections x relays) per round).
3. Review 65l's close on a local failure at a re-check, turned on other peers: node.db held
   write-locked by another process (what a flood of writing requests would at most cause, for
   far shorter) closes no channel whose peer is already stored: a steady re-check writes
   nothing (store-or-extend), so it neither waits for the lock nor fails.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.relay_tcp import hub_and_relayed_b
from tests.test_review55a_refuted import Stranger, with_stranger
from troth.channel import ChannelState
from troth.errors import Denied
from troth.node.access import AccessRequest, Decision
from troth.transport.connection import Connection
from troth.transport.settings import TcpSettings


def test_a_refused_owner_cannot_create_its_name_again_at_once(tmp_path: Path) -> None:
    """1: b is removed and shows no chain; the round refuses relay b; b asks for it again over
    the same channel: denied, and the name stays held (not up)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        net.authority.remove_member(net.identifier(b), now=net.clock.now())
        to_hub = await b.channel_to(route(HUB))
        await to_hub.present(())
        await hub.maintain()
        relays = hub.host.services["relay"]
        assert relays.status()["b"]["state"] != "up"
        with pytest.raises(Denied, match="holds no credential"):
            await b.create_relay("b", HUB)
        assert relays.status()["b"]["state"] != "up"

    run_memnet(test, tmp_path / "home", budget=30)


def test_a_relay_refused_again_walks_no_connection(tmp_path: Path) -> None:
    """2: b's name refused once (cut off); the next rounds refuse it again: the node's
    connections are not listed again."""

    async def test(net: Stranger) -> None:
        def decide(request: AccessRequest) -> Decision:
            return Decision(False, ("revoked",))

        relay = net.relay
        listed: list[int] = []
        sources = relay.sources
        assert sources is not None

        def counted() -> list[Connection]:
            every = list(sources())
            listed.append(len(every))
            return every

        relay.sources = counted
        relay.decide = decide
        relay._recheck(relay.clock())
        assert relay.relays["b"].refused
        assert len(listed) == 1
        for _ in range(3):
            relay._recheck(relay.clock())
        assert len(listed) == 1

    with_stranger(tmp_path, test)


def test_a_write_locked_store_closes_no_stored_peers_channel_at_a_recheck(tmp_path: Path) -> None:
    """3: another connection holds node.db's write lock; the hub re-checks b's channel (its
    history and chains stored at the handshake): it stays open."""

    async def main() -> None:
        async with hub_and_relayed_b(tmp_path, TcpSettings()) as (hub, _b):
            db = hub.node.db
            db.busy_timeout = 0.05  # a write would fail at once
            ends = [e for e in hub.channels.ends.values() if e.peer is not None]
            assert ends
            holder = sqlite3.connect(db.path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                await hub.channels.check_peers()
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert all(e.channel.state is ChannelState.OPEN for e in ends)

    asyncio.run(asyncio.wait_for(main(), 60))
