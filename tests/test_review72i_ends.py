"""Review 72i, ends: a channel with a party behind a node, over the node's connection, taken as
the node at the other end of it (each test failed before its fix).

Ends 1 (medium: a member closing its node's connection; review 72c's notices 2 bypassed). A
responder's `ChannelEnd.direct` ("its peer is the node at the other end of the connection") was
"message 1 came over a connection the peer made to this node" (review 23b), and an initiator's
"opened to a one-hop route". But a node that connected to this one (a hub H holding its name at
relay node R1) forwards over that connection what its members send there too (review 66q: a
member M of H reaching R1 through H, by a reply path it holds to R1 at H), and a one-hop route
to a relay name (`/relay/m`, R1's own caller) reaches a member behind H. So (a) M's channel
with R1, whichever side opened it, was `direct` at R1: when M went silent (it left, or stopped
answering on purpose), R1's keepalive closed it and, taking its silence for the connection's,
closed H's connection: H's own channels there, its name, every other party's channel over it,
once per silent channel; and (b) review 72c's `_at_other_end` (a `direct` channel whose peer
route is two hops) took M for H when M named no return route of its own: H puts its connection
to M in the route itself, so M's peer route at R1 is two hops too (as review 54o, channels 1,
found of the channel cap), and R1 sent M the notices meant for H (another sender's return route
with them) and took M's notices as H's. Now a channel is `direct` only when its peer route is
the connection and a channel end's reply address, nothing between
(`troth.node.channel_sources.from_other_end`, as `own_link` judges a connection this node made):
a responder's as its message 1 came, an initiator's as message 2 came (`ChannelManager._track`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.parties import make_channel_party
from tests.test_channel_manager import Net, run, until
from tests.test_review71w_wave4a import _connection, _link
from tests.test_review72c_notices import notices_over
from troth.channel import ChannelState, SecureChannel
from troth.node.channels import LISTENER
from troth.routing import Address, RoutedMessage

_AT_B = Address("worker", "tcp-m-at-b")
"""b's connection to its member m (b puts it in the route of what m sends through it)."""
_M_END = Address("worker", "chan-00000000000000aa.dec")
"""m's own channel end (its reply address)."""
_M = Address("relay", "m")
"""The hub's name for m (held over b's connection, one hop past it: review 66q)."""


def _member(net: Net, hub: Any, b: Any, reply: tuple[Address, ...], *, opens: bool) -> Any:
    """A member m of b behind b's connection to the hub: b forwards what m sends over it (its
    return route `reply`: m's own end, or none) with its connection to m put first, as a relay
    does, and what comes back for m to m (`opens`: m's channel opens the handshake; else it
    answers the hub's through the hub's name `m` for it, one hop past b's connection). m's
    channel (its end of the handshake driven here, as an attacker's own code reads it)."""
    (connection,) = b.transport.connections()
    connection.allowed.permit(_AT_B)
    party = make_channel_party(net.world.vault, now=net.clock.now)
    me = party.me((net.world.credential(party),))
    channel = SecureChannel(initiator=opens, me=me, trust=net.world.trust())

    async def to_m(message: RoutedMessage, _source: object) -> None:
        channel.receive(message.payload, net.clock())
        for packet in channel.outgoing():
            await b.router.route(RoutedMessage(message.return_route, (_AT_B, *reply), packet))

    b.router.register(_AT_B, to_m)
    (at_hub,) = [c for c in hub.transport.connections() if c.other is connection]

    async def to_name(message: RoutedMessage, _source: object) -> None:
        onward = (at_hub.address, _AT_B, *message.onward)
        await hub.router.route(RoutedMessage(onward, message.return_route, message.payload))

    hub.router.register(_M, to_name)
    return channel


@pytest.mark.parametrize("opener", ["it", "the hub"])
@pytest.mark.parametrize("who", ["b itself", "its member", "its member, no return route"])
def test_a_silent_party_behind_the_node_that_connected_leaves_its_connection(
    opener: str, who: str
) -> None:
    """Ends 1 (a): b connected to the hub; a channel over b's connection, opened by its peer
    or by the hub to a name of one hop (`/relay/b`, `/relay/m`), goes silent past the
    keepalive timeout. Its silence closes b's connection (the hub's silent hook) only when its
    peer is b itself; a member of b behind b's connection, with or without a return route of
    its own, is not b (before: each closed b's connection)."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b")
        (connection,) = b.transport.connections()
        if who == "b itself" and opener == "it":
            await b.manager.open((connection.address,))
        elif who == "b itself":
            await hub.manager.open((Address("relay", "b"),))
        else:
            reply = (_M_END,) if who == "its member" else ()
            channel = _member(net, hub, b, reply, opens=opener == "it")
            if opener == "the hub":
                await hub.manager.open((_M,))
            else:
                (first,) = channel.outgoing()
                await b.router.route(
                    RoutedMessage((connection.address, LISTENER), (_AT_B, *reply), first)
                )
                await until(lambda: channel.state is ChannelState.OPEN)
        (end,) = hub.manager.ends.values()
        assert end.channel.state is ChannelState.OPEN
        silent: list[Address] = []
        hub.manager.silent_hooks.append(silent.append)
        now = asyncio.get_running_loop().time()
        hub.manager.keepalive(now)  # (silence counts from the first round that saw its last)
        hub.manager.keepalive(now + 3600)
        await asyncio.gather(*list(hub.manager._flushing))
        assert end.enc not in hub.manager.ends  # closed by its keepalive
        assert silent == ([end.peer_route[0]] if who == "b itself" else [])

    run(test)


def test_a_member_with_no_return_route_is_not_sent_its_nodes_notice() -> None:
    """Ends 1 (b): a member behind the node `h` at the other end of a connection holds a
    channel with this relay over it, opened with no return route of its own (its peer route:
    the connection and `h`'s connection to it, two hops); a packet from another party behind
    `h` is dropped for a hop it reached that no worker serves: the notice goes over this
    relay's channel with `h` itself, never over the member's (before: the member's, as it
    came first, as in review 72c's notices 2 with one hop more)."""

    h = _connection()
    member, link = _link(h.address, "member"), _link(h.address, "h-link")
    member.peer_route = (h.address, Address("worker", "tcp-member-at-h"))
    assert asyncio.run(notices_over(h, (member, link))) == [link.enc]
