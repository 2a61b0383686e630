"""Review 61i: attacks on the node's access decision point, service dispatch and control socket
that did not work. Each test is a real attempt that would fail if the defence broke."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_channel_manager import until
from tests.test_node_runtime import delegated
from troth.errors import Denied
from troth.node.runtime import ECHO
from troth.node.services import call, service_address
from troth.routing import RoutedMessage

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
        await until(lambda: hub.host.refused == refused + 1)
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
