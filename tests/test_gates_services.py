"""The node's decision point with Cedar beside the built-in rules (troth.node.access.GatedPolicy),
as a unit: a service an active bundle declares needs Cedar AND its rule; a forbid names its
policy id; caveats bite on services now; no bundle, an expired bundle, a stale feed deny;
infrastructure services and undeclared ones keep their rules; local callers stay local."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.gates import POLICIES, GatesWorld, T, make_world
from troth.channel import VerifiedPeer
from troth.credentials import Attributes, ChainVerifier, TrustPolicy, VerifiedCredential
from troth.errors import CredentialError, Denied
from troth.gates import BundleStore
from troth.node.access import (
    AccessRequest,
    GatedPolicy,
    LocalCaller,
    MembersOnly,
    PeerCaller,
    RequireAttributes,
    Rule,
    RulesPolicy,
    Standing,
    require,
)

SERVICES = {"orders": ["read", "write"], "echo": ["echo"]}
SERVICE_POLICIES = (
    POLICIES
    + """
@id("orders-read") permit(principal, action == Action::"read", resource == Service::"orders");
@id("orders-write") permit(principal, action == Action::"write", resource == Service::"orders");
"""
)
FORBID_READ = '@id("no-read") forbid(principal, action == Action::"read", resource);\n'
RULES: dict[tuple[str, str], Rule] = {
    ("orders", "read"): MembersOnly(),
    ("orders", "write"): RequireAttributes(Attributes({"orders.access": "refund"})),
    ("echo", "echo"): MembersOnly(),
    ("tickets", "open"): MembersOnly(),
}


@dataclass
class Scene:
    world: GatesWorld
    store: BundleStore
    declared: bool = True

    def standing(self, peer: VerifiedPeer, now: int) -> Standing:
        """The peer's credentials re-verified now; tolerant of an old feed (a node's standing
        drops them too, which would hide the bundle store's own staleness check)."""
        policy = TrustPolicy(
            frozenset({self.world.authority.identifier}), max_feed_staleness=86_400
        )
        credentials: list[VerifiedCredential] = []
        for held in peer.credentials:
            try:
                credentials.append(
                    ChainVerifier(policy).verify(
                        held.chain, presenter=peer.identity, feeds=self.world.feeds(), now=now
                    )
                )
            except CredentialError:
                continue
        return Standing(tuple(credentials))

    def policy(self) -> GatedPolicy:
        rules = RulesPolicy("hub", RULES, self.standing)
        return GatedPolicy(rules, self.world.point(self.store), lambda _: self.declared)

    def peer(self, chain: bytes, who: str) -> VerifiedPeer:
        party = getattr(self.world, who)
        return VerifiedPeer(party.identity, (self.world.credential(chain, party),))


def scene_with(policies: str = SERVICE_POLICIES, *, sub_caveats: tuple[str, ...] = ()) -> Scene:
    world = make_world(sub_caveats=sub_caveats)
    return Scene(world, world.store(world.bundle(policies=policies, services=SERVICES)))


def ask(peer: VerifiedPeer, service: str, method: str, now: int = T + 10) -> AccessRequest:
    return AccessRequest(PeerCaller(peer, "chan-1"), service, method, None, now)


def test_a_declared_service_needs_cedar_and_the_rule() -> None:
    scene = scene_with()
    support = scene.peer(scene.world.support_chain, "support")
    allowed = scene.policy().decide(ask(support, "orders", "read"))
    assert allowed.allowed
    assert allowed.policies == ("orders-read", "members only")
    assert allowed.credential is not None


def test_a_cedar_forbid_denies_with_its_policy_id() -> None:
    scene = scene_with(SERVICE_POLICIES + FORBID_READ)
    support = scene.peer(scene.world.support_chain, "support")
    decision = scene.policy().decide(ask(support, "orders", "read"))
    assert not decision.allowed
    assert decision.policies == ("no-read",)
    with pytest.raises(Denied) as denied:
        require(decision)
    assert "denied by policy no-read" in denied.value.reasons[0]
    assert "(bundle revision 1)" in denied.value.reasons[0]


def test_a_cedar_permit_without_the_rule_still_denies() -> None:
    scene = scene_with()
    support = scene.peer(scene.world.support_chain, "support")  # holds read, write: no refund
    decision = scene.policy().decide(ask(support, "orders", "write"))
    assert not decision.allowed
    assert "Cedar allowed it, but no credential covers" in decision.reasons[0]


def test_no_permit_denies_a_declared_service() -> None:
    scene = scene_with(POLICIES)  # declares orders, permits nothing on it
    support = scene.peer(scene.world.support_chain, "support")
    decision = scene.policy().decide(ask(support, "orders", "read"))
    assert not decision.allowed
    assert "no policy permits this request" in decision.reasons[0]


def test_caveats_are_enforced_on_declared_services() -> None:
    holds = scene_with(sub_caveats=("context.now > 0",))
    sub = holds.peer(holds.world.sub_chain, "sub")
    assert holds.policy().decide(ask(sub, "orders", "read")).allowed
    fails = scene_with(sub_caveats=("context.now < 5",))
    sub = fails.peer(fails.world.sub_chain, "sub")
    decision = fails.policy().decide(ask(sub, "orders", "read"))
    assert not decision.allowed
    assert decision.policies == ("caveat:1:0",)


def test_no_bundle_for_the_callers_authority_denies() -> None:
    world = make_world()
    scene = Scene(world, BundleStore(world.verifier))  # another authority's bundle declares it
    support = scene.peer(world.support_chain, "support")
    decision = scene.policy().decide(ask(support, "orders", "read"))
    assert not decision.allowed
    assert "no policy bundle" in decision.reasons[0]


def test_an_expired_bundle_and_a_stale_feed_deny() -> None:
    world = make_world()
    store = world.store(world.bundle(policies=SERVICE_POLICIES, services=SERVICES, ttl=600))
    scene = Scene(world, store)
    support = scene.peer(world.support_chain, "support")
    policy = scene.policy()
    assert policy.decide(ask(support, "orders", "read", T + 100)).allowed
    stale = policy.decide(ask(support, "orders", "read", T + 400))  # the feed is from T
    assert not stale.allowed
    assert "revocation feed is missing or stale" in stale.reasons[0]
    world.refresh_feed(T + 700)
    expired = policy.decide(ask(support, "orders", "read", T + 700))
    assert not expired.allowed
    assert "the bundle expired" in expired.reasons[0]


def test_infrastructure_and_undeclared_services_keep_their_rules() -> None:
    scene = scene_with(SERVICE_POLICIES + FORBID_READ)
    support = scene.peer(scene.world.support_chain, "support")
    policy = scene.policy()
    echo = policy.decide(ask(support, "echo", "echo"))  # declared, but infrastructure
    assert echo.allowed
    assert echo.policies == ("members only",)
    scene.declared = False  # no bundle declares it: the rule alone
    assert scene.policy().decide(ask(support, "tickets", "open")).allowed


def test_caveated_credentials_still_fail_closed_on_built_in_rules() -> None:
    scene = scene_with(sub_caveats=("context.now > 0",))
    scene.declared = False
    sub = scene.peer(scene.world.sub_chain, "sub")
    decision = scene.policy().decide(ask(sub, "tickets", "open"))
    assert not decision.allowed
    assert "carry caveats" in decision.reasons[0]


def test_local_callers_keep_the_local_rule() -> None:
    scene = scene_with(SERVICE_POLICIES + FORBID_READ)
    local = AccessRequest(LocalCaller(), "orders", "read", None, T + 10)
    assert scene.policy().decide(local).allowed
