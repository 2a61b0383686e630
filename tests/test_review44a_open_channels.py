"""Review 44a, open channels: a peer's standing changes while its channel to a node is open
(docs/protocols.md, "Access": "per request, not per channel"). The hub hosts acme and serves
echo, sink, relay, authority, policy, trace, a broker and a published MCP server; a member
(alice) or her delegate opens one channel, is allowed, and then:

- her identity is revoked by the hub's authority;
- her delegator (alice, for the delegate's channel) is revoked;
- the delegate's credential expires (past the credential skew, the hub's feed still fresh).

Refuted (pinned): the very next request on the same open channel is refused `denied` by every
service (a one-way message to `sink` is refused and counted), nothing is cached per channel:
`ServiceHost` decides each request, `NodeTrust.standing` is cached per peer object, feed
generation and second only. Methods that are `AnyAuthenticated` (the authority's, the
broker's) still refuse a revoked identity (the standing's problem refuses every rule); an
expired credential leaves the peer a stranger there, which the authority's `feed` serves by
design (strangers enroll) and the broker's methods judge on its credentials (none left).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from tests.support.brokers import run_broker
from tests.support.mcp_orders import orders_server
from tests.support.nodes import HUB, MemNet, route
from troth.credentials import Attributes
from troth.encoding import cbor
from troth.errors import Denied, TrothError
from troth.identity import Identifier
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.mcp import publish_upstream
from troth.routing import RoutedMessage

SKEW = 60  # troth.limits.DEFAULT_CREDENTIAL_SKEW_SECONDS


def requests_to(hub: NodeRuntime, agent: Identifier) -> dict[str, tuple[str, Any]]:
    """One request per service the hub serves (the arguments need not be valid: only whether
    the decision point lets it through matters)."""
    acme = hub.node.authority().identifier
    frame = cbor.encode(["troth.mcp.frame", 1, b"\x01" * 16, None])
    return {
        "echo": ("echo", "hi"),
        "trace": ("head", [str(agent)]),
        "policy": ("get", [acme.digest, 0]),
        "relay": ("create", "alice"),
        "broker": ("list", {"ended": False}),
        "mcp.orders": ("send", [frame, "calls-0000000000000000"]),
        "authority": ("feed", [1 << 40]),
    }


async def outcome(runtime: NodeRuntime, end: Any, service: str, method: str, args: Any) -> str:
    """ "denied" when the decision point refused the request, else "passed" (answered, or
    failed in the handler)."""
    try:
        await call(runtime.router, (end.enc, service_address(service)), method, args, timeout=5)
    except Denied:
        return "denied"
    except TrothError:
        return "passed"
    return "passed"


async def outcomes(
    runtime: NodeRuntime, end: Any, hub: NodeRuntime, agent: Identifier
) -> dict[str, str]:
    return {
        service: await outcome(runtime, end, service, method, args)
        for service, (method, args) in requests_to(hub, agent).items()
    }


async def sink_refused(runtime: NodeRuntime, end: Any, hub: NodeRuntime) -> int:
    """Send one one-way message to the hub's sink; how many the hub's host refused since."""
    before = hub.host.refused
    with contextlib.suppress(TrothError):
        await runtime.router.route(RoutedMessage((end.enc, service_address("sink")), (), b"x" * 16))
    for _ in range(50):  # the one-way message is delivered through the memory network
        if hub.host.refused != before:
            break
        await asyncio.sleep(0.01)
    return hub.host.refused - before


def hold_delegate(member: NodeRuntime, name: str, ttl: int) -> Identifier:
    """`member` delegates its attributes (and troth.relay=alice) to local identity `name`."""
    now = member.clock.now()
    helper = member.node.identities.create(now=now, name=name).identifier
    chain = member.node.wallet.delegate(
        member.name,
        to=helper,
        attributes=Attributes({"agents.team": "support", "troth.relay": "alice"}),
        now=now,
        ttl=ttl,
        purpose="a helper",
    )
    member.node.wallet.hold(name, chain, now=now)
    return helper


SERVICES = ("echo", "trace", "policy", "relay", "broker", "mcp.orders", "authority")
ALL_PASS = dict.fromkeys(SERVICES, "passed")
ALL_DENIED = dict.fromkeys(SERVICES, "denied")


async def revoke_at_hub(net: MemNet, hub: NodeRuntime, who: Identifier) -> None:
    """The hub's authority revokes `who`, and the hub reads its own feed (what its 1 s poll of
    the store does)."""
    net.authority.revoke_identity(who, now=net.clock.now())
    assert await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())


def test_a_revoked_members_open_channel_is_refused_by_every_service(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await publish_upstream(hub, "orders", orders_server())
        alice = await net.member("alice", **{"troth.relay": "alice"})
        me = net.identifier(alice)
        end = await alice.channel_to(route(HUB))
        assert await outcomes(alice, end, hub, me) == ALL_PASS
        assert await sink_refused(alice, end, hub) == 0
        await revoke_at_hub(net, hub, me)
        assert await outcomes(alice, end, hub, me) == ALL_DENIED
        assert await sink_refused(alice, end, hub) == 1

    run_broker(test, tmp_path)


def test_a_delegates_open_channel_is_refused_once_its_delegator_is_revoked(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await publish_upstream(hub, "orders", orders_server())
        alice = await net.member("alice", **{"troth.relay": "alice"})
        helper = await alice.worker.run(hold_delegate, alice, "helper", 600)
        end = await alice.channel_as("helper", route(HUB))
        assert await outcomes(alice, end, hub, helper) == ALL_PASS
        await revoke_at_hub(net, hub, net.identifier(alice))
        # the delegate is no longer a member: every members' rule refuses it; the authority's
        # feed serves it as a stranger (newcomers enroll), the broker judges it on no
        # credential (a failed answer: it holds none that verifies)
        after = await outcomes(alice, end, hub, helper)
        assert after == {**ALL_DENIED, "authority": "passed", "broker": "passed"}
        assert await sink_refused(alice, end, hub) == 1
        lease = await call(
            alice.router,
            (end.enc, service_address("broker")),
            "issue",
            {"secret": "payments", "scope": ["refunds"], "ttl": 60},
        )
        assert "refused" in lease, lease  # no credential left to lease with

    run_broker(test, tmp_path)


def test_a_delegates_open_channel_is_refused_once_its_credential_expired(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await publish_upstream(hub, "orders", orders_server())
        alice = await net.member("alice", **{"troth.relay": "alice"})
        helper = await alice.worker.run(hold_delegate, alice, "helper", 120)
        end = await alice.channel_as("helper", route(HUB))
        assert await outcomes(alice, end, hub, helper) == ALL_PASS
        net.clock.advance(120 + SKEW + 5)  # past the window and its skew; feeds still fresh
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now(), force=True)
        after = await outcomes(alice, end, hub, helper)
        assert after == {**ALL_DENIED, "authority": "passed", "broker": "passed"}
        assert await sink_refused(alice, end, hub) == 1

    run_broker(test, tmp_path)
