"""Review 63i, access: the node's one decision point (troth.node.access) and the service host
(troth.node.services.host) attacked from the callers' side.

access 1: a caller refused every method of a service learned the names of its methods by
  calling made-up ones: a method the service has was answered `denied`, one it has not
  `failed` ("service echo has no method 'x'"), before the caller was decided at all. A
  stranger on a node that admits strangers (one hosting an authority or a broker: anyone may
  enroll) listed the methods of the operator's own services by name. Now a method the service
  does not have is answered "no method" only to a caller the decision point allows some
  method of that service; any other caller gets the denial a method of it gets, and a source
  that is no verified caller is refused first (`ServiceHost._no_method`). At most
  `MAX_METHODS_DECIDED` methods are decided for it (an operator's service may have many, and
  a peer chooses how many such requests it sends).
access 2 (fixed by review 64b, access 1; troth.node.channels): the same oracle for the
  services themselves. A stranger's request to a service the node serves is answered `denied`,
  one to a service it does not serve `no-route` ("... may not reach /service/payroll"), so a
  stranger lists the operator's own services by name (and which optional ones run: broker,
  trace, an MCP server). Fix where the no-route answer is made (`ChannelManager._deliver`):
  a request to a `/service/` address the node does not serve, from a caller the decision
  point would refuse a members-only method, answered as such a method's denial
  (`ServiceHost.unserved`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.channels import UnverifiedSource
from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.errors import Denied, RemoteError, RoutingError
from troth.node.access import AccessRequest, Decision, MembersOnly, RulesPolicy, Standing
from troth.node.channel_ends import caller_of
from troth.node.services import ServiceHost, call, service_address
from troth.node.services.base import MAX_METHODS_DECIDED
from troth.node.services.echo import EchoService
from troth.node.services.protocol import decode_response, encode_request, result_of
from troth.routing import Address, RoutedMessage, Router, new_worker_address


async def _strangers_channel(net: MemNet) -> tuple[Any, Any]:
    """A stranger's node and its channel to the hub (admitted: anyone may enroll there)."""
    mallory = await net.node("mallory")
    authority = net.authority.identifier
    end = await mallory.channel_to(
        route(HUB), also_trust=frozenset({authority}), expect=authority, claimed=True
    )
    return mallory, end


def test_a_stranger_cannot_tell_a_services_methods_from_made_up_names(tmp_path: Path) -> None:
    """access 1: over the channel the hub admits it to (to enroll), a stranger calls echo's
    `discard` and a name echo has not: both are refused alike, with the same reasons; a
    member calling the made-up name is still told the service has no such method."""

    async def test(net: MemNet) -> None:
        mallory, end = await _strangers_channel(net)
        echo = (end.enc, service_address("echo"))
        refusals = []
        for method in ("discard", "no-such-method"):
            with pytest.raises((Denied, RemoteError)) as refused:
                await call(mallory.router, echo, method, "x", timeout=5)
            refusals.append(refused.value)
        known, made_up = refusals
        assert isinstance(known, Denied), known
        assert isinstance(made_up, Denied), made_up
        assert made_up.reasons == known.reasons
        assert "no-such-method" not in str(made_up)
        alice = await net.member("alice")
        mine = await alice.channel_to(route(HUB))
        with pytest.raises(RemoteError, match="has no method 'no-such-method'"):
            await call(alice.router, (mine.enc, service_address("echo")), "no-such-method", 1)

    run_memnet(test, tmp_path)


def test_a_source_that_is_no_verified_caller_is_refused_before_the_method_is_looked_up() -> None:
    """access 1: a message from a source that is no verified caller, to a method echo has and
    to one it has not: both refused alike (it was told "no method" for the second)."""

    async def main() -> list[BaseException]:
        router = Router()
        policy = RulesPolicy("hub", {}, lambda _peer, _now: Standing(()))
        host = ServiceHost(router, policy, clock=lambda: 1, callers=caller_of)
        host.add(EchoService())
        answers: list[bytes] = []
        reply = new_worker_address("calls")

        async def take(message: RoutedMessage, _source: object) -> None:
            answers.append(bytes(message.payload))

        router.register(reply, take)
        for request, method in enumerate(("echo", "no-such-method")):
            payload = encode_request(request, method, "x")
            message = RoutedMessage((service_address("echo"),), (reply,), payload)
            await router.route(message, UnverifiedSource())
        await asyncio.sleep(0)
        refusals: list[BaseException] = []
        for answer in answers:
            with pytest.raises((Denied, RemoteError)) as refused:
                result_of(decode_response(answer)[1])
            refusals.append(refused.value)
        return refusals

    known, made_up = asyncio.run(main())
    assert isinstance(known, Denied), known
    assert isinstance(made_up, Denied), made_up
    assert "not a verified caller" in made_up.reasons[0]


def test_a_made_up_method_costs_a_bounded_number_of_decisions() -> None:
    """access 1: a member allowed only the last of an operator's 200 methods asks for a
    made-up one: at most MAX_METHODS_DECIDED decisions are made, and it is refused."""
    decided: list[str] = []

    class Counting:
        def decide(self, request: AccessRequest) -> Decision:
            decided.append(request.method)
            return Decision(request.method == "m199", ("hub refused it",))

    async def handler(request: Any) -> Any:
        return None

    service = troth.Service("orders")
    for n in range(200):
        service.method(f"m{n}", allow=MembersOnly())(handler)

    async def main() -> bytes:
        router = Router()
        host = ServiceHost(router, Counting(), clock=lambda: 1, callers=caller_of)
        host.add(service)
        answers: list[bytes] = []
        reply = new_worker_address("calls")

        async def take(message: RoutedMessage, _source: object) -> None:
            answers.append(bytes(message.payload))

        router.register(reply, take)
        payload = encode_request(1, "made-up", None)
        await router.route(RoutedMessage((service_address("orders"),), (reply,), payload))
        return answers[0]

    answer = asyncio.run(main())
    assert len(decided) == MAX_METHODS_DECIDED
    with pytest.raises(Denied):
        result_of(decode_response(answer)[1])


def test_a_stranger_cannot_tell_served_services_from_made_up_names(tmp_path: Path) -> None:
    """access 2: the stranger asks echo (served: members only) and payroll (not served): both
    are refused alike, with the same reasons."""

    async def test(net: MemNet) -> None:
        mallory, end = await _strangers_channel(net)
        refusals = []
        for service in ("echo", "payroll"):
            with pytest.raises((Denied, RemoteError, RoutingError)) as refused:
                await call(mallory.router, (end.enc, Address("service", service)), "echo", "x")
            refusals.append(refused.value)
        served, made_up = refusals
        assert isinstance(served, Denied), served
        assert isinstance(made_up, Denied), made_up
        assert made_up.reasons == served.reasons

    run_memnet(test, tmp_path)
