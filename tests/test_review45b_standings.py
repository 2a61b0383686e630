"""Review 45b, the trust module's standing cache (troth.node.trust, `STANDING_CACHE`).

3. `NodeTrust.standing` remembers each peer's standing (up to 4,096, then emptied), keyed by
   the `VerifiedPeer` of a channel and holding it: a peer's entries (its identity, chains and
   credentials, ~7.5 MB when the cache is full) stayed after its channels closed, until 4,096
   other peers' took their place. A peer's entries are now dropped when its last channel to the
   node closes (`NodeTrust.forget_peer`, a closed hook of the channel manager); the bound stays.

The test was a strict xfail until the fix. Its member keeps its link to the hub from
reconnecting within the test (review 66a, channels 1): `channel_to(HUB)` hands out the link's
channel, and a link reconnecting within the wait below (a full-jitter draw near 0, about one
run in eight under load) held a fresh channel of the member for good, so the wait never ended.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.identity import Identifier
from troth.node.links import Backoff
from troth.node.runtime import ECHO, NodeRuntime
from troth.node.services import call
from troth.routing import parse_route

ROUNDS = 12


def _cached(hub: NodeRuntime, identifier: Identifier) -> int:
    """The hub's cached standings of `identifier`'s peers."""
    return sum(1 for entry in hub.trust._standings.values() if entry[0].identifier == identifier)


async def _closed(hub: NodeRuntime, identifier: Identifier) -> None:
    """Wait until the hub holds no channel of `identifier` (the close reached it)."""
    while any(
        end.peer is not None and end.peer.identifier == identifier
        for end in hub.channels.ends.values()
    ):
        await asyncio.sleep(0.01)


def test_a_closed_peers_standings_are_forgotten(tmp_path: Path) -> None:
    """3: a member opens a channel to the hub, calls its echo service (the hub judges its
    standing, cached) and closes the channel, 12 times: the hub's cache holds none of them."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        # its link to the hub (whose channel `channel_to` hands out) reconnects in 30 min
        member = await net.node("a", random=lambda: 0.5, backoff=Backoff(3600, 3600))
        await member.enroll(net.ticket(), "a")
        me = net.identifier(member)
        for n in range(ROUNDS):
            end = await member.channel_to(parse_route(HUB))
            assert await call(member.router, (end.enc, ECHO), "echo", n) == n
            assert _cached(hub, me) >= 1
            await end.close()
            await _closed(hub, me)
        assert _cached(hub, me) == 0

    run_memnet(test, tmp_path)
