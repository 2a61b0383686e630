"""Review 61i: attacks on the node's access decision point, service dispatch and control socket
that did not work. Each test is a real attempt that would fail if the defence broke."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import run_broker
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_channel_manager import Net, run, until
from tests.test_gates_services import ask, scene_with
from tests.test_node_runtime import delegated
from tests.test_review44a_callers import delegate_from
from tests.test_service_calls import SLOW, Held, settle
from tests.test_service_calls import run as run_calls
from tests.test_service_concurrency import GATED, Gated, _channel, _hub
from troth import limits
from troth.encoding import cbor
from troth.errors import Denied, RemoteError, RoutingError
from troth.node.access import AccessRequest, AnyAuthenticated, PeerCaller, RulesPolicy, Standing
from troth.node.control import perform
from troth.node.daemon import _run
from troth.node.runtime import ECHO
from troth.node.services import call, service_address
from troth.node.services.base import Calls, calls_through, decode_request
from troth.routing import Address, RoutedMessage, Router
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, check_header, frame

CAVEATS = (
    "context.args.amount < 5",  # refers to arguments: a service call supplies none
    "!(context has args) || context.args.amount < 5",  # holds without them, for a tool cap
    'context.ticket == "9"',  # context the service never supplies
)


def test_a_caveated_delegate_reaches_no_service_of_an_authority_and_relay_node(
    tmp_path: Path,
) -> None:
    """Every service of the hub (authority, relay, policy, trace collector, echo, sink):
    caveats fail closed on built-in rules whatever they say, request or one-way message."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        alice = await net.member("alice", **{"troth.relay": "*"})
        carol, _ = await delegated(net, alice, "carol", CAVEATS)
        end = await carol.channel_to(route(HUB))  # the authority node admits anyone
        asks = [
            ("echo", "echo", "x"),
            ("trace", "head", None),
            ("trace", "held", None),
            ("policy", "get", str(net.authority.identifier)),
            ("relay", "create", "carol"),
        ]
        for service, method, arguments in asks:
            with pytest.raises(Denied, match="caveats"):
                await call(carol.router, (end.enc, service_address(service)), method, arguments)
        refused, sunk = hub.host.refused, hub.host.services["sink"].status()["messages"]
        await carol.router.route(RoutedMessage((end.enc, service_address("sink")), (), b"?"))
        # then a request on the same channel, read after the message: once it is answered the
        # message was judged (counting refusals alone raced the nodes' start-up maintenance,
        # whose policy pull the hub refuses too: review 62m ran it at once)
        with pytest.raises(Denied, match="caveats"):
            await call(carol.router, (end.enc, service_address("echo")), "echo", "x")
        await until(lambda: hub.host.refused >= refused + 2)
        assert hub.host.services["sink"].status()["messages"] == sunk

    run_memnet(test, tmp_path)


def test_a_delegation_that_expires_between_two_requests_of_one_channel_is_refused(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        alice = await net.member("alice", **{"troth.relay": "*"})
        dave, _ = await delegated(net, alice, "dave")  # ttl 600
        end = await dave.channel_to(route(HUB))
        assert await call(dave.router, (end.enc, ECHO), "echo", "one") == "one"
        net.clock.advance(601)
        with pytest.raises(Denied):
            await call(dave.router, (end.enc, ECHO), "echo", "two")

    run_memnet(test, tmp_path)


class _Runtime:
    """What the control socket's server reads of a runtime (`_run`): nothing else is reached
    by the requests below, each refused before an operation runs."""

    name = "ctl"
    listening = None

    def status(self) -> dict[str, Any]:
        return {"identifier": "T0"}

    async def stop(self) -> None:
        """Nothing."""


async def _ask_control(path: Path, data: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(data)
        await writer.drain()
        length = check_header(await reader.readexactly(FRAME_HEADER.size), 1 << 20)
        answer = cbor.decode(await reader.readexactly(length))
    finally:
        writer.close()
    assert isinstance(answer, dict)
    return answer


def _deep(depth: int) -> bytes:
    return b"\x81" * depth + b"\x00"  # [[[...0...]]]


@pytest.mark.parametrize(
    ("data", "kind", "said"),
    [
        (frame(cbor.encode({"op": "no.such", "args": {}})), "NotFound", "unknown control op"),
        (frame(cbor.encode({"op": "STATUS", "args": {}})), "NotFound", "unknown control op"),
        (frame(cbor.encode({"op": "status ", "args": {}})), "NotFound", "unknown control op"),
        (frame(cbor.encode({"op": "status", "args": {"x": "y"}})), "DecodeError", "unknown arg"),
        (frame(cbor.encode({"op": "status", "args": ["x"]})), "DecodeError", "are a map"),
        (frame(cbor.encode(["status"])), "DecodeError", "a map with an op"),
        (frame(b"\xa2bopfstatusdargs" + _deep(10_000)), "DecodeError", "nest"),
        (FRAME_HEADER.pack(FRAME_VERSION, 64 << 20), "DecodeError", "over the limit"),
    ],
    ids=["unknown", "case", "space", "extra-arg", "list-args", "not-a-map", "deep", "64MiB"],
)
def test_the_control_socket_refuses_what_is_not_an_operation_and_serves_on(
    tmp_path: Path, data: bytes, kind: str, said: str
) -> None:
    """Unknown operations (a case or whitespace variant of one too), arguments that are not
    the operation's, a request nested 10,000 deep or announcing 64 MiB: each answered with its
    error before anything runs, the socket 0600 and still serving the next connection."""

    async def main() -> None:
        path, stop = tmp_path / "control.sock", asyncio.Event()
        own = {"pid": os.getpid(), "started": None}
        runtime: Any = _Runtime()
        server = asyncio.create_task(
            _run(runtime, perform, tmp_path, path, own, stop, lambda: None)
        )
        try:
            async with asyncio.timeout(5):
                while not (tmp_path / "status.json").exists():
                    await asyncio.sleep(0.01)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            answer = await _ask_control(path, data)
            assert (answer["ok"], answer["kind"]) == (False, kind)
            assert said in answer["error"]
            again = await _ask_control(path, frame(cbor.encode({"op": "nope", "args": {}})))
            assert again["kind"] == "NotFound"
        finally:
            stop.set()
            await server

    asyncio.run(main())


@pytest.mark.parametrize(
    ("service", "method"),
    [("echo", "Echo"), ("echo", "echo "), ("echo", "\uff45cho"), ("echo", "echo\x00")],
)
def test_a_method_name_differing_only_by_case_unicode_or_whitespace_is_not_served(
    service: str, method: str
) -> None:
    """Method names are looked up as they are (no folding, no trimming): the variant of an
    allowed method has no rule and no handler."""

    async def test(net: Net) -> None:
        await net.hub()
        node = net.peer("10.0.0.2")
        end = await _channel(net, node)
        with pytest.raises(RemoteError, match="has no method"):
            await call(node.router, (end.enc, service_address(service)), method, "x", timeout=2)
        with pytest.raises(RoutingError):  # nor a service named like one served
            await call(node.router, (end.enc, Address("service", "Echo")), "echo", "x", timeout=2)
        rules = RulesPolicy(
            "hub", {("echo", "echo"): AnyAuthenticated()}, lambda p, n: Standing(())
        )
        peer = PeerCaller(end.peer, "c")  # type: ignore[arg-type]
        for asked in ((service, method), ("Echo", "echo"), ("echo\u200b", "echo")):
            assert not rules.decide(AccessRequest(peer, *asked, None, 0)).allowed

    run(test)


def test_two_callers_using_the_same_request_id_each_get_their_own_answer() -> None:
    """Request ids are only unique per reply worker: two peers whose requests to one service
    carry the same id, both in flight, are answered each along its own return route."""

    async def test(net: Net) -> None:
        gated = Gated()
        await _hub(net, gated)
        first, second = net.peer("10.0.0.2"), net.peer("10.0.0.3")
        ends = [await _channel(net, first), await _channel(net, second)]
        for peer, end in zip((first, second), ends, strict=True):
            calls_through(peer.router, end.enc)._next_id = 7
        asks = [
            asyncio.ensure_future(call(peer.router, (end.enc, GATED), "wait", who, timeout=5))
            for peer, end, who in zip((first, second), ends, ("first", "second"), strict=True)
        ]
        await until(lambda: len(gated.started) == 2)
        gated.gate.set()
        assert await asyncio.gather(*asks) == ["first", "second"]

    run(test)


def test_a_delegate_whose_caveat_errors_or_needs_what_a_lease_lacks_gets_no_lease(
    tmp_path: Path,
) -> None:
    """On a broker node (the broker's methods are open to any authenticated identity, the
    lease decided by its Cedar bundle): a caveat on arguments, on context no lease supplies,
    or one that overflows is evaluated there and refuses the lease; the same delegation
    without it is leased (the attempt is real)."""

    async def test(net: MemNet) -> None:
        alice = await net.member("alice", **{"troth.relay": "alice"})
        lease = {"secret": "payments", "scope": ["refunds"], "ttl": 60}
        for n, caveat in enumerate((*CAVEATS[::2], "context.now + 9223372036854775807 > 0", "")):
            name = f"d{n}"
            await alice.worker.run(delegate_from, alice, "alice", name, (caveat,) if caveat else ())
            end = await alice.channel_as(name, route(HUB))
            issued = await call(alice.router, (end.enc, service_address("broker")), "issue", lease)
            if caveat:
                assert issued.get("refused") == "DENIED", (caveat, issued)
            else:
                assert "refused" not in issued, issued
                assert issued["lease"]["state"] == "active", issued

    run_broker(test, tmp_path)


def test_past_1024_requests_in_flight_callers_wait_and_each_gets_its_own_answer() -> None:
    """1,030 calls through one first hop, at the real limit: 1,024 are sent, the rest wait for
    a slot; answered in reverse order, each answer reaches the caller of its id, a repeated
    answer (another caller's id, answered already) is dropped, and the six waiting go out."""

    async def test(router: Router, held: Held) -> None:
        calls = Calls(SLOW)
        assert calls.limit == limits.MAX_CALLS_IN_FLIGHT == 1024
        router.register(calls.address, calls.answer)
        asks = [asyncio.ensure_future(calls.call(router, (SLOW,), "m", n, 30)) for n in range(1030)]
        await settle()
        assert len(held.requests) == 1024
        for index in reversed(range(1024)):
            await held.answer(index, decode_request(held.requests[index][1].payload)[2])
        await held.answer(5, "not yours", request=decode_request(held.requests[7][1].payload)[0])
        assert calls.dropped == 1
        await until(lambda: len(held.requests) == 1030)
        for index in range(1024, 1030):
            await held.answer(index, decode_request(held.requests[index][1].payload)[2])
        assert await asyncio.gather(*asks) == list(range(1030))
        assert calls.in_flight == 0

    run_calls(test)


@pytest.mark.parametrize(
    ("caveat", "allowed"),
    [
        ("context.args.amount < 5", False),  # arguments: a service call's context has none
        ('context.ticket == "9"', False),  # context the decision never supplies
        ("context.now + 9223372036854775807 > 0", False),  # overflows: an evaluation error
        ('principal.getTag("orders.access").contains("nope")', False),
        ("context.now > 0", True),  # the attempt is real: a caveat that holds lets it through
    ],
)
def test_a_caveat_on_a_service_a_bundle_declares_is_evaluated_and_fails_closed(
    caveat: str, allowed: bool
) -> None:
    """Cedar beside the rules (GatedPolicy): a delegate's caveat that errors or needs what a
    service call does not carry denies the call; only one that holds allows it."""
    scene = scene_with(sub_caveats=(caveat,))
    sub = scene.peer(scene.world.sub_chain, "sub")
    decision = scene.policy().decide(ask(sub, "orders", "read"))
    assert decision.allowed is allowed, decision.reasons
    if not allowed:
        assert "caveat:1:0" in decision.reasons[0]
