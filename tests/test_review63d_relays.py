"""Review 63d, relays: findings (each test failed before its fix).

Relays 1 (low: a wrong answer on a path any sender reaches, and a count that lies). A hub reads
a frame of up to `MAX_TRANSPORT_FRAME` bytes; a message to `/relay/<name>` grows there (the hub
puts the connection it came on at the front of its return route, and the relay puts its
owner's connection where `/relay/<name>` was). One that arrived near the frame limit is then
past it, and the owner's connection refuses to write it, which is right (the owner would refuse
to read it); but the relay service took that `RoutingError` for "the owner's connection just
closed" and answered `relay not found` for a name that is up, counting it in
`RelayService.not_found`: an initiator gives its handshake up at once on that answer, told the
relay is not there. (A channel's own packets leave room for the largest route header,
`PACKET_LIMIT`, so they never grow past the frame limit; a message whose routes pass the route
limits at the relay, an owner's hops beyond its connection making the onward route longer than
`MAX_ROUTE_LENGTH`, met the same answer.) Now a message the relay cannot forward to an owner
whose connection is up is dropped with no answer, and `relay not found` stays for the names that
are not up (no new oracle: a name that is up answers a message 1 with a message 2 anyway).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_reconnect import until
from tests.test_review55a_refuted import MESSAGE_1, Stranger, with_stranger
from troth import limits
from troth.channel import RouteProblem, route_error
from troth.routing import Address, RoutedMessage, parse_route


def test_a_message_grown_past_the_frame_limit_at_the_relay_is_not_answered_relay_not_found(
    tmp_path: Path,
) -> None:
    """Relays 1: a frame of exactly `MAX_TRANSPORT_FRAME` bytes to `/relay/b`, which is up:
    the hub reads it (one may send it), cannot forward it past the frame limit, and drops it
    without an answer; the stranger's next answer is its probe's of a name that is not up."""

    async def test(net: Stranger) -> None:
        route = parse_route("/relay/b/service/channels")
        small = RoutedMessage(route, (), MESSAGE_1).encode()
        payload = MESSAGE_1 + bytes(limits.MAX_TRANSPORT_FRAME - len(small))
        big = RoutedMessage(route, (), payload).encode()
        assert len(big) == limits.MAX_TRANSPORT_FRAME
        assert RoutedMessage.decode(big).onward == route  # a hub reads it
        dropped = net.hub_tcp.counters.dropped_messages
        net.send_raw(big)
        await until(lambda: net.hub_tcp.counters.dropped_messages > dropped)
        assert net.relay.not_found == 0
        net.send("/relay/nobody")
        answer = await net.receive()  # the probe's: nothing came for the big one
        assert bytes(answer.payload) == route_error(RouteProblem.RELAY_NOT_FOUND)
        assert net.relay.not_found == 1
        assert not [m for m in net.at_b if len(m.payload) > len(MESSAGE_1)]

    with_stranger(tmp_path, test)


def test_a_route_past_the_route_limit_at_the_relay_is_not_answered_relay_not_found(
    tmp_path: Path,
) -> None:
    """Relays 1, the route limit: b's name forwards over two hops beyond its connection (an
    owner two relays away, as `RelayService.create` records one: `Relay.beyond`), and the
    stranger's onward route is `/relay/b` and 15 hops more: 17 past the relay, over
    `MAX_ROUTE_LENGTH`. Dropped at the hub without an answer (before: `relay not found`)."""

    async def test(net: Stranger) -> None:
        net.relay.relays["b"].beyond = (Address("worker", "r-1"), Address("worker", "r-2"))
        dropped = net.hub_tcp.counters.dropped_messages
        net.send("/relay/b" + "/service/s" * (limits.MAX_ROUTE_LENGTH - 1))
        await until(lambda: net.hub_tcp.counters.dropped_messages > dropped)
        assert net.relay.not_found == 0
        net.send("/relay/nobody")
        answer = await net.receive()  # the probe's: nothing came for the long one
        assert bytes(answer.payload) == route_error(RouteProblem.RELAY_NOT_FOUND)
        assert net.relay.not_found == 1

    with_stranger(tmp_path, test)
