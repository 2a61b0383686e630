"""Review 73g: attacks on who a relay takes for the node at the other end of a connection (review
72c, notices 2; review 72i, ends 1), as a member behind a hub and as a stranger connecting
directly, that did not work, each a passing test that fails if the defence it names breaks.

1. A second hop shaped like a channel end's reply address: only `chan-<16 lowercase hex>.dec`
   makes a route of two hops the node's own (`from_other_end`); a channel end's `.enc` (what a
   hub's channel end puts first for the messages it decrypts), a connection's address, a relay
   name, or a near miss of the shape are a party behind the node.
2. Probing who is connected through the relay's answers: a request from a channel into another
   party's connection address at the relay is answered as one into an address nobody holds
   (the router asks what the channel may reach before what is served), naming only the hop the
   sender named and the sender's own channel: no connection's network address, no difference.
3. A member closing its own channel (a CLOSE, then unauthenticated bytes into the hub's end of
   it): its channel closes, the hub's connection is not taken for dead (no silent hook) and
   the hub's own channel over it stays open.
4. The hub reconnecting: its new connection has an address of its own (a fresh random part),
   the old connection's channels all closed with it; over the new one the hub's own channel is
   `direct` and its member's is not, as they were over the old one, and the member's silence
   closes only the member's channel (no state kept by the old address decides the new one's).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.test_channel_manager import Net, run, until
from tests.test_review72i_ends import _AT_B, _M, _M_END, _Behind
from troth.channel import ChannelState
from troth.errors import RemoteError, RoutingError
from troth.node.channel_ends import ChannelEnd
from troth.node.channel_sources import from_other_end
from troth.node.services import call
from troth.routing import Address

_ECHO = Address("service", "echo")


def test_only_a_channel_reply_address_second_makes_a_route_the_nodes_own() -> None:
    """Refuted 1."""
    connection = Address("worker", "tcp-00000000000000c1")
    own = Address("worker", "chan-0123456789abcdef.dec")
    assert from_other_end((connection, own))
    for second in (
        Address("worker", "chan-0123456789abcdef.enc"),
        Address("worker", "chan-0123456789ABCDEF.dec"),
        Address("worker", "chan-0123456789abcde.dec"),
        Address("worker", "chan-0123456789abcdef.dec.x"),
        Address("worker", "tcpabc-h01234567-0123456789abcdef"),
        Address("relay", "chan-0123456789abcdef.dec"),
    ):
        assert not from_other_end((connection, second)), second
    assert not from_other_end((connection, own, own))
    assert not from_other_end((connection,))


def test_a_request_into_another_partys_connection_is_answered_as_into_nothing() -> None:
    """Refuted 2."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        await net.relayed(hub, "b")
        (taken,) = hub.transport.connections()
        stranger = net.peer("10.0.9.9")
        await stranger.transport.connect("hub", 4000)
        end = await stranger.manager.open((Address("tcp", "hub:4000"),))
        nobody = Address("worker", taken.address.value[:-4] + "0000")
        answers = []
        for hop in (taken.address, nobody):
            try:
                await call(stranger.router, (end.enc, hop, _ECHO), "echo", "x", timeout=5)
            except (RemoteError, RoutingError) as exc:
                answers.append(str(exc).replace(str(hop), "HOP"))
        assert len(answers) == 2
        assert answers[0] == answers[1]
        assert "10.0." not in answers[0]
        assert "hub" not in answers[0]

    run(test)


def _silent(hub: Any) -> tuple[list[Address], Any]:
    """The connections the hub's silent hook is told of, and a keepalive that finds every
    channel silent past its timeout."""
    silent: list[Address] = []
    hub.manager.silent_hooks.append(silent.append)

    async def lapse() -> None:
        now = asyncio.get_running_loop().time()
        hub.manager.keepalive(now)  # (silence counts from the first round that saw its last)
        hub.manager.keepalive(now + 3600)
        await asyncio.gather(*list(hub.manager._flushing))

    return silent, lapse


def test_a_member_closing_its_channel_leaves_the_nodes_connection() -> None:
    """Refuted 3."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b")
        behind = _Behind(net, hub, b)
        own = await b.manager.open((behind.connection.address,))
        member = await behind.open(_M_END)
        silent, _ = _silent(hub)
        (at_hub,) = {e for e in hub.manager.ends.values() if e.peer_route[1] == _AT_B}
        member.close()
        for packet in (*member.outgoing(), b"\x00" * 64):  # its CLOSE, then junk
            await behind._send(packet, (behind.connection.address, at_hub.dec), _M_END)
        await until(lambda: at_hub.enc not in hub.manager.ends)
        assert silent == []
        assert own.channel.state is ChannelState.OPEN
        assert len(hub.manager.ends) == 1

    run(test)


def test_a_reconnected_node_is_judged_afresh_on_its_new_connection() -> None:
    """Refuted 4."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        hub.transport.lost.append(hub.manager.connection_lost)
        b = await net.relayed(hub, "b")
        behind = _Behind(net, hub, b)
        await b.manager.open((behind.connection.address,))
        await behind.open(_M_END)
        (old,) = hub.transport.connections()
        await behind.connection.close()
        await until(lambda: not hub.manager.ends)
        b.router.unregister(_AT_B)
        hub.router.unregister(_M)
        again = await b.transport.connect("hub", 4000)
        behind = _Behind(net, hub, b)
        (new,) = hub.transport.connections()
        assert new.address != old.address
        assert behind.connection is again
        await b.manager.open((again.address,))
        await behind.open(_M_END)
        ends: dict[bool, ChannelEnd] = {}  # by whether it is the member's
        for end in hub.manager.ends.values():
            ends[end.peer_route[1] == _AT_B] = end
        assert {e.peer_route[0] for e in ends.values()} == {new.address}
        assert (ends[False].direct, ends[True].direct) == (True, False)
        silent, lapse = _silent(hub)
        await lapse()  # both silent: b's own tells of the new connection, the member's nothing
        assert silent == [new.address]

    run(test)
