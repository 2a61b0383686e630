"""Addresses, routes, routed messages, TCP framing, and the router's default deny."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from troth import limits
from troth.errors import DecodeError, RoutingError
from troth.routing import Address, RoutedMessage, Router, Source, format_route, parse_route
from troth.transport import check_header, frame


def test_parse_and_format_routes() -> None:
    route = parse_route("/tcp/127.0.0.1:4000/relay/agent-b/service/echo")
    assert route == (
        Address("tcp", "127.0.0.1:4000"),
        Address("relay", "agent-b"),
        Address("service", "echo"),
    )
    assert format_route(route) == "/tcp/127.0.0.1:4000/relay/agent-b/service/echo"
    assert route[0].host_port() == ("127.0.0.1", 4000)
    for bad in (
        "",
        "/tcp",
        "/udp/1.2.3.4:5",
        "/service/a b",
        "/tcp/" + "x" * 300,
        "/service/" + "/service/a" * 20,
    ):
        with pytest.raises(RoutingError):
            parse_route(bad)
    with pytest.raises(RoutingError):
        Address("service", "echo").host_port()
    with pytest.raises(RoutingError):
        Address("tcp", "localhost").host_port()


def test_message_round_trip_keeps_payload_bytes() -> None:
    message = RoutedMessage(
        parse_route("/service/echo"), parse_route("/worker/req-1"), b"\x00payload"
    )
    assert RoutedMessage.decode(message.encode()) == message
    stepped = message.stepped_in(Address("worker", "tcp-7"))
    assert stepped.return_route[0] == Address("worker", "tcp-7")


@given(st.binary(max_size=300))
def test_message_decode_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        RoutedMessage.decode(data)


def test_frame_limits() -> None:
    assert check_header(frame(b"abc")[:5]) == 3
    with pytest.raises(DecodeError):
        frame(bytes(limits.MAX_TRANSPORT_FRAME + 1))
    with pytest.raises(DecodeError, match="over the limit"):
        check_header(b"\x01" + (limits.MAX_TRANSPORT_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(DecodeError, match="version"):
        check_header(b"\x02\x00\x00\x00\x01")


class Allowing:
    name = "test source"

    def __init__(self, *allowed: Address) -> None:
        self.allowed = set(allowed)

    def allows(self, address: Address) -> bool:
        return address in self.allowed

    def allow(self, address: Address) -> None:
        self.allowed.add(address)

    def forget(self, address: Address) -> None:
        self.allowed.discard(address)


def test_router_denies_by_default() -> None:
    async def run() -> None:
        router = Router()
        got: list[RoutedMessage] = []

        async def echo(message: RoutedMessage, source: Source | None) -> None:
            got.append(message)

        echo_address = Address("service", "echo")
        router.register(echo_address, echo)
        message = RoutedMessage((echo_address,), (), b"x")
        await router.route(message)  # local: allowed
        with pytest.raises(RoutingError, match="may not reach"):
            await router.route(message, Allowing())
        await router.route(message, Allowing(echo_address))
        with pytest.raises(RoutingError, match="no worker"):
            await router.route(RoutedMessage((Address("service", "missing"),), (), b""))
        assert len(got) == 2
        with pytest.raises(RoutingError, match="taken"):
            router.register(echo_address, echo)

    asyncio.run(run())
