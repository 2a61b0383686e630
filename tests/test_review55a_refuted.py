"""Review 55a, tried against a relay over TCP (loopback) and found to hold.

A stranger reaches a hub over TCP, where b, a member without a listening port, holds
`/relay/b`. Each attempt is a real one; each test fails if the defence it met breaks.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.relay_tcp import hub_and_relayed_b
from tests.test_reconnect import until
from troth import limits
from troth.channel import RouteProblem, route_error
from troth.errors import DecodeError
from troth.node.runtime import NodeRuntime
from troth.node.services.relay import RelayService
from troth.routing import Route, RoutedMessage, parse_route
from troth.transport import TcpTransport, frame
from troth.transport.framing import FRAME_HEADER
from troth.transport.settings import TcpSettings

MESSAGE_1 = b"\x00\x21\x01" + os.urandom(32)
"""A secure channel's message 1 (a packet of one handshake frame: "-> e")."""


class Stranger:
    """A hub, b behind its relay, and a stranger's raw TCP connection to the hub."""

    def __init__(
        self,
        hub: NodeRuntime,
        b: NodeRuntime,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.hub, self.b, self.reader, self.writer = hub, b, reader, writer
        assert isinstance(hub.tcp, TcpTransport)
        assert isinstance(b.tcp, TcpTransport)
        self.hub_tcp, self.b_tcp = hub.tcp, b.tcp
        relay = hub.host.services["relay"]
        assert isinstance(relay, RelayService)
        self.relay = relay
        self.at_b: list[RoutedMessage] = []  # what arrives at b (from the hub)
        b.tcp.observers.append(lambda _c, message: self.at_b.append(message))

    def send(self, onward: str, back: Route = (), payload: bytes = MESSAGE_1) -> None:
        self.writer.write(frame(RoutedMessage(parse_route(onward), back, payload).encode()))

    def send_raw(self, body: bytes) -> None:
        self.writer.write(frame(body))

    async def receive(self) -> RoutedMessage:
        """The next routed message the hub sends the stranger."""
        async with asyncio.timeout(10):
            header = await self.reader.readexactly(FRAME_HEADER.size)
            body = await self.reader.readexactly(FRAME_HEADER.unpack(header)[1])
        return RoutedMessage.decode(body)

    def mine(self) -> list[RoutedMessage]:
        """What arrived at b carrying the stranger's payload."""
        return [m for m in self.at_b if bytes(m.payload) == MESSAGE_1]


def with_stranger(tmp_path: Path, test: Callable[[Stranger], Awaitable[None]]) -> None:
    async def main() -> None:
        async with hub_and_relayed_b(tmp_path, TcpSettings()) as (hub, b):
            assert hub.listening is not None
            reader, writer = await asyncio.open_connection(*hub.listening)
            try:
                await test(Stranger(hub, b, reader, writer))
            finally:
                writer.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_route_looping_through_the_relay_is_forwarded_once_then_dropped(
    tmp_path: Path,
) -> None:
    """`/relay/b/relay/b/relay/b/relay/b/service/echo`: the hub forwards it to b once; b's
    connection to the hub (one b made) reaches no relay name, so b drops it: nothing comes
    back to the hub, nothing loops or multiplies."""

    async def test(net: Stranger) -> None:
        dropped = net.b_tcp.counters.dropped_messages
        net.send("/relay/b/relay/b/relay/b/relay/b/service/echo")
        await until(lambda: net.b_tcp.counters.dropped_messages > dropped)
        (arrived,) = net.mine()
        assert arrived.onward == parse_route("/relay/b/relay/b/relay/b/service/echo")
        assert net.relay.not_found == 0
        await asyncio.sleep(0.1)  # (anything more would have come by now)
        assert len(net.mine()) == 1

    with_stranger(tmp_path, test)


def test_a_return_route_naming_the_relay_and_the_hubs_services_comes_back_to_its_sender(
    tmp_path: Path,
) -> None:
    """A probe of a name that is not up, its return route `/relay/b/service/echo`: the hub's
    `relay not found` goes over the stranger's own connection (the first hop of every return
    route, which the hub puts there), naming those addresses for the stranger's node to
    route, not the hub's; b gets nothing. A message 1 to b with the same return route: b's
    message 2 comes back to the stranger likewise, past the hub's echo service."""

    async def test(net: Stranger) -> None:
        back = parse_route("/relay/b/service/echo")
        net.send("/relay/nobody/service/channels", back)
        answer = await net.receive()
        assert answer.onward == back
        assert bytes(answer.payload) == route_error(RouteProblem.RELAY_NOT_FOUND)
        assert not net.mine()
        net.send("/relay/b/service/channels", back)
        second = await net.receive()
        assert second.onward == back  # b's message 2, to the stranger's own node
        assert bytes(second.payload[:3]) != bytes(answer.payload[:3])
        assert len(net.mine()) == 1

    with_stranger(tmp_path, test)


def test_deeply_nested_and_oversize_route_headers_are_dropped_and_the_connection_stays(
    tmp_path: Path,
) -> None:
    """A route header nested 8,000 arrays deep (no recursion: the decoder refuses past its
    depth at once) and one of 8,193 bytes (past `MAX_ROUTE_HEADER_BYTES`): each is dropped as
    malformed, the connection stays, and the stranger's next probe is answered."""

    def header(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    deep = b"\x82" + b"\x81" * 8000 + b"\x80\x80"
    oversize = b"\x82\x80\x59" + struct.pack(">H", 8190) + bytes(8190)
    assert len(oversize) > limits.MAX_ROUTE_HEADER_BYTES
    for body in (deep, oversize):
        try:
            RoutedMessage.decode(header(body))
        except DecodeError:
            continue
        raise AssertionError("decoded")

    async def test(net: Stranger) -> None:
        dropped = net.hub_tcp.counters.dropped_messages
        net.send_raw(header(deep) + MESSAGE_1)
        net.send_raw(header(oversize) + MESSAGE_1)
        net.send("/relay/nobody", parse_route("/worker/probe-1"))
        answer = await net.receive()
        assert answer.onward == parse_route("/worker/probe-1")
        assert net.hub_tcp.counters.dropped_messages == dropped + 3  # the probe's too
        assert net.relay.not_found == 1

    with_stranger(tmp_path, test)


def test_a_stranger_reaches_no_local_service_of_the_hub_directly_or_past_a_relay_name(
    tmp_path: Path,
) -> None:
    """`/service/echo` and `/service/no-route` over the stranger's connection: not what the
    listener lets it reach (its channel listener and relay names), dropped; past a name not
    up (`/relay/nobody/service/echo`) only `relay not found`; past b's name, b's own
    connection to the hub reaches no service of b's but its listener: dropped at b."""

    async def test(net: Stranger) -> None:
        hub_dropped = net.hub_tcp.counters.dropped_messages
        b_dropped = net.b_tcp.counters.dropped_messages
        net.send("/service/echo")
        net.send("/service/no-route")
        net.send("/relay/nobody/service/echo", parse_route("/worker/probe-2"))
        answer = await net.receive()
        assert bytes(answer.payload) == route_error(RouteProblem.RELAY_NOT_FOUND)
        assert net.hub_tcp.counters.dropped_messages == hub_dropped + 3  # the probe's too
        net.send("/relay/b/service/echo")
        await until(lambda: net.b_tcp.counters.dropped_messages > b_dropped)
        assert [m.onward for m in net.mine()] == [parse_route("/service/echo")]

    with_stranger(tmp_path, test)


def test_no_frame_from_a_stranger_reads_the_relayed_owners_connection_as_its_own(
    tmp_path: Path,
) -> None:
    """The stranger names the hub's connection to b (its worker address, as b's frames show
    it in their return routes) as the next hop: the stranger's connection may not reach it
    (only what it sent, and the replies to what was sent over it), so nothing goes to b."""

    async def test(net: Stranger) -> None:
        to_b = net.relay.relays["b"].connection
        assert to_b is not None
        dropped = net.hub_tcp.counters.dropped_messages
        net.send(f"{to_b}/service/channels")
        await until(lambda: net.hub_tcp.counters.dropped_messages > dropped)
        assert not net.mine()

    with_stranger(tmp_path, test)


def test_probes_of_names_not_up_get_at_most_one_answer_no_larger_than_each(
    tmp_path: Path,
) -> None:
    """Amplification: probes to a name not up, each with a return route of 15 long addresses
    for the answer to carry. Three under 21 bytes of payload get no answer; one of 21 bytes
    gets one, no larger than the probe (the return route it names travels in both)."""

    async def test(net: Stranger) -> None:
        back = tuple(
            parse_route(f"/worker/{'x' * 250}-{n}")[0] for n in range(limits.MAX_ROUTE_LENGTH - 1)
        )
        small = RoutedMessage(parse_route("/relay/nobody"), back, bytes(20)).encode()
        probe = RoutedMessage(parse_route("/relay/nobody"), back, bytes(21)).encode()
        for _ in range(3):
            net.send_raw(small)
        net.send_raw(probe)
        answer = await net.receive()
        assert answer.onward == back
        assert len(answer.encode()) <= len(probe)
        assert net.relay.not_found == 4
        net.send("/relay/nobody", parse_route("/worker/probe-3"))  # the next one answered
        assert (await net.receive()).onward == parse_route("/worker/probe-3")

    with_stranger(tmp_path, test)
