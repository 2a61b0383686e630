"""Review 64o: attacks on the fix of review 64m's access 1 (`GatedPolicy._members_refusal`)
that did not work, each a test that fails if the defence it names breaks.

1. Members lose nothing: a member (no caveat) Cedar refuses a declared service is still told
   Cedar's reason, the method and the bundle revision, and `no-route` for a made-up name.
2. What Cedar allows stays allowed: a delegate whose caveat holds, under a bundle that
   permits the method, is served.
3. A `GatedMembers` method (open to caveated chains, Cedar deciding each call: the MCP
   service's `send`) keeps Cedar's reasons for a caveated delegate it refuses.
4. Strangers and revoked members on a node with a bundle: the served declared service and a
   made-up name answer the same bytes (they never reach Cedar).
5. A caveated delegate with no bundle, and one whose chain no bundle governs (`governs`): the
   built-in rule's refusal, the same as a made-up name's; a member whose chain no bundle
   governs is served by the rule alone.
6. No `UNSERVED` rule (a decision point built without it): Cedar's reasons stand, nothing is
   answered in their place (not "channels.unserved has no access rule").
"""

from __future__ import annotations

from tests.support.gates import POLICIES, T, make_world
from tests.test_review64o_access import FAILS, HOLDS, SERVICES, answers, delegate, gated
from troth.channel import VerifiedPeer
from troth.gates import DecisionPoint
from troth.identity import Identifier
from troth.node.access import (
    UNSERVED,
    AccessRequest,
    GatedMembers,
    GatedPolicy,
    MembersOnly,
    PeerCaller,
    Rule,
    RulesPolicy,
    Standing,
)
from troth.node.services.base import decode_response

READ = '@id("read") permit(principal, action == Action::"read", resource);\n'


def test_a_member_cedar_refuses_is_told_why_and_no_route() -> None:
    """1: the support agent (no caveat) holds no permit for `read`."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    peer = VerifiedPeer(
        world.support.identity, (world.credential(world.support_chain, world.support),)
    )
    policy = gated(world, store)
    decision = policy.decide(AccessRequest(PeerCaller(peer, "c"), "orders", "read", None, T + 10))
    assert not decision.allowed
    assert "orders.read" in decision.reasons[0]
    assert "(bundle revision 1)" in decision.reasons[0]
    unserved = policy.decide(AccessRequest(PeerCaller(peer, "c"), *UNSERVED, None, T + 10))
    assert unserved.allowed  # told no-route


def test_a_delegate_cedar_allows_is_served() -> None:
    """2: the caveat holds and the bundle permits `read`."""
    world = make_world(sub_caveats=HOLDS)
    store = world.store(world.bundle(policies=POLICIES + READ, services=SERVICES))
    [served] = answers(gated(world, store), delegate(world), T + 10, "orders.read")
    assert "error" not in decode_response(served)[1][4], served
    refused = make_world(sub_caveats=FAILS)
    store = refused.store(refused.bundle(policies=POLICIES + READ, services=SERVICES))
    [denied] = answers(gated(refused, store), delegate(refused), T + 10, "orders.read")
    assert decode_response(denied)[1][4]["error"] == "denied"


def test_a_gated_members_method_keeps_cedars_reasons() -> None:
    """3: the delegate is open to `GatedMembers`, so Cedar's refusal is its answer."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES + READ, services=SERVICES))
    rules: dict[tuple[str, str], Rule] = {
        ("orders", "read"): GatedMembers(),
        UNSERVED: MembersOnly(),
    }
    policy = GatedPolicy(
        RulesPolicy("hub", rules, lambda p, _n: Standing(p.credentials)),
        world.point(store),
        store.declares,
    )
    caller = PeerCaller(delegate(world), "c")
    decision = policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))
    assert not decision.allowed
    assert "orders.read" in decision.reasons[0]
    assert "(bundle revision 1)" in decision.reasons[0]


def test_strangers_and_revoked_members_answer_alike_with_a_bundle() -> None:
    """4: no credential, and a revoked identity, against the served declared `orders`."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES + READ, services=SERVICES))
    stranger = VerifiedPeer(world.sub.identity, ())
    got = answers(gated(world, store), stranger, T + 10, "orders.read", "ordres.read")
    assert len(set(got)) == 1, got
    support = VerifiedPeer(
        world.support.identity, (world.credential(world.support_chain, world.support),)
    )

    def revoked(_peer: VerifiedPeer, _now: int) -> Standing:
        return Standing((), problem="its identity is revoked")

    policy = gated(world, store, standing=revoked)
    got = answers(policy, support, T + 10, "orders.read", "ordres.read")
    assert len(set(got)) == 1, got
    assert decode_response(got[0])[1][4]["error"] == "denied"


def test_without_a_bundle_or_a_governing_one_the_rule_answers() -> None:
    """5: no bundle; a bundle that governs no chain of the delegate's authority."""
    world = make_world(sub_caveats=FAILS)
    peer = delegate(world)
    got = answers(gated(world, world.store()), peer, T + 10, "orders.read", "ordres.read")
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))

    def nobody(_service: str, _of: Identifier) -> bool:
        return False

    policy = gated(world, store, governs=nobody)
    got += answers(policy, peer, T + 10, "orders.read", "ordres.read")
    assert len(set(got)) == 1, got
    support = VerifiedPeer(
        world.support.identity, (world.credential(world.support_chain, world.support),)
    )
    [served] = answers(policy, support, T + 10, "orders.read")
    assert "error" not in decode_response(served)[1][4], served


def test_without_an_unserved_rule_cedars_reasons_stand() -> None:
    """6: nothing to answer in Cedar's place."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    rules = {("orders", "read"): MembersOnly()}
    policy = GatedPolicy(
        RulesPolicy("hub", rules, lambda p, _n: Standing(p.credentials)),
        DecisionPoint(store, world.held_feed),
        store.declares,
    )
    caller = PeerCaller(delegate(world), "c")
    decision = policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))
    assert not decision.allowed
    assert "orders.read" in decision.reasons[0]
    assert "no access rule" not in decision.reasons[0]
