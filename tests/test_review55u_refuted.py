"""Review 55u: attacks on the channel ends' cleanup that did not work.

A stranger that stops reading cannot keep its channel in a node's table (or its share of the
open-channel cap) by holding the CLOSE's write: the closes a node makes of a peer's channel
(eviction at the cap among them) forget the end before the CLOSE is flushed, in a task of its
own; only the closes the local side asks for (`ChannelEnd.close`) flush first (review 55u,
close 1, fixed there).
"""

from __future__ import annotations

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, run, until
from tests.test_review53o_refuted import AdmitAnyone
from tests.test_review55u_close import _first_hop_fails
from troth.errors import ChannelFailure
from troth.node.channels import ChannelLimits
from troth.routing import parse_route


def test_a_stranger_that_stops_reading_is_still_evicted_and_forgotten() -> None:
    """A stranger's channel whose first hop at the hub never takes a packet (a peer that does
    not read) gives way at the cap like any other: out of the hub's table and cap at once,
    its CLOSE still waiting on the write; the cap admits the newcomers."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_open_channels=8))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        stalled = []
        for n in range(16):
            source = net.peer(f"10.7.{n}.1")
            who = make_channel_party(net.world.vault, now=T)
            await source.manager.open(parse_route(HUB), me=who.me(()))
            await until(lambda: any(e.peer for e in hub.manager.ends.values()))
            for end in list(hub.manager.ends.values()):
                if end.peer is not None and end not in stalled:
                    _first_hop_fails(hub, end, None)  # this stranger reads no more
                    stalled.append(end)
        assert hub.manager.counters.evicted_open >= 4
        gone = [end for end in stalled if end.forgotten]
        assert len(gone) >= 4
        assert all(end.enc not in hub.manager.ends for end in gone)
        assert len(hub.manager.ends) <= 8
        for end in stalled:  # the rest, closed without a CLOSE (their writes never return)
            if not end.forgotten:
                hub.manager.close_end(end, ChannelFailure.NORMAL, "test over")

    run(test)
