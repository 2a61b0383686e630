"""Review 38a, relay: whose `troth.relay` grant claims a relay name on a hub that hosts acme
and also trusts globex (it enrolled with globex to use globex's services).

A node trusts every authority it enrolls with, and each of them may grant any attribute
(review 35d, access 1). A relay name is the hub's: the route `/tcp/hub:4000/relay/NAME` that
the hub's own members give out for the node behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cotrust import make_cotrust, member_chain
from tests.support.gates import T
from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from troth.authority import Authority
from troth.channel import VerifiedPeer
from troth.credentials import Attributes
from troth.errors import Denied
from troth.identity import Identifier
from troth.node.access import (
    AccessRequest,
    AttributeCoversArgument,
    PeerCaller,
    RulesPolicy,
    Standing,
)
from troth.node.runtime import NodeRuntime
from troth.node.services.relay import RELAY_ATTRIBUTE


async def globex_relayer(net: MemNet, globex: Authority, name: str) -> NodeRuntime:
    """A globex member whose credential carries `troth.relay=*` (globex grants what it likes)."""
    runtime = await net.node(name)
    ticket = globex.create_ticket(
        creator=globex.identifier,
        attributes=Attributes({"globex.team": "desk", "troth.relay": "*"}),
        address="/tcp/globex:4000",
        now=net.clock.now(),
    )
    await runtime.enroll(str(ticket), name)
    return runtime


def test_a_co_trusted_authoritys_relay_grant_claims_no_name_on_the_hub(tmp_path: Path) -> None:
    """Relay 1. The hub hosts acme and relays for acme's members (`troth.relay`, acme's
    attribute). It enrolls with globex. A globex member, granted `troth.relay=*` by globex,
    creates `/relay/tools` on the hub before acme's tools node does (or once that node's
    grace period ran out): acme's agents routing to `/tcp/hub:4000/relay/tools` reach the
    globex member's node (a client that pins nothing and also trusts globex talks to it), and
    acme's tools node is refused its own name (`belongs to another identity`). The hub's
    operator granted globex nothing. Wanted: on a node hosting an authority only that
    authority's `troth.relay` counts (as the broker's `troth.broker=admin`, review 36b), acme's
    own member still creating its name.

    Was a strict xfail until the node's composition passed the authority it hosts to
    `RelayService(authority=)` (before, relaying for every trusted authority's members was the
    design, docs/protocols.md "Services"); review 21's shares test now runs its globex relay
    names on a relay node hosting none."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        _globex_node, globex, ticket = await globex_over_tcp(net)
        await net.hub.enroll(ticket, "hub")  # the hub trusts globex from now on
        mallory = await globex_relayer(net, globex, "mallory")
        with pytest.raises(Denied) as refused:
            await mallory.create_relay("tools", HUB)
        assert f"no credential from {net.authority.identifier}" in str(refused.value)
        assert "tools" not in net.hub.relays
        tools = await net.member("tools", **{"troth.relay": "tools"})
        created = await tools.create_relay("tools", HUB)
        assert created["route"] == f"{HUB}/relay/tools"
        assert net.hub.relays["tools"].owner == net.identifier(tools)

    run_memnet(test, tmp_path / "home")


def test_a_pinned_relay_rule_counts_one_authoritys_grant_only() -> None:
    """`AttributeCoversArgument(authority=acme)`: a globex chain holding `troth.relay=*` does
    not cover `tools` (the refusal names acme and says globex's chain does not count); an acme
    chain holding `troth.relay=tools` does; unpinned, globex's grant counts (the composition's
    rule on a node hosting none)."""
    co = make_cotrust()
    acme, globex = co.acme.authority, co.globex
    mallory, tools = co.party(), co.party()
    everything = member_chain(globex, mallory, Attributes({RELAY_ATTRIBUTE: "*"}))
    own = member_chain(acme, tools, Attributes({RELAY_ATTRIBUTE: "tools"}))
    peers = {
        mallory.identifier: VerifiedPeer(mallory.identity, (co.credential(everything, mallory),)),
        tools.identifier: VerifiedPeer(tools.identity, (co.credential(own, tools),)),
    }

    def standing(peer: VerifiedPeer, now: int) -> Standing:
        return Standing(peer.credentials)

    def decide(rule: AttributeCoversArgument, who: Identifier) -> tuple[bool, str]:
        policy = RulesPolicy("hub", {("relay", "create"): rule}, standing)
        caller = PeerCaller(peers[who], "c")
        decision = policy.decide(AccessRequest(caller, "relay", "create", "tools", T + 10))
        return decision.allowed, " ".join(decision.reasons)

    pinned = AttributeCoversArgument(RELAY_ATTRIBUTE, authority=acme.identifier)
    allowed, why = decide(pinned, mallory.identifier)
    assert not allowed
    assert f"no credential from {acme.identifier} holds the troth.relay attribute" in why
    assert f"its credentials from {globex.identifier} do not count" in why
    assert decide(pinned, tools.identifier)[0]
    assert decide(AttributeCoversArgument(RELAY_ATTRIBUTE), mallory.identifier)[0]
