"""Review 23b (a node under hostile peers: channels through a relay).

1. a channel whose keepalive runs out closes its connection too when the channel's peer route
   has two hops ("the peer is the connection's other end": docs/protocols.md, "Dead
   connections"). The route is the return route message 1 (or message 2) came with, and all of
   it past the relay's own hop is the peer's to choose: a member reaching a relayed node b
   through the hub sends message 1 with an empty return route, so b's end of the channel has
   the peer route (b's connection to the hub, the hub's connection to the member) — two hops.
   The member then goes silent: when b's keepalive closes that channel, b closes its connection
   to the hub, and with it its own channel to the hub (its link), every relayed channel and its
   relay name (held, "relay not found" until b is back). One handshake per keepalive timeout
   (64 channels per identity, identities free on a node hosting an authority) keeps b
   reconnecting.

2. the same from the other side: a node that opens a channel through the hub to a relayed
   peer takes the peer route from message 2, whose return route the peer chooses; a relayed
   member answering with none of its own makes the route two hops, then goes silent (it drops
   the channel without a word), and the node's keepalive closed its own connection to the hub.

Each test asserts the secure behaviour and was a strict xfail until its fix. Fixed: 1. whether a
channel's peer is its connection's other end is what the node knows (`ChannelEnd.direct`: a
channel it opened to a one-hop route, or one a peer opened over a connection that peer made),
not the peer route's length; a first fix (no other channel over the connection heard its peer
within the timeout) was replaced: on a blackholed connection a relayed channel that last heard
later than the link kept the dead connection open past the link's timeout.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - ran (control for relay tcp 1): the same flood with m reading is answered at once, so the
#   stall, not b's load, holds the other member's echo.
# - read: request ids: one `Calls` per first hop (a channel's `.enc`), ids from a random start,
#   its reply worker reachable only through that channel; a service answers along the
#   request's return route, whose first hop is the channel it came through: no answer reaches
#   another channel's caller. Replaying a channel's frames on another fails its AEAD (keys
#   per channel); within one, the replay window.
# - read: amplification: every answer (route error, message 2, a service's) goes back along
#   a return route whose first hop the receiving transport set (the sender's own connection),
#   and the route error is never larger than what it answers.
# - read: standings are cached by id(peer) with the peer object kept in the entry, so an id
#   reused after garbage collection cannot return another peer's standing.
# - read (low, not kept): policy subscriptions are decided at `get` and pushed until the
#   channel closes: a removed member showing no chain (as in relays 1) keeps receiving its
#   former authority's new bundle revisions (bundles are signed, not secret; the rule bounds
#   who makes the node verify one).
# - read (low, not kept): a stranger's junk frames cost one AEAD attempt each (~4,700 per
#   128 KiB packet of empty frames) and never close a channel, but only a party that knows
#   the channel's random `.dec` address — on the path, where it can drop everything — can
#   send them.

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.channel import ChannelState, SecureChannel
from troth.node.channels import LISTENER, ChannelEnd, ChannelLimits
from troth.routing import Address, RoutedMessage
from troth.transport.memory import MemoryConnection

QUICK = ChannelLimits(keepalive_interval=0.3, keepalive_timeout=1.0)


async def until(condition: Callable[[], bool], timeout: float = 8.0) -> None:
    """Wait until `condition()` holds (the test fails after `timeout` s)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_silent_relayed_peer_with_a_short_return_route_leaves_the_hub_connection(
    tmp_path: Path,
) -> None:
    """Mallory, a member with no rights, opens a channel to b through the hub's relay with an
    empty return route, then goes silent. b's keepalive closes that channel; b's connection to
    the hub, its own channel there and its relay stay up (its channel to the hub hears the
    hub's PONGs: the connection is not dead)."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", limits=QUICK)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        mallory = await net.member("mallory")
        (link,) = [e for e in b.channels.ends.values() if e.peer_route]  # b's channel to hub
        hub_connection = b.tcp.connection(link.peer_route[0])
        assert isinstance(hub_connection, MemoryConnection)

        # mallory's raw channel: what arrives with no onward route is hers to read
        arrived: asyncio.Queue[RoutedMessage] = asyncio.Queue()
        mallory.tcp.observers.append(
            lambda _, message: None if message.onward else arrived.put_nowait(message)
        )
        mine = await mallory.tcp.connect("hub", 4000)
        channel = SecureChannel.initiate(me=mallory.channels.me(), trust=mallory.channels.trust())
        (first,) = channel.outgoing()
        to_b = (mine.address, Address("relay", "b"), LISTENER)
        await mallory.router.route(RoutedMessage(to_b, (), first))  # no return route
        second = await asyncio.wait_for(arrived.get(), 5)
        channel.receive(second.payload, net.clock.now())
        back = second.return_route  # (mallory's connection, the hub's to b, b's end)
        for packet in channel.outgoing():
            await mallory.router.route(RoutedMessage(back, (), packet))
        accepted = await asyncio.wait_for(arrived.get(), 5)
        channel.receive(accepted.payload, net.clock.now())
        assert channel.state is ChannelState.OPEN
        (theirs,) = [e for e in b.channels.ends.values() if len(e.peer_route) == 2 and e != link]
        assert theirs.peer_route[0] == link.peer_route[0]  # b's connection, the hub's to her

        # mallory goes silent: b's keepalive closes her channel, and only hers
        await until(lambda: theirs.enc not in b.channels.ends)
        await asyncio.sleep(0.2)  # what the close set off (a connection closed) has run
        assert not hub_connection.closed.is_set()
        assert link.enc in b.channels.ends
        assert net.hub is not None
        assert net.hub.host.services["relay"].status()["b"]["state"] == "up"

    run_memnet(test, tmp_path / "home", budget=30)


def test_a_silent_relayed_responder_with_a_short_return_route_leaves_the_hub_connection(
    tmp_path: Path,
) -> None:
    """b opens a channel to mallory's relay at the hub; mallory's node answers message 2 (and
    everything after it) with no return route of its own, then forgets the channel without a
    word. b's keepalive closes b's end; b's connection to the hub and its channel there stay."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", limits=QUICK)
        await b.enroll(net.ticket(), "b")
        mallory = await net.node("mallory")
        await mallory.enroll(net.ticket(**{"troth.relay": "mallory"}), "mallory")
        await mallory.create_relay("mallory", HUB)
        add = mallory.channels._add
        ends: list[ChannelEnd] = []

        def short_routes(*args: Any, **options: Any) -> ChannelEnd:
            end = add(*args, **options)
            ends.append(end)

            async def flush() -> None:  # every packet with no return route
                for packet in end.channel.outgoing():
                    await mallory.router.route(RoutedMessage(end.peer_route, (), packet))

            end.flush = flush  # type: ignore[method-assign]
            return end

        mallory.channels._add = short_routes  # type: ignore[method-assign]
        arrived: set[asyncio.Task[None]] = set()

        def hers_to_read(_: object, message: RoutedMessage) -> None:  # no address of hers in
            if not message.onward and ends:  # what comes back: she reads it off the wire
                task = asyncio.ensure_future(ends[-1].from_peer(message, None))
                arrived.add(task)
                task.add_done_callback(arrived.discard)

        mallory.tcp.observers.append(hers_to_read)
        link = await b.channel_to(route(HUB))
        hub_connection = b.tcp.connection(link.peer_route[0])
        assert isinstance(hub_connection, MemoryConnection)
        to_mallory = await b.channels.open(route(f"{HUB}/relay/mallory"))
        assert len(to_mallory.peer_route) == 2  # b's connection, the hub's to mallory
        mallory.tcp.observers.remove(hers_to_read)  # silent from now on: b's PINGs go nowhere

        await until(lambda: to_mallory.enc not in b.channels.ends)
        await asyncio.sleep(0.2)  # what the close set off (a connection closed) has run
        assert not hub_connection.closed.is_set()
        assert link.enc in b.channels.ends

    run_memnet(test, tmp_path / "home", budget=30)
