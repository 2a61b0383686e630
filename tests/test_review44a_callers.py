"""Review 44a, callers: who each service of a node lets through its one decision point
(docs/protocols.md, "Access"), on real node pairs: caveated delegates, a delegate of a
delegate, a co-trusted authority's member on a node hosting another authority and on one
hosting none, and a stranger.

Refuted (pinned), as the docs say:
- a caveated delegate of a member is refused by every built-in members' or attributes' rule
  (echo, sink, trace, policy, relay: caveats fail closed), reaches `mcp.*` (`GatedMembers`: the
  gate decides each tools/call with its caveats) and the `AnyAuthenticated` methods (the
  authority's feed; the broker, which then refuses a lease the caveats do not allow);
- a delegate of a delegate (no caveats) passes as a member does, `troth.relay` included when
  its chain carries it;
- a co-trusted authority's member (globex, on the hub hosting acme) passes the unpinned
  members' rules (echo, sink, trace, policy: "holders of a verified credential from a trust
  anchor") and is refused the relay (pinned to the hosted authority, review 38a); on a node
  hosting none it creates a relay name with its own authority's grant;
- a stranger (no credential) reaches only the `AnyAuthenticated` methods.

callers 1 (docs, fixed): docs/protocols.md's table of rules listed `MembersOnly(authority=A)`
for echo, sink and policy, leaving it to the reader whether `A` was the authority the node
hosts; none of them (nor trace, missing from the list) names one, so a co-trusted authority's
member passes them all on the hub (pinned below). The table now says so.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.brokers import run_broker
from tests.support.mcp_orders import orders_server
from tests.support.nodes import HUB, MemNet, globex_over_tcp, route
from tests.test_review44a_open_channels import (
    ALL_DENIED,
    ALL_PASS,
    hold_delegate,
    outcomes,
    sink_refused,
)
from troth.credentials import Attributes
from troth.identity import Identifier
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.mcp import publish_upstream

MEMBERS_ONLY = ("echo", "trace", "policy", "relay")


def delegate_from(
    runtime: NodeRuntime, delegator: str, name: str, caveats: tuple[str, ...] = ()
) -> Identifier:
    """Local identity `name`, delegated troth.relay=alice by local identity `delegator`."""
    now = runtime.clock.now()
    subject = runtime.node.identities.create(now=now, name=name).identifier
    chain = runtime.node.wallet.delegate(
        delegator,
        to=subject,
        attributes=Attributes({"agents.team": "support", "troth.relay": "alice"}),
        now=now,
        ttl=600,
        purpose="a helper",
        caveats=caveats,
    )
    runtime.node.wallet.hold(name, chain, now=now)
    return subject


def test_caveated_and_second_hand_delegates(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await publish_upstream(hub, "orders", orders_server())
        alice = await net.member("alice", **{"troth.relay": "alice"})
        caveated = await alice.worker.run(
            delegate_from, alice, "alice", "caveated", ("context.now < 0",)
        )
        end = await alice.channel_as("caveated", route(HUB))
        assert await outcomes(alice, end, hub, caveated) == {
            **ALL_PASS,
            **dict.fromkeys(MEMBERS_ONLY, "denied"),
        }
        assert await sink_refused(alice, end, hub) == 1
        issued = await call(
            alice.router,
            (end.enc, service_address("broker")),
            "issue",
            {"secret": "payments", "scope": ["refunds"], "ttl": 60},
        )
        assert issued.get("refused") == "DENIED", issued  # its caveat allows no lease

        await alice.worker.run(hold_delegate, alice, "helper", 600)
        second = await alice.worker.run(delegate_from, alice, "helper", "second")
        end = await alice.channel_as("second", route(HUB))
        assert await outcomes(alice, end, hub, second) == ALL_PASS
        assert await sink_refused(alice, end, hub) == 0

    run_broker(test, tmp_path)


def test_a_co_trusted_member_and_a_stranger_on_the_hub(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await publish_upstream(hub, "orders", orders_server())
        _globex_node, globex, ticket = await globex_over_tcp(net)
        await hub.enroll(ticket, "hub")  # the hub trusts globex from now on
        member = await net.node("gm")
        granted = globex.create_ticket(
            creator=globex.identifier,
            attributes=Attributes({"globex.team": "desk", "troth.relay": "*"}),
            address="/tcp/globex:4000",
            now=net.clock.now(),
        )
        await member.enroll(str(granted), "gm")
        hub_id = net.identifier(hub)  # gm trusts globex only: it pins the hub by its identity
        end = await member.channel_to(route(HUB), expect=hub_id, also_trust=frozenset({hub_id}))
        assert await outcomes(member, end, hub, net.identifier(member)) == {
            **ALL_PASS,
            "relay": "denied",  # pinned to acme, the authority the hub hosts
        }
        assert await sink_refused(member, end, hub) == 0

        stranger = await net.node("stranger")
        end = await stranger.channel_to(route(HUB), expect=hub_id, also_trust=frozenset({hub_id}))
        assert await outcomes(stranger, end, hub, net.identifier(stranger)) == {
            **ALL_DENIED,
            "authority": "passed",
            "broker": "passed",
        }

    run_broker(test, tmp_path)


def test_a_co_trusted_member_on_a_node_hosting_none_takes_a_relay_name(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        _globex_node, globex, ticket = await globex_over_tcp(net)
        desk = await net.node("desk", listen=("desk", 4000))
        await desk.enroll(net.ticket(), "desk")
        await desk.worker.run(lambda: desk.node.identities.create(now=net.clock.now(), name="g"))
        await desk.enroll(ticket, "g")
        member = await net.node("gm")
        granted = globex.create_ticket(
            creator=globex.identifier,
            attributes=Attributes({"globex.team": "desk", "troth.relay": "*"}),
            address="/tcp/globex:4000",
            now=net.clock.now(),
        )
        await member.enroll(str(granted), "gm")
        desk_id = net.identifier(desk)
        end = await member.channel_to(
            route("/tcp/desk:4000"), expect=desk_id, also_trust=frozenset({desk_id})
        )
        relay = (end.enc, service_address("relay"))
        await call(member.router, relay, "create", "tools")
        assert "tools" in desk.relays
        echo = (end.enc, service_address("echo"))
        assert await call(member.router, echo, "echo", "hi") == "hi"

    run_broker(test, tmp_path)
