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
2. The pin is kept only once set (`Links.opened`): an authority's link has none after the node
   restarts (links live in memory; `_sync_links` makes them with the authority, no peer), and
   the first channel opened to its route, pinned or not, sets it. The node knows who must
   answer there (`Link.authority`) but does not ask. While the hub is down, mallory (a
   member) answers at its address; b restarts, its operator's unpinned `message send` there
   is hers, and b's authority link is pinned to her (CONNECTED, over her channel). Once the
   hub is back, b's feed channel (pinned to the authority) connects, but `Links.opened`
   refuses it as "not mallory"; every attempt of the link (`_restore`, pinned to her) is
   answered by the hub, refused, and drops b's connection to the hub (1 above): seen for 8 s
   in a scratch run, RECONNECTING with "expected mallory, but the hub answered" each time;
   b never gets its link (relays, feed sync after reconnects) back until it restarts again:
   review 23b relays 3's outcome, through the first pin. Fix: a link to an authority's route
   is pinned to that authority from its creation (`pin = link.peer or link.authority`), so
   a channel another identity answers there is never its own; a scratch run with that one
   change passes the test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.test_reconnect import FAST, crash_and_restart_hub, link_state
from troth.credentials import Attributes
from troth.errors import ChannelError, ChannelFailure
from troth.node.channels import LISTENER
from troth.node.links import LinkState
from troth.node.runtime import NodeRuntime
from troth.transport import Listener, MemoryTransport


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


def test_a_restarted_nodes_authority_link_is_not_pinned_to_another(tmp_path: Path) -> None:
    """b restarts while the hub is down and mallory (a member) answers at its address; b's
    operator sends an unpinned message there (she answers) and she leaves. b's link to its
    authority stays the hub's, and once the hub is back it connects there."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(), "b")
        mallory = await net.node("mallory", listen=("mallory", 4000))
        await mallory.enroll(net.ticket(), "mallory")
        hub_id = str(net.authority.identifier)
        assert b.link_rows()[0].peer == hub_id
        await b.stop()
        restarted: list[NodeRuntime] = []

        async def mallory_answers() -> None:
            at_hub = Listener(addresses=frozenset({LISTENER}), kinds=frozenset({"relay"}))
            await mallory.tcp.listen("hub", 4000, at_hub)
            again = NodeRuntime(
                b.node, clock=net.clock, transport=net.transport("host-b"), backoff=FAST
            )
            net.runtimes.append(again)
            restarted.append(again)
            await again.start(None)
            assert await again.send_message(f"{HUB}/service/echo", "hub?") == "hub?"  # hers
            (row,) = again.link_rows()
            assert row.authority == hub_id
            assert row.peer in (None, hub_id)  # not hers: the link is the hub authority's
            assert isinstance(mallory.tcp, MemoryTransport)
            net.network._unbind(mallory.tcp)  # she leaves; her channel with b stays open

        await crash_and_restart_hub(net, down=mallory_answers)
        (again,) = restarted
        for _ in range(3):  # maintenance rounds: the feed's channel, pinned to the authority
            await again.refresh_feeds()  # (the first may meet her connection still open)
            if link_state(again) is LinkState.CONNECTED:
                break
        assert link_state(again) is LinkState.CONNECTED
        assert again.link_rows()[0].peer == hub_id

    run_memnet(test, tmp_path / "home", budget=30)


def test_a_pinned_channel_the_peer_itself_refuses_leaves_the_connection(tmp_path: Path) -> None:
    """The peer at a pinned one-hop route is the one expected and refuses us itself (its
    CLOSE PEER_NOT_ALLOWED after the handshake verified it): the connection goes to the right
    node, and is kept (no link pins there: only the refusal's origin tells)."""

    async def test(net: MemNet) -> None:
        carol = await net.node("carol", listen=("carol", 4000), services=("echo",))
        await carol.enroll(net.ticket(), "carol")  # its channels: members of the hub only
        carol_id = net.identifier(carol)
        stranger = await net.node("stranger")
        with pytest.raises(ChannelError) as refused:
            await stranger.channel_to(
                route("/tcp/carol:4000"), expect=carol_id, also_trust=frozenset({carol_id})
            )
        assert refused.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        assert refused.value.by_peer
        (connection,) = stranger.tcp.connections()
        for _ in range(20):  # (a dropped connection closes within a few turns)
            await asyncio.sleep(0.01)
        assert connection in stranger.tcp.connections()

    run_memnet(test, tmp_path / "home", budget=30)
