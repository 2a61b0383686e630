"""Review 58n: attacks on the node's one access decision point that did not work (each test
fails if the defence it tries breaks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_node_runtime import CAVEAT, CAVEATS_REASON, delegated
from troth.credentials import Attributes
from troth.errors import Denied
from troth.node import Node
from troth.node.access import GatedMembers, PeerCaller
from troth.node.runtime import ECHO, SINK, NodeRuntime
from troth.node.services import Method, RequestContext, call, service_address

POLICY, TRACE, RELAY = (service_address(name) for name in ("policy", "trace", "relay"))


class Gated:
    """A service whose one method admits caveated credentials (`GatedMembers`, as an MCP
    server's `send`): it makes its node open channels to caveated delegates."""

    name = "gated"
    oneway = None

    def __init__(self) -> None:
        self.callers: list[str] = []
        self.methods = {"ask": Method(self.ask, GatedMembers())}

    async def ask(self, arguments: Any, context: RequestContext) -> str:
        assert isinstance(context.caller, PeerCaller)
        self.callers.append(str(context.caller.identifier))
        return "ok"

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


async def _below(net: MemNet, holder: NodeRuntime, ref: str, name: str) -> NodeRuntime:
    """Node `name` holding only a delegation, without caveats of its own, from `holder`'s
    delegated credential `ref` (whose own link carries the caveat)."""
    now = net.clock.now()

    def hold(node: Node) -> None:
        identity = node.identities.create(now=now, name=name).identifier
        chain = holder.node.wallet.delegate(
            ref,
            to=identity,
            attributes=Attributes({"agents.team": "support", "troth.relay": "*"}),
            now=now,
            ttl=600,
            purpose="sub-task",
        )
        node.wallet.hold(name, chain, now=now)
        node.wallet.trust(net.authority.identifier, HUB, now=now)

    runtime = await net.node(name, prepare=hold)
    await runtime.refresh_feeds()
    return runtime


def test_a_caveat_on_an_intermediate_link_is_denied_on_every_service(tmp_path: Path) -> None:
    """erin's own link carries no caveat; carol's, above it, does: the chain's caveats are
    every link's, so erin reaches nothing a built-in rule decides — on the authority node
    (echo, sink, relay, policy, trace), nor on a plain node whose gated service makes it open
    channels to caveated delegates (echo, policy, trace there; the gated method itself lets
    erin in, its service deciding each request)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        alice = await net.member("alice", **{"troth.relay": "*"})
        carol, _ = await delegated(net, alice, "carol", (CAVEAT,))
        erin = await _below(net, carol, "carol", "erin")
        (held,) = erin.node.wallet.held("erin")
        assert erin.node.wallet.inspect(held.chain, now=net.clock.now()).links[-1].caveats == ()
        gated = Gated()
        plain = await net.node("plain", listen=("plain", 5000))
        await plain.enroll(net.ticket(), "plain")
        plain.add_service(gated)
        for where, node in ((route(HUB), hub), (route("/tcp/plain:5000"), plain)):
            end = await erin.channel_to(where)
            for service, method in ((ECHO, "echo"), (POLICY, "get"), (TRACE, "head")):
                with pytest.raises(Denied) as denied:
                    await call(erin.router, (end.enc, service), method, None)
                assert CAVEATS_REASON in denied.value.reasons[0], (node.name, service)
            refused = node.host.refused
            await erin.send_oneway(where, SINK, b"x")
            with pytest.raises(Denied):  # answered after the one-way message was handled
                await call(erin.router, (end.enc, ECHO), "echo", "sync")
            assert node.host.refused >= refused + 2  # (start-up maintenance is refused too: 62m)
            assert node.status()["sunk"]["messages"] == 0
        end = await erin.channel_to(route(HUB))
        with pytest.raises(Denied) as denied:
            await call(erin.router, (end.enc, RELAY), "create", "erin")
        assert CAVEATS_REASON in denied.value.reasons[0]
        end = await erin.channel_to(route("/tcp/plain:5000"))
        assert await call(erin.router, (end.enc, service_address("gated")), "ask", None) == "ok"
        assert gated.callers == [str(net.identifier(erin))]

    run_memnet(test, tmp_path)


def test_a_credential_that_expired_mid_channel_is_denied_on_the_next_request(
    tmp_path: Path,
) -> None:
    """dave's only credential (600 s) expires, and the 60 s clock skew allowed after it
    passes, while its channel to the hub stays open: the decision is made again at each
    request, not kept from the first one (nor from the handshake), and the next request is
    refused on the same channel."""

    async def test(net: MemNet) -> None:
        alice = await net.member("alice", **{"troth.relay": "*"})
        dave, _ = await delegated(net, alice, "dave")
        end = await dave.channel_to(route(HUB))
        assert await call(dave.router, (end.enc, ECHO), "echo", "one") == "one"
        net.clock.advance(600 + 61)  # past the 60 s clock-skew allowance
        hub = net.hub
        assert hub is not None
        hub.trust.refresh_hosted(net.clock.now(), force=True)  # its feed fresh: only expiry
        with pytest.raises(Denied) as denied:
            await call(dave.router, (end.enc, ECHO), "echo", "two")
        assert "expired" in denied.value.reasons[0], denied.value.reasons
        assert end.enc in dave.channels.ends  # the same channel, still open

    run_memnet(test, tmp_path)
