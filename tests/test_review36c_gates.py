"""Review 36c, gates: cross-authority attribute confusion on a node that trusts two authorities
(acme and globex, each enrolled with or trusted).

The rule (docs/policy.md, "Decisions" and "Bundles on a node"): a caller is decided by the
bundle of its chain's own authority (the issuer of link 0), with the attributes of that chain
only, and each authority's bundle sits in a slot of its own that only that authority or its
policy-admins can fill. globex grants whatever attributes it likes (the same keys acme's
policies test), so every test below gives globex's members acme's permit-winning attributes and
checks that acme's permits never see them. These tests pin behaviour that held when the review
began (no hole found in these areas); each would fail if a bundle decided for another
authority's chains, if a decision combined attributes of two chains, or if a bundle could take
another authority's slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest
from mcp import Client

from tests.support.cotrust import CoTrust, forged_bundle, make_cotrust, member_chain
from tests.support.gates import POLICIES, SUPPORT, T
from tests.support.mcp_orders import names, orders_server, text
from tests.support.parties import Party
from troth.channel import VerifiedPeer
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, delegate
from troth.errors import CredentialError, PolicyError, PolicyFailure
from troth.gates import (
    BundleStore,
    Outcome,
    PresentedChain,
    ServiceCall,
    ToolCall,
    load_stored_bundle,
)
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server
from troth.node.access import (
    AccessRequest,
    GatedPolicy,
    PeerCaller,
    RequireAttributes,
    Rule,
    RulesPolicy,
    Standing,
)

# what acme's POLICIES permit: refund for orders.access ∋ write, export for troth.role ∋ dpo
WINNING = Attributes(
    {"orders.access": frozenset({"read", "write"}), "orders.customer": "4471", "troth.role": "dpo"}
)
LOOKUP_ONLY = """\
@id("globex-lookup") permit(principal, action == Action::"invoke:lookup_order", resource);
"""
PERMIT_ALL = '@id("all") permit(principal, action, resource);'
REFUND = ToolCall("refund", {"order_id": "4471", "amount": 20})
EXPORT = ToolCall("export_customers", {"fmt": "csv"})


def test_a_co_trusted_members_attributes_meet_none_of_anothers_permits() -> None:
    """A globex member holding exactly the attributes acme's permits test (orders.access ∋
    write, troth.role ∋ dpo) is never decided by acme's bundle: with no globex bundle on the
    node every call is denied as having no bundle in force and gate 1 shows it no tool; with a
    globex bundle, globex's (revision 7) decides, permitting only what it says. acme's own
    support agent, the control, is allowed refund by acme's bundle (revision 1)."""
    co = make_cotrust()
    mallory = co.party()
    chain = member_chain(co.globex, mallory, WINNING)
    caller = co.credential(chain, mallory)
    assert caller.authority == co.globex.identifier
    support = co.credential(co.acme.support_chain, co.acme.support)

    only_acme = co.point(co.store(co.acme.bundle()))
    for call in (REFUND, EXPORT):
        denied = only_acme.decide(caller, call, now=T + 10)
        assert (denied.allowed, denied.outcome) == (False, Outcome.NOT_IN_FORCE)
        assert denied.reason == f"denied: {PolicyFailure.NO_BUNDLE.value}"
        assert denied.revision is None
    assert only_acme.visible_tools(caller, now=T + 10) == frozenset()
    allowed = only_acme.decide(support, REFUND, now=T + 10)
    assert (allowed.allowed, allowed.policies, allowed.revision) == (True, ("refund",), 1)

    both = co.point(co.store(co.acme.bundle(), co.globex_bundle(LOOKUP_ONLY)))
    for call in (REFUND, EXPORT):
        denied = both.decide(caller, call, now=T + 10)
        assert (denied.outcome, denied.revision) == (Outcome.NO_PERMIT, 7)
    looked = both.decide(caller, ToolCall("lookup_order", {"order_id": "1"}), now=T + 10)
    assert (looked.allowed, looked.policies, looked.revision) == (True, ("globex-lookup",), 7)
    assert both.visible_tools(caller, now=T + 10) == frozenset({"lookup_order"})
    assert both.visible_tools(support, now=T + 10) == frozenset({"lookup_order", "refund"})


def test_a_member_of_both_is_judged_by_each_chains_own_bundle() -> None:
    """An identity enrolled with both: acme grants it read only, globex grants it write and
    dpo. Under its acme chain acme's bundle sees read only (refund and export: no permit, under
    revision 1); under its globex chain globex's bundle decides (revision 7, no permit). No
    decision sees acme's chain with globex's attributes: acme's refund permit is never met."""
    co = make_cotrust()
    dual = co.party()
    acme_chain = member_chain(co.acme.authority, dual, Attributes({"orders.access": "read"}))
    globex_chain = member_chain(co.globex, dual, WINNING)
    point = co.point(co.store(co.acme.bundle(), co.globex_bundle(LOOKUP_ONLY)))
    for chain, revision in ((acme_chain, 1), (globex_chain, 7)):
        credential = co.credential(chain, dual)
        for call in (REFUND, EXPORT):
            decision = point.decide(credential, call, now=T + 10)
            assert (decision.allowed, decision.outcome) == (False, Outcome.NO_PERMIT)
            assert decision.revision == revision
    acme = co.credential(acme_chain, dual)
    assert point.visible_tools(acme, now=T + 10) == frozenset({"lookup_order"})


SERVICES = {"orders": ["read", "write"]}
ACME_ORDERS = (
    POLICIES
    + '@id("orders-write") permit(principal, action == Action::"write", '
    + 'resource == Service::"orders");\n'
)
RULES: dict[tuple[str, str], Rule] = {
    ("orders", "write"): RequireAttributes(Attributes({"orders.access": "refund"})),
}


@dataclass
class Node:
    """A node's service decision (`GatedPolicy`) over `co`'s verifier and feeds."""

    co: CoTrust
    store: BundleStore

    def standing(self, peer: VerifiedPeer, now: int) -> Standing:
        credentials: list[VerifiedCredential] = []
        for held in peer.credentials:
            try:
                credentials.append(self.co.credential(held.chain, _party_of(peer), now))
            except CredentialError:
                continue
        return Standing(tuple(credentials))

    def policy(self) -> GatedPolicy:
        rules = RulesPolicy("hub", RULES, self.standing)
        return GatedPolicy(rules, self.co.point(self.store), self.store.declares)


_PARTIES: dict[bytes, Party] = {}


def _party_of(peer: VerifiedPeer) -> Party:
    return _PARTIES[peer.identity.identifier.digest]


def test_a_declared_service_needs_cedar_and_the_rule_met_by_one_chain() -> None:
    """GatedPolicy with a peer enrolled with both: acme's bundle permits `orders.write` to
    every acme member, the built-in rule wants `orders.access ∋ refund`, which only the
    peer's globex chain holds, and globex's bundle declares the service but permits nothing.
    Cedar (acme's) and the rule (met by globex's attributes) would pass if checked on
    different chains; the node checks both on each chain and denies, naming both refusals."""
    co = make_cotrust()
    dual = co.party()
    _PARTIES[dual.identifier.digest] = dual
    acme_chain = member_chain(co.acme.authority, dual, SUPPORT)
    globex_chain = member_chain(
        co.globex, dual, Attributes({"orders.access": frozenset({"refund", "write"})})
    )
    store = co.store(
        co.acme.bundle(policies=ACME_ORDERS, services=SERVICES),
        co.globex_bundle(LOOKUP_ONLY, services=SERVICES),
    )
    node = Node(co, store)
    peer = VerifiedPeer(
        dual.identity, (co.credential(acme_chain, dual), co.credential(globex_chain, dual))
    )
    request = AccessRequest(PeerCaller(peer, "chan-1"), "orders", "write", None, T + 10)
    decision = node.policy().decide(request)
    assert not decision.allowed
    first, second = decision.reasons
    assert "Cedar allowed it, but" in first
    assert "no policy permits this request (bundle revision 7)" in second
    # the same chain meeting both passes: acme grants the rule's attribute too
    granted = member_chain(
        co.acme.authority, dual, Attributes({"orders.access": frozenset({"refund", "write"})})
    )
    both = VerifiedPeer(dual.identity, (co.credential(granted, dual),))
    allowed = node.policy().decide(
        AccessRequest(PeerCaller(both, "c"), "orders", "write", None, T + 10)
    )
    assert allowed.allowed
    assert allowed.credential is not None
    assert allowed.credential.authority == co.acme.authority.identifier
    # and the decision point, asked directly with the globex chain, uses globex's bundle
    globex = co.credential(globex_chain, dual)
    direct = co.point(store).decide(globex, ServiceCall("orders", "write"), now=T + 10)
    assert (direct.outcome, direct.revision) == (Outcome.NO_PERMIT, 7)


@pytest.mark.parametrize("by", ["globex", "globex-admin"])
def test_a_co_trusted_authority_cannot_sign_into_anothers_slot(by: str) -> None:
    """globex, or globex's policy-admin carrying its globex chain, signs a permit-all bundle
    naming acme as its authority (revision 2, above acme's held 1) and pushes it to a node
    holding acme's bundle. It is refused for its signer (not acme, and no chain from acme:
    `NOT_POLICY_ADMIN` / `SIGNER_INVALID`), and acme's held bundle keeps deciding acme's
    members (export: no permit under revision 1)."""
    co = make_cotrust()
    acme = co.acme.authority.identifier
    signer, chain = (
        (co.globex, None) if by == "globex" else (co.globex_admin, co.globex_admin_chain)
    )
    forged = forged_bundle(
        signer,
        authority=acme,
        policies=PERMIT_ALL,
        revision=2,
        chain=chain,
    )
    store = co.store(co.acme.bundle())
    held = store.active(acme)
    with pytest.raises(PolicyError) as refused:
        store.accept(forged, feeds=co.feeds(), now=T + 10)
    if by == "globex":
        assert refused.value.reason is PolicyFailure.NOT_POLICY_ADMIN
        assert "a member's bundle without a chain" in str(refused.value)
    else:
        assert refused.value.reason is PolicyFailure.SIGNER_INVALID
        # its chain is verified as acme's, against acme's feed alone: globex's has no say
        assert f"no revocation feed for the authority ({co.globex.identifier})" in str(
            refused.value
        )
        # and read back as if stored, where only the chain's structure is checked
        with pytest.raises(PolicyError) as stored:
            load_stored_bundle(forged, verifier=co.verifier, now=T + 10)
        assert stored.value.reason is PolicyFailure.SIGNER_INVALID
        assert "the chain is not the signer's from the authority" in str(stored.value)
    assert store.active(acme) is held
    support = co.credential(co.acme.support_chain, co.acme.support)
    decision = co.point(store).decide(support, EXPORT, now=T + 10)
    assert (decision.outcome, decision.revision) == (Outcome.NO_PERMIT, 1)


def test_another_authoritys_bundle_leaves_this_authoritys_slot_alone() -> None:
    """globex's permit-all bundle, at the top revision an authority may sign, is accepted into
    globex's slot only: acme's held revision 1 stays, and acme's members are still decided by
    it (export: no permit), while globex's members are allowed everything by globex's."""
    co = make_cotrust()
    store = co.store(co.acme.bundle())
    top = co.globex_bundle(PERMIT_ALL, revision=2**53 - 1)
    accepted = store.accept(top, feeds=co.feeds(), now=T + 10)
    assert accepted.body.authority == co.globex.identifier
    acme_held = store.active(co.acme.authority.identifier)
    assert acme_held is not None
    assert acme_held.bundle.body.revision == 1
    point = co.point(store)
    support = co.credential(co.acme.support_chain, co.acme.support)
    assert point.decide(support, EXPORT, now=T + 10).outcome is Outcome.NO_PERMIT
    mallory = co.party()
    member = co.credential(member_chain(co.globex, mallory, Attributes({})), mallory)
    assert point.decide(member, EXPORT, now=T + 10).allowed


def test_cedar_sees_the_chains_own_authority_and_its_links_attributes() -> None:
    """`principal.authority` is the root of the chain being decided, and the tags are that
    chain's links' attributes. One policy, permitting export to acme's chains by name, sits in
    both bundles (globex's holds nothing else): acme's support agent is allowed under acme's; a
    globex member is not under globex's. acme's support agent delegating read to that globex
    member makes a chain of acme's: acme's bundle decides it with the delegation link's
    attributes (read: no refund), not with the write globex granted the same identity."""
    co = make_cotrust()
    acme = co.acme.authority.identifier
    by_name = (
        '@id("acme-export") permit(principal, action == Action::"invoke:export_customers", '
        + f'resource) when {{ principal.authority == "{acme}" }};\n'
    )
    point = co.point(
        co.store(co.acme.bundle(policies=POLICIES + by_name), co.globex_bundle(by_name))
    )
    support = co.credential(co.acme.support_chain, co.acme.support)
    allowed = point.decide(support, EXPORT, now=T + 10)
    assert (allowed.allowed, allowed.policies, allowed.revision) == (True, ("acme-export",), 1)
    mallory = co.party()
    globex_member = co.credential(member_chain(co.globex, mallory, WINNING), mallory)
    denied = point.decide(globex_member, EXPORT, now=T + 10)
    assert (denied.allowed, denied.revision) == (False, 7)
    assert denied.outcome is Outcome.NO_PERMIT
    through = delegate(
        co.acme.support.signer,
        CredentialChain.decode(co.acme.support_chain),
        subject=mallory.identifier,
        attributes=Attributes({"orders.access": "read"}),
        now=T,
        ttl=86_400,
        purpose="help with 4471",
    )
    delegated = co.credential(through.encode(), mallory)
    assert delegated.authority == acme
    refund = point.decide(delegated, REFUND, now=T + 10)
    assert (refund.outcome, refund.revision) == (Outcome.NO_PERMIT, 1)
    export = point.decide(delegated, EXPORT, now=T + 10)
    assert (export.allowed, export.revision) == (True, 1)


def test_the_mcp_gate_lists_and_runs_by_the_callers_own_authority() -> None:
    """The MCP gate in front of the orders server, on a node holding acme's bundle only: a
    globex member presenting its chain (the attributes acme's permits test) is listed no tool
    and every call is denied for want of a bundle (the upstream never runs); acme's support
    agent is listed and allowed what acme permits. Once globex's bundle is there, globex's
    decides for its member: lookup_order only."""

    async def main() -> None:
        co = make_cotrust()
        mallory = co.party()
        presented = PresentedChain(
            member_chain(co.globex, mallory, WINNING), mallory.identifier, co.verifier, co.held_feed
        )
        support = co.credential(co.acme.support_chain, co.acme.support)
        for bundles, listed in (
            ((co.acme.bundle(),), []),
            ((co.acme.bundle(), co.globex_bundle(LOOKUP_ONLY)), ["lookup_order"]),
        ):
            point = co.point(co.store(*bundles))
            async with Client(orders_server(), cache=None) as upstream:
                gate = McpGate(point, upstream, clock=FixedClock(T + 10))
                async with Client(gate_server(gate, presented), mode="legacy", cache=None) as agent:
                    assert await names(agent) == listed
                    refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
                    assert refund.is_error
                    expected = (
                        f"denied: {PolicyFailure.NO_BUNDLE.value}"
                        if not listed
                        else "denied: the policy bundle declares no such tool"  # hidden (47h)
                    )
                    assert text(refund) == DENIED_PREFIX + expected
                async with Client(gate_server(gate, support), mode="legacy", cache=None) as agent:
                    assert await names(agent) == ["lookup_order", "refund"]
                    allowed = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
                    assert (allowed.is_error, text(allowed)) == (False, "refunded 20 on o1")

    anyio.run(main)
