"""Review 25 (relays and links): review 23b relays 3's fix drops the connection to a one-hop
route when a channel pinned to an identity is refused there (`NodeRuntime.channel_to`: a
ChannelError PEER_NOT_ALLOWED, pinned, `len(route) == 1`), "which goes to the wrong node". It
does not ask which node the connection goes to: an open channel over it may be answered by the
very identity a link is pinned to (the connection goes to the right node), and
PEER_NOT_ALLOWED is also what the expected peer itself answers when it refuses us.

1. b is linked to the hub (its relay `b` up there). b's operator tries a ticket whose address
   is the hub's (`/tcp/hub:4000`) but whose authority is another one (globex: a mistaken or
   hostile ticket; any pinned caller expecting another identity at that address does the
   same, e.g. a `traces` pin in node.json naming a collector that is not the hub). The
   enrollment's channel, pinned to globex, is answered by the hub: refused, as it should be,
   and then b drops its one connection to the hub — the link's channel, relay `b` and every
   channel relayed to b over it go (the link reconnects after its backoff). What the
   attacker controls: the text of a ticket b is asked to redeem; what it gains: b's hub
   connection cut each time (and b's relayed peers' channels with it). Fix: drop the
   connection only when no open channel over it is answered by the identity a link pins at
   that route (or by any verified identity the caller did not expect: the connection then
   goes to a node that is not the one expected) and not when the refusal is the peer's own
   close.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_reconnect import FAST, link_state
from troth.credentials import Attributes
from troth.errors import ChannelError, ChannelFailure
from troth.node.links import LinkState


@pytest.mark.xfail(
    strict=True,
    reason="review 25: a channel to the hub's address pinned to another identity (a ticket "
    "naming another authority there) is refused and b drops its connection to the hub: its "
    "link, relay and relayed channels go",
)
def test_a_pin_refused_at_the_hubs_address_leaves_the_hub_connection(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        assert link_state(b) is LinkState.CONNECTED
        link = b.links.links[HUB]
        held = link.end
        assert held is not None
        _, globex, _ = await globex_over_tcp(net)
        wrong = globex.create_ticket(
            creator=globex.identifier,
            attributes=Attributes({"globex.team": "desk"}),
            address=HUB,
            now=net.clock.now(),
        )
        with pytest.raises(ChannelError) as refused:
            await b.enroll(str(wrong), "b")
        assert refused.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        # the hub's connection was not the wrong node's: b keeps its link channel over it
        for _ in range(100):  # (a dropped connection closes its channels within a few turns)
            await asyncio.sleep(0.01)
            if link.end is not held:
                break
        assert link.end is held
        assert held.enc in b.channels.ends
        assert link_state(b) is LinkState.CONNECTED

    run_memnet(test, tmp_path / "home", budget=30)
