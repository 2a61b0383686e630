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

Ends 2 (low-medium): the same assumption in the per-source channel limits: the hub counted every
channel opened over a connection it accepted against the connecting host, members that node
forwards over it included, so they could hold its whole budget there and refuse its own next
channel. Kept as a strict xfail here; fixed by review 72p (ends2 1,
tests/test_review72p_ends2.py: the parties behind a node hold at most the limit less the room
kept for the node's own).
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


class _Behind:
    """Members behind b's connection to the hub: b forwards what they send over it with its
    connection to them put first, as a relay does, and what comes back for them to them, to
    the channel named next (their reply address; none: the one that named none). Their ends
    of the handshakes are driven here, as an attacker's own code reads them."""

    def __init__(self, net: Net, hub: Any, b: Any) -> None:
        self.net, self.b = net, b
        self.channels: dict[Address | None, tuple[SecureChannel, Address | None]] = {}
        (self.connection,) = b.transport.connections()
        self.connection.allowed.permit(_AT_B)
        b.router.register(_AT_B, self._to_member)
        (at_hub,) = [c for c in hub.transport.connections() if c.other is self.connection]

        async def to_name(message: RoutedMessage, _source: object) -> None:
            onward = (at_hub.address, _AT_B, *message.onward)
            await hub.router.route(RoutedMessage(onward, message.return_route, message.payload))

        hub.router.register(_M, to_name)  # the hub's name for m, one hop past b's connection

    def channel(self, reply: Address | None, *, opens: bool) -> SecureChannel:
        """m's channel with reply address `reply` (None: it names none); `opens`: it sends
        message 1 over b's connection to the hub's listener, else it answers the hub's."""
        net = self.net
        party = make_channel_party(net.world.vault, now=net.clock.now)
        me = party.me((net.world.credential(party),))
        channel = SecureChannel(initiator=opens, me=me, trust=net.world.trust())
        self.channels[reply] = (channel, reply)
        if not opens:  # the hub's message 1 comes to m's listener
            self.channels[LISTENER] = (channel, reply)
        return channel

    async def open(self, reply: Address | None) -> SecureChannel:
        """m opens a channel to the hub over b's connection (reply address `reply`)."""
        channel = self.channel(reply, opens=True)
        (first,) = channel.outgoing()
        await self._send(first, (self.connection.address, LISTENER), reply)
        await until(lambda: channel.state is ChannelState.OPEN)
        return channel

    async def _to_member(self, message: RoutedMessage, _source: object) -> None:
        channel, reply = self.channels[message.onward[0] if message.onward else None]
        channel.receive(message.payload, self.net.clock())
        for packet in channel.outgoing():
            await self._send(packet, message.return_route, reply)

    async def _send(
        self, packet: bytes | bytearray, route: tuple[Address, ...], reply: Address | None
    ) -> None:
        back = (_AT_B,) if reply is None else (_AT_B, reply)
        await self.b.router.route(RoutedMessage(route, back, packet))


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
            behind = _Behind(net, hub, b)
            reply = _M_END if who == "its member" else None
            if opener == "the hub":
                behind.channel(reply, opens=False)
                await hub.manager.open((_M,))
            else:
                await behind.open(reply)
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
