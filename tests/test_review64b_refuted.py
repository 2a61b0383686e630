"""Review 64b: attacks on the answer to a request for a service a node does not serve
(`ServiceHost.unserved`, review 64b, access 1) that did not work, each a test that fails if
the defence it names breaks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.channels import UnverifiedSource
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review64b_access import answers, request, strangers_channel
from troth.errors import RoutingError
from troth.node.access import AccessRequest, Decision, GatedMembers, LocalCaller
from troth.node.services.base import (
    Method,
    RequestContext,
    ServiceHost,
    decode_response,
    service_address,
)
from troth.node.services.echo import EchoService
from troth.routing import Address, RoutedMessage, Router, new_worker_address


class Tools:
    """An operator's service under the MCP server's rule (members, each call gated)."""

    name = "tools"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods = {"send": Method(self.send, GatedMembers(), inline=True)}

    async def send(self, arguments: Any, context: RequestContext) -> Any:
        return arguments

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


def test_a_member_is_still_told_that_nothing_serves_a_made_up_name(tmp_path: Path) -> None:
    """A member (the decision point admits it to members-only methods) asking for a made-up
    service is told `no-route` naming it, so an operator can debug a typo; the hub's own
    relayed member answers a member the same way for what it does not serve."""

    async def test(net: MemNet) -> None:
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        alice = await net.member("alice")
        with pytest.raises(RoutingError, match="may not reach /service/payroll"):
            await alice.send_message(f"{HUB}/service/payroll", "x")
        with pytest.raises(RoutingError, match="may not reach /service/payroll"):
            await alice.send_message(f"{HUB}/relay/b/service/payroll", "x")
        assert await alice.send_message(f"{HUB}/relay/b/service/echo", "x") == "x"

    run_memnet(test, tmp_path)


def test_a_stranger_cannot_tell_a_gated_service_from_a_made_up_name(tmp_path: Path) -> None:
    """A service under `GatedMembers` (an MCP server's rule), started at run time: the
    stranger's request to it and to a made-up name get the same bytes."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        net.hub.add_service(Tools())
        mallory, end = await strangers_channel(net)
        tools, made_up = await answers(mallory, end, [("tools", request()), ("tooIs", request())])
        assert tools == made_up
        assert decode_response(tools)[1][4]["error"] == "denied"

    run_memnet(test, tmp_path)


def test_a_stranger_cannot_tell_a_relay_name_from_a_made_up_one(tmp_path: Path) -> None:
    """The stranger sends into its channel to the hub a request for b's relay name and for a
    made-up one: neither is a service, both `no-route` alike (a channel reaches no relay
    address, whichever is held), apart from the name it chose."""

    async def test(net: MemNet) -> None:
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        mallory, end = await strangers_channel(net)
        held, made_up = await answers(
            mallory,
            end,
            [(Address("relay", "b"), request()), (Address("relay", "q"), request())],
        )
        assert held.replace(b"/relay/b", b"/relay/q") == made_up
        assert decode_response(held)[1][4]["error"] == "no-route"

    run_memnet(test, tmp_path)


def test_a_decision_that_fails_answers_served_and_unserved_alike() -> None:
    """A decision point that fails (a bug) on echo's method and on a made-up service's
    request: both answered `failed` ("internal error") alike, not one of them raised into the
    channel's routing."""

    class Failing:
        def decide(self, request: AccessRequest) -> Decision:
            raise RuntimeError("a bug in the decision point")

    async def main() -> list[bytes]:
        router = Router()
        host = ServiceHost(router, Failing(), clock=lambda: 1, callers=lambda _s: LocalCaller())
        host.add(EchoService())
        got: list[bytes] = []
        reply = new_worker_address("answers")

        async def take(message: RoutedMessage, _source: object) -> None:
            got.append(bytes(message.payload))

        router.register(reply, take)
        await router.route(
            RoutedMessage((service_address("echo"),), (reply,), request()), UnverifiedSource()
        )
        unserved = RoutedMessage((Address("service", "payroll"),), (reply,), request())
        assert await host.unserved(unserved, UnverifiedSource())
        await asyncio.sleep(0)
        return got

    served, made_up = asyncio.run(main())
    assert served == made_up
    assert decode_response(served)[1][4]["message"] == "internal error"
