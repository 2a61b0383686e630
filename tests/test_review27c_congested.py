"""Review 27c (a congested path back to a channel's peer: `Congested` in the channel layer).

The TCP transport drops a frame for a connection whose peer stopped reading and whose queue is
full, and tells the sender (`Congested`, docs/protocols.md "TCP transport": not that the
destination is gone). A peer that sends but does not read is such a peer: it hears nothing
back, so its keepalive sends a PING every interval, and the PING leaves in one packet with the
messages it sends in that loop iteration.

1. `ChannelEnd.from_peer` decrypted a packet (the channel's replay window and state moved on),
   then, when the channel had something to send (the PONG that answers the PING, a handshake
   message, an ACCEPTED), flushed it before handling the packet's events. On a congested path
   back that flush raised, and the events were never handled: the messages the peer sent in
   that packet (requests, one-way messages) were accepted by the channel and lost, silently.

2. `ChannelManager._deliver` answers a request from a channel that it could not route
   `no-route` (`RoutingError` at the caller): also one whose next hop took it and dropped it
   (`Congested`, a RoutingError). The caller gave up at once and concluded that nothing serves
   that address, though the way on is up and only not reading. Not reachable through a
   `NodeRuntime`'s own services (the service host answers its errors itself; a channel cannot
   reach a connection or a relay), but through any worker the embedding code lets channels
   reach (`ChannelManager.services`) that forwards, as the relay does for connections.

Each was a strict xfail until its fix. 1: `from_peer` handles a packet's events, in order,
whatever its flushes do; what they could not send is counted (`ChannelCounters.unsent_packets`)
and logged within the channels' lines a minute, and the channel goes on (packets lost on a
congested path, as on a lossy path: its keepalive, and the transport's write timeout for a
peer that never reads again, judge whether the peer is gone). 2: such a request is answered
`busy` ("the request did not run, send it again later": true of a dropped frame), so `call`
sends it again after a back-off while its timeout allows and then raises `Busy`, whose message
names the congestion; a request to an address with no route is still answered `no-route`.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T
from tests.test_channel_manager import ECHO, HUB, Net, echo, only_end, run, until
from troth.channel import ChannelState
from troth.errors import Busy, Congested, Denied, RoutingError
from troth.node.services import call
from troth.node.services.sink import SinkService
from troth.routing import Address, RoutedMessage, Source, parse_route
from troth.transport.memory import MemoryConnection

SINK = Address("service", "sink")
ONWARD = Address("service", "onward")


def test_messages_in_a_packet_whose_pong_meets_a_congested_path_are_delivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """a's path back from the hub is congested (the hub's connection to a raises `Congested`,
    as TCP does for a peer that stopped reading). a's keepalive PING leaves with a one-way
    message in one packet: the hub's PONG cannot leave, the message is delivered all the same
    (and the one after it, which needs no answer), and the channel goes on once the path
    drains."""

    async def test(net: Net) -> None:
        sink = SinkService()
        hub = await net.hub(services=(sink,))
        a = net.peer("10.0.0.2")
        end = await a.manager.open(parse_route(HUB))
        assert await echo(a, end, "before") == "before"
        hub_end = only_end(hub)
        (back,) = [
            c
            for c in hub.transport.connections()
            if isinstance(c, MemoryConnection) and c.address == hub_end.peer_route[0]
        ]
        refused: list[RoutedMessage] = []

        async def congested(message: RoutedMessage) -> None:
            refused.append(message)
            raise Congested(f"{back.name} is not reading: a frame for it was dropped")

        monkeypatch.setattr(back, "send", congested)
        interval = end.channel.settings.keepalive_interval
        a.manager.keepalive(T)  # a heard nothing from the hub since: its next round PINGs
        a.manager.keepalive(T + interval)
        first, second = b"one-way, with the PING", b"one-way, after it, in a packet of its own"
        await a.router.route(RoutedMessage((end.enc, SINK), (), first))
        await until(lambda: len(refused) == 1)  # the hub's PONG, dropped on the way
        await a.router.route(RoutedMessage((end.enc, SINK), (), second))
        await until(lambda: sink.bytes >= len(second))  # the hub took the second packet
        assert sink.messages == 2, "the message that came with the PING was lost"
        assert hub_end.channel.state is ChannelState.OPEN  # congested is not gone
        assert hub.manager.counters.unsent_packets == 1
        monkeypatch.undo()  # a reads again
        assert await echo(a, end, "after") == "after"

    run(test)


def test_a_request_dropped_on_a_congested_way_on_is_answered_busy_not_no_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub lets channels reach a worker that forwards to b's connection (as the relay
    forwards to its owner's), and b stops reading (its connection raises `Congested`). a's
    request through it is dropped there: `call` hears `busy`, sends it again while its timeout
    allows, then raises `Busy` saying the way on is congested (review 30, busy 1: not
    where). A request to an address nothing serves
    is still `no-route` (RoutingError)."""

    async def test(net: Net) -> None:
        refused: list[RoutedMessage] = []
        await congested_way_on(net, monkeypatch, refused)
        a = net.peer("10.0.0.2")
        end = await a.manager.open(parse_route(HUB))
        with pytest.raises(Busy, match=r"^busy: the way on is congested"):
            await call(a.router, (end.enc, ONWARD, ECHO), "echo", "x", timeout=1)
        assert refused  # the request reached the congested hop (and again, after back-offs)
        with pytest.raises(RoutingError, match="may not reach /service/nope"):
            await call(a.router, (end.enc, Address("service", "nope")), "echo", "x", timeout=1)
        monkeypatch.undo()  # b reads again: the request goes on to b, whose host answers it
        with pytest.raises(Denied, match="not a verified caller"):  # (a connection is none)
            await call(a.router, (end.enc, ONWARD, ECHO), "echo", "y", timeout=5)

    run(test)


async def congested_way_on(
    net: Net, monkeypatch: pytest.MonkeyPatch, refused: list[RoutedMessage]
) -> None:
    """The hub of `net` with a service `ONWARD` that forwards what reaches it (through a
    channel) on to b (10.0.0.4, connected to it, its echo reachable), over a connection whose
    peer does not read: each frame for it raises `Congested` (kept in `refused`), until
    `monkeypatch` is undone."""
    hub = await net.hub()
    b = net.peer("10.0.0.4")
    to_hub = await b.transport.connect("hub", 4000)
    to_hub.allowed.permit(ECHO)  # what the hub forwards reaches b's echo
    (at_hub,) = [c for c in hub.transport.connections() if c.other is to_hub]

    async def onward(message: RoutedMessage, source: Source | None) -> None:
        forwarded = (at_hub.address, *message.onward)
        await hub.router.route(RoutedMessage(forwarded, message.return_route, message.payload))

    hub.router.register(ONWARD, onward)
    services = hub.manager.services
    hub.manager.services = lambda: services() | {ONWARD}

    async def congested(message: RoutedMessage) -> None:  # b does not read
        refused.append(message)
        raise Congested(f"{at_hub.name} is not reading: a frame for it was dropped")

    monkeypatch.setattr(at_hub, "send", congested)
