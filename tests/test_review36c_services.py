"""Review 36c, services: which bundles put a node's service under Cedar for whom, on a node
that trusts two authorities (the hub hosts acme and enrolled with globex, to use globex's
services)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cotrust import CoTrust, make_cotrust, member_chain
from tests.support.gates import TOOLS, T
from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.test_gates_distribution import ORDERS, READ, OrdersService, install_on_hub
from tests.test_gates_distribution import bundle as acme_bundle
from troth.authority import Authority
from troth.channel import VerifiedPeer
from troth.credentials import Attributes
from troth.errors import CredentialError, Denied
from troth.gates import BundleStore, create_bundle
from troth.identity import Identifier
from troth.node.access import (
    AccessRequest,
    Decision,
    GatedPolicy,
    MembersOnly,
    PeerCaller,
    RequireAttributes,
    Rule,
    RulesPolicy,
    Standing,
)
from troth.node.runtime import NodeRuntime
from troth.node.services import call
from troth.node.services.policy import POLICY

NOTHING = '@id("nothing") forbid(principal, action, resource);\n'


def globex_bundle(
    node: NodeRuntime,
    globex: Authority,
    now: int,
    *,
    policies: str = NOTHING,
    services: dict[str, list[str]] | None = None,
) -> bytes:
    """globex's bundle (signed by globex itself) with the orders tools; by default declaring
    the hub's `orders` service and forbidding everything: what globex may say of its own
    members."""
    return create_bundle(
        node.node.identities.signer("globex", now=now),
        authority=globex.identifier,
        policies=policies,
        schema="",
        tools=TOOLS,
        services={"orders": ["read"]} if services is None else services,
        revision=1,
        now=now,
        ttl=3600,
    )


async def globex_member(net: MemNet, globex: Authority, name: str) -> NodeRuntime:
    runtime = await net.node(name)
    ticket = globex.create_ticket(
        creator=globex.identifier,
        attributes=Attributes({"globex.team": "desk"}),
        address="/tcp/globex:4000",
        now=net.clock.now(),
    )
    await runtime.enroll(str(ticket), name)
    return runtime


async def push_to_hub(node: NodeRuntime, data: bytes) -> None:
    """`data` pushed to the hub over the policy service (open to members and anchors)."""
    end = await node.channel_to(route(HUB))
    answer = await call(node.router, (end.enc, POLICY), "push", [data])
    assert answer["accepted"] is True


def test_a_co_trusted_authoritys_declaration_does_not_govern_the_hosts_members(
    tmp_path: Path,
) -> None:
    """Services 1. The hub hosts acme and serves `orders` (its built-in rule: members); acme
    holds no bundle declaring it. The hub enrolls with globex. globex signs a bundle of its own
    (or any globex policy-admin does: a member holding a role) declaring `orders` and
    forbidding everything, and pushes it to the hub (the policy service takes bundles from
    members and anchors; the hub would pull it from globex's node at its next round anyway).
    The hub decided `orders` with Cedar for every caller as soon as *any* active bundle
    declared it, so acme's own member, allowed a moment before, was denied (`no policy
    bundle`: acme has none) — globex locked the host authority's members out of the host's
    own service, and could do the same to every non-infrastructure service (the `mcp.*`
    servers a node publishes included) of every node that trusts it. A bundle speaks for its
    own authority's chains only (docs/policy.md, "Services"): globex's declaration governs
    globex's members (denied here, by its forbid), never acme's. Was a strict xfail until
    `GatedPolicy(governs=)` (the runtime's: `NodePolicies.governs`) put a service under Cedar
    only for the chains of an authority whose own bundle, or the hosted authority's, declares
    it."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub.add_service(OrdersService())
        member = await net.member("agent-b")
        end = await member.channel_to(route(HUB))
        assert await call(member.router, (end.enc, ORDERS), "read", None) == "order 4471: paid"
        globex_node, globex, ticket = await globex_over_tcp(net)
        await hub.enroll(ticket, "hub")  # the hub trusts globex from now on
        await push_to_hub(globex_node, globex_bundle(globex_node, globex, net.clock.now()))
        held = hub.policies.held(globex.identifier)
        assert held is not None
        assert held.bundle.body.services == {"orders": ("read",)}
        mallory = await globex_member(net, globex, "mallory")
        their = await mallory.channel_to(route(HUB))
        with pytest.raises(Denied) as denied:  # globex's own member: globex's forbid decides
            await call(mallory.router, (their.enc, ORDERS), "read", None)
        assert "denied by policy nothing" in denied.value.reasons[0]
        # acme's member: the hub's built-in rule, as before globex's bundle came
        assert await call(member.router, (end.enc, ORDERS), "read", None) == "order 4471: paid"

    run_memnet(test, tmp_path)


def test_the_hosted_authoritys_declaration_still_governs_every_caller(tmp_path: Path) -> None:
    """Deny when in doubt, kept: the hub's own authority declares `orders` (acme's bundle
    permits reading it), and a globex member, whose authority has no bundle on the hub, is
    denied (`no policy bundle`); once globex's bundle is there, it decides globex's members
    (its forbid). acme's member is allowed by acme's bundle throughout (docs/policy.md,
    "Services")."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub.add_service(OrdersService())
        await install_on_hub(net, acme_bundle(net, 1, READ))
        member = await net.member("agent-b")
        end = await member.channel_to(route(HUB))
        assert await call(member.router, (end.enc, ORDERS), "read", None) == "order 4471: paid"
        globex_node, globex, ticket = await globex_over_tcp(net)
        await hub.enroll(ticket, "hub")
        mallory = await globex_member(net, globex, "mallory")
        their = await mallory.channel_to(route(HUB))
        with pytest.raises(Denied) as denied:
            await call(mallory.router, (their.enc, ORDERS), "read", None)
        assert "no policy bundle" in denied.value.reasons[0]
        await push_to_hub(globex_node, globex_bundle(globex_node, globex, net.clock.now()))
        with pytest.raises(Denied) as denied:
            await call(mallory.router, (their.enc, ORDERS), "read", None)
        assert "denied by policy nothing" in denied.value.reasons[0]
        assert await call(member.router, (end.enc, ORDERS), "read", None) == "order 4471: paid"

    run_memnet(test, tmp_path)


# -- GatedPolicy's split, as a unit (the runtime's `governs`: NodePolicies.governs) ----------

UNIT_SERVICES = {"orders": ["read", "write"]}
FORBID_ALL = '@id("globex-none") forbid(principal, action, resource);\n'
UNIT_RULES: dict[tuple[str, str], Rule] = {
    ("orders", "read"): MembersOnly(),
    ("orders", "write"): RequireAttributes(Attributes({"orders.access": "refund"})),
}


@dataclass
class Hub:
    """A hub hosting acme and trusting globex, where only globex's bundle declares `orders`
    (globex forbids everything)."""

    co: CoTrust
    store: BundleStore
    anchors: frozenset[Identifier]

    def standing(self, peer: VerifiedPeer, now: int) -> Standing:
        credentials = []
        for held in peer.credentials:
            with contextlib.suppress(CredentialError):
                credentials.append(
                    self.co.verifier.verify(
                        held.chain, presenter=peer.identity, feeds=self.co.feeds(), now=now
                    )
                )
        return Standing(tuple(credentials), is_anchor=peer.identifier in self.anchors)

    def governs(self, service: str, authority: Identifier) -> bool:
        hosted = self.co.acme.authority.identifier
        return self.store.declares(service, authority) or self.store.declares(service, hosted)

    def decide(self, peer: VerifiedPeer, method: str) -> Decision:
        rules = RulesPolicy("hub", UNIT_RULES, self.standing)
        policy = GatedPolicy(
            rules, self.co.point(self.store), self.store.declares, governs=self.governs
        )
        return policy.decide(AccessRequest(PeerCaller(peer, "c"), "orders", method, None, T + 10))


def unit_hub() -> Hub:
    co = make_cotrust()
    store = co.store(co.acme.bundle(), co.globex_bundle(FORBID_ALL, services=UNIT_SERVICES))
    return Hub(co, store, frozenset({co.acme.authority.identifier, co.globex.identifier}))


def test_a_peer_of_both_meets_the_rule_alone_with_its_ungoverned_chain() -> None:
    """A peer holding a globex chain (governed by globex's forbid) and an acme chain (no bundle
    governs `orders` for acme: the hub's own acme bundle declares no services): `read` is
    allowed by the built-in rule on the acme chain alone; with the globex chain alone it is
    denied by globex's forbid. `write` needs orders.access ∋ refund, which neither chain the
    rule alone may use holds: denied, naming the rule's refusal and Cedar's."""
    hub = unit_hub()
    co = hub.co
    dual = co.party()
    globex_chain = member_chain(
        co.globex, dual, Attributes({"orders.access": frozenset({"refund"})})
    )
    acme_chain = member_chain(co.acme.authority, dual, Attributes({"orders.access": "read"}))
    both = VerifiedPeer(
        dual.identity, (co.credential(globex_chain, dual), co.credential(acme_chain, dual))
    )
    allowed = hub.decide(both, "read")
    assert allowed.allowed
    assert allowed.credential is not None
    assert allowed.credential.authority == co.acme.authority.identifier
    only_globex = VerifiedPeer(dual.identity, (co.credential(globex_chain, dual),))
    denied = hub.decide(only_globex, "read")
    assert not denied.allowed
    assert denied.policies == ("globex-none",)
    write = hub.decide(both, "write")
    assert not write.allowed
    rule_alone, cedar = write.reasons
    assert "no credential covers the attributes" in rule_alone
    assert "denied by policy globex-none" in cedar


def test_an_anchor_is_governed_by_its_own_authoritys_declaration() -> None:
    """An anchor calling with no credential: acme (whose bundle declares nothing) meets the
    members rule as an anchor; globex, whose own bundle declares `orders`, is denied (no
    credential for Cedar to decide), as every anchor was before review 36c."""
    hub = unit_hub()
    co = hub.co
    acme = hub.decide(VerifiedPeer(co.acme.authority.identity, ()), "read")
    assert acme.allowed
    globex = hub.decide(VerifiedPeer(co.globex.identity, ()), "read")
    assert not globex.allowed
    assert "holds no credential" in globex.reasons[0]
