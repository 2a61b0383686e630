"""Review 54k, channels 1: open secure channels had no node-wide cap (issue 8).

Open channels peers opened were bounded per peer identity (64), per member (256, its delegates
included) and per source (256), but not per node: identities with no chain cost nothing on a
node that admits strangers (one that hosts an authority, to enrol them), so strangers from
many sources, each under its per-source share, held as many open channels (~17 KB each) as
they had sources, and the node's memory grew without a bound as sources multiplied.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, Peer, echo, run
from tests.test_review53o_refuted import AdmitAnyone
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.routing import parse_route

BOUND = 8
"""The node-wide bound the hub is given on open channels peers opened."""


async def open_as_stranger(net: Net, peer: Peer) -> ChannelEnd:
    """A channel from `peer` as a fresh identity showing no chain (free to mint)."""
    who = make_channel_party(net.world.vault, now=T)
    return await peer.manager.open(parse_route(HUB), me=who.me(()))


@pytest.mark.xfail(strict=True, reason="review 54k, channels 1: no node-wide channel cap")
def test_strangers_from_many_sources_hold_no_more_than_the_nodes_bound() -> None:
    """Ten sources, two channels each (their per-source limit), as fresh stranger identities:
    the hub holds at most BOUND open channels whatever the number of sources."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_source=2))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())  # strangers admitted
        sources = [net.peer(f"10.6.{n}.1") for n in range(10)]
        for source in sources:
            for _ in range(2):
                end = await open_as_stranger(net, source)
                assert await echo(source, end, "held") == "held"
        assert len(hub.manager.ends) <= BOUND, len(hub.manager.ends)

    run(test)
