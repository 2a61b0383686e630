"""Review 64b, access: a stranger lists a node's services by name (review 63i, access 2).

access 1 (high; fixed): a stranger's request to a service the node serves (members only) was
  answered `denied`, one to a made-up `/service/` name `no-route` ("... may not reach
  /service/payroll"): on a node that admits strangers (one hosting an authority: anyone may
  enroll) a stranger listed the operator's own services by name, and which optional ones
  run (trace, policy, an MCP server), and a revoked member whose channel is still open did
  the same. Now such a request, from a caller the decision point refuses a members-only
  method (`troth.node.access.UNSERVED`), is answered as a served members-only method
  answers it (`ServiceHost.unserved`, called where the no-route answer is made:
  `ChannelManager._deliver`): the same bytes on the wire, a malformed one's `failed` and
  unanswered cases included. Members still get the honest `no-route`.
access 2 (medium; fixed): a one-way service (sink) left a stranger's request-shaped message
  unanswered (its refusal only logged), where a made-up name now answers `denied`: the
  silence told the sink apart. Now a refused one-way service answers a request sent to it as
  any service does (nothing when it is no request).
access 3 (low; fixed): a request to a method of a served service that is not `inline` was
  checked against the limits of requests running before it was decided: a stranger holding
  its share running (an open method's calls: a status page, a broker's) was answered `busy`
  by trace's methods and `denied` by made-up names. Now such a request is decided first; one
  refused is answered its denial whatever runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.waits import until
from troth.encoding import cbor
from troth.node.access import AnyAuthenticated, MembersOnly
from troth.node.runtime import NodeRuntime
from troth.node.services import call
from troth.node.services.admission import Admission, RequestLimits
from troth.node.services.base import (
    REQUEST,
    VERSION,
    Method,
    RequestContext,
    decode_response,
    encode_request,
    service_address,
)
from troth.routing import Address, RoutedMessage, new_worker_address


async def strangers_channel(net: MemNet) -> tuple[NodeRuntime, Any]:
    """A stranger's node and its channel to the hub (admitted: anyone may enroll there)."""
    mallory = await net.node("mallory")
    authority = net.authority.identifier
    end = await mallory.channel_to(
        route(HUB), also_trust=frozenset({authority}), expect=authority, claimed=True
    )
    return mallory, end


async def answers(
    runtime: NodeRuntime,
    end: Any,
    asks: Sequence[tuple[str | Address, bytes]],
    *,
    each: bool = True,
) -> list[bytes]:
    """The raw answers to the payloads sent to `/service/<name>` (or an address) on `end`'s
    peer, each sent
    once the one before was answered (`each`; else all at once, returned at the first answer:
    the answers come back in order)."""
    reply = new_worker_address("answers")
    got: list[bytes] = []

    async def take(message: RoutedMessage, _source: object) -> None:
        got.append(bytes(message.payload))

    runtime.router.register(reply, take)
    try:
        for n, (name, payload) in enumerate(asks, 1):
            to = name if isinstance(name, Address) else Address("service", name)
            message = RoutedMessage((end.enc, to), (reply,), payload)
            await runtime.router.route(message)
            if each:
                await until(lambda n=n: len(got) >= n)  # type: ignore[misc]
        await until(lambda: bool(got))
    finally:
        runtime.router.unregister(reply)
    return got


def request(method: object = "echo") -> bytes:
    """A request with id 7 (a method that is no text when `method` is not one)."""
    return cbor.encode([REQUEST, VERSION, 7, method, "x"])


class Payroll:
    """An operator's service, members only."""

    name = "payroll"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods = {"echo": Method(self.echo, MembersOnly(), inline=True)}

    async def echo(self, arguments: Any, context: RequestContext) -> Any:
        return arguments

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


def test_a_stranger_gets_the_same_bytes_from_served_and_made_up_services(tmp_path: Path) -> None:
    """access 1: the stranger's requests to echo, trace and policy (served, members only), to
    the channel listener and to made-up names: byte for byte the same answers, for a request,
    a made-up method, and a method that is no text (`failed` alike); a malformed one goes
    unanswered everywhere."""

    async def test(net: MemNet) -> None:
        mallory, end = await strangers_channel(net)
        names = ("echo", "trace", "policy", "channels", "sink", "payroll", "x" * 60)
        denials = []
        for payload in (request(), request("no-such-method"), request(5)):
            got = await answers(mallory, end, [(name, payload) for name in names])
            denials.append(got[0])
            assert len(set(got)) == 1, (payload, got)
            kind = decode_response(got[0])[1][4]["error"]
            assert kind == ("failed" if payload == request(5) else "denied")
        # malformed: unanswered everywhere (the request after them is the first answered)
        asks = [(name, b"\x01") for name in names]
        first = await answers(mallory, end, [*asks, ("echo", request())], each=False)
        assert first[:1] == denials[:1]

    run_memnet(test, tmp_path)


def test_a_revoked_member_cannot_tell_served_services_from_made_up_ones(tmp_path: Path) -> None:
    """access 1: alice is revoked while her channel to the hub is open (before the next check
    closes it): echo and a made-up name answer her alike (her revocation), where the made-up
    one said `no-route`."""

    async def test(net: MemNet) -> None:
        alice = await net.member("alice")
        end = await alice.channel_to(route(HUB))
        authority = net.authority
        authority.revoke_identity(net.identifier(alice), now=net.clock.now())
        assert net.hub is not None
        await net.hub.refresh_feeds()
        served, made_up = await answers(alice, end, [("echo", request()), ("payroll", request())])
        assert served == made_up
        assert decode_response(served)[1][4]["error"] == "denied"

    run_memnet(test, tmp_path)


def test_a_one_way_service_answers_a_strangers_request_as_a_made_up_name_does(
    tmp_path: Path,
) -> None:
    """access 2: a request sent to sink (one-way, members only) and to a made-up name: the
    same `denied` answer (sink's was silence)."""

    async def test(net: MemNet) -> None:
        mallory, end = await strangers_channel(net)
        sink, made_up = await answers(mallory, end, [("sink", request()), ("sunk", request())])
        assert sink == made_up
        assert decode_response(sink)[1][4]["error"] == "denied"

    run_memnet(test, tmp_path)


def test_a_service_started_at_run_time_answers_a_stranger_as_before(tmp_path: Path) -> None:
    """access 1: the stranger asks payroll before the operator starts it and after: the same
    bytes; a member is told `no-route` before and gets its answer after."""

    async def test(net: MemNet) -> None:
        mallory, end = await strangers_channel(net)
        alice = await net.member("alice")
        mine = await alice.channel_to(route(HUB))
        (before,) = await answers(mallory, end, [("payroll", request())])
        (members,) = await answers(alice, mine, [("payroll", request())])
        assert decode_response(members)[1][4]["error"] == "no-route"
        assert net.hub is not None
        net.hub.add_service(Payroll())
        (after,) = await answers(mallory, end, [("payroll", request())])
        assert before == after
        (members,) = await answers(alice, mine, [("payroll", request())])
        assert decode_response(members)[1][4] == "x"
        assert service_address("payroll") in net.hub.host.addresses()
        assert encode_request(7, "echo", "x") == request()

    run_memnet(test, tmp_path)


class Lobby:
    """An operator's service open to any authenticated identity, whose method waits."""

    name = "lobby"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods = {"wait": Method(self.wait, AnyAuthenticated())}
        self.open = asyncio.Event()

    async def wait(self, arguments: Any, context: RequestContext) -> Any:
        await self.open.wait()
        return None

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


def test_a_stranger_holding_its_requests_running_is_denied_not_told_busy(
    tmp_path: Path,
) -> None:
    """access 3: the stranger holds its one request running (a lobby call that waits) and asks
    trace's `head` (served, members only, not inline) and a made-up service's: the same
    denial, not `busy` for the served one."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        lobby = Lobby()
        hub.add_service(lobby)
        hub.host.admission = Admission(RequestLimits(per_peer=1))
        mallory, end = await strangers_channel(net)
        waiting = asyncio.ensure_future(
            call(mallory.router, (end.enc, service_address("lobby")), "wait", None, timeout=5)
        )
        try:
            await until(lambda: hub.host.running == 1)
            asks = [("trace", request("head")), ("payroll", request("head"))]
            served, made_up = await answers(mallory, end, asks)
            assert served == made_up
            assert decode_response(served)[1][4]["error"] == "denied"
        finally:
            lobby.open.set()
            await waiting

    run_memnet(test, tmp_path)
