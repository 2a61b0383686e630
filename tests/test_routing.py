"""Addresses, routes, routed messages, allow-sets, and the router's default deny. (TCP framing:
tests/test_transport_framing.py.)"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.channels import Allowing
from troth import limits
from troth.errors import DecodeError, DecodeProblem, RoutingError
from troth.routing import (
    Address,
    AllowSet,
    RoutedMessage,
    Router,
    Source,
    format_route,
    parse_route,
)
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
    for bad, why in (
        ("", "kind/value pairs"),
        ("/tcp", "kind/value pairs"),
        ("/udp/1.2.3.4:5", "unknown address kind"),
        ("/service/a b", "invalid service address"),
        ("/tcp/" + "x" * 300, "invalid tcp address"),
        ("/service/" + "/service/a" * 20, "kind/value pairs"),
        ("/service/a" * 17, "more than 16 hops"),
    ):
        with pytest.raises(RoutingError, match=why):
            parse_route(bad)
    with pytest.raises(RoutingError, match="not a tcp address"):
        Address("service", "echo").host_port()
    with pytest.raises(RoutingError, match="not host:port"):
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
    with pytest.raises(DecodeError) as caught:
        frame(bytes(limits.MAX_TRANSPORT_FRAME + 1))
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    with pytest.raises(DecodeError, match="over the limit") as caught:
        check_header(b"\x01" + (limits.MAX_TRANSPORT_FRAME + 1).to_bytes(4, "big"))
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    with pytest.raises(DecodeError, match="version") as caught:
        check_header(b"\x02\x00\x00\x00\x01")
    assert caught.value.problem is DecodeProblem.UNKNOWN_VERSION


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


def worker(n: int) -> Address:
    return Address("worker", f"w-{n}")


def test_allow_set_fixed_addresses_kinds_and_reply_paths() -> None:
    echo, listener = Address("service", "echo"), Address("service", "channels")
    allowed = AllowSet(frozenset({echo}), frozenset({"relay"}), max_reply_paths=4)
    assert allowed.allows(echo)
    assert allowed.allows(Address("relay", "anyone"))
    assert not allowed.allows(listener)
    assert not allowed.allows(worker(1))
    allowed.allow(worker(1))
    assert allowed.allows(worker(1))
    assert allowed.reply_paths == 1
    allowed.forget(worker(1))
    assert not allowed.allows(worker(1))
    allowed.allow(echo)  # already fixed: not a reply path
    assert allowed.reply_paths == 0
    allowed.permit(listener)
    allowed.grant(frozenset({listener}))  # the fixed set is replaced: echo is gone
    assert allowed.allows(listener)
    assert not allowed.allows(echo)


def test_allow_set_forgets_the_least_recently_used_reply_path() -> None:
    allowed = AllowSet(max_reply_paths=3)
    for n in range(3):
        allowed.allow(worker(n))
    assert allowed.allows(worker(0))  # in use: refreshed
    allowed.allow(worker(3))  # full: the least recently used (1) goes
    assert [allowed.allows(worker(n)) for n in range(4)] == [True, False, True, True]
    assert allowed.reply_paths == 3
    allowed.permit(worker(9))
    for n in range(10, 20):  # a permitted address is never pushed out by reply paths
        allowed.allow(worker(n))
    assert allowed.allows(worker(9))
    assert allowed.reply_paths == 3
    with pytest.raises(ValueError, match="at least one"):
        AllowSet(max_reply_paths=0)
