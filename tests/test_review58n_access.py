"""Review 58n, access: the node's one decision point (troth.node.access) attacked from the
callers' side: names of services a peer can reach, and what the decision tells them."""

from __future__ import annotations

import troth
from tests.support.gates import POLICIES, T, make_world
from troth.channel import VerifiedPeer
from troth.node.access import (
    AccessRequest,
    GatedPolicy,
    LocalCaller,
    MembersOnly,
    PeerCaller,
    RulesPolicy,
    Standing,
)

FORBID_CONTROL = '@id("no-control") forbid(principal, action, resource == Service::"control");\n'


def test_an_operators_service_named_control_is_under_its_bundle() -> None:
    """An operator serves a service of its own named `control` (troth.Service takes the name:
    no built-in service has it) and its authority's bundle declares it, forbidding every
    call. The node's control socket is a local caller, decided as one whatever the service's
    name: only this service is ever asked for `control` by a peer, and the bundle's forbid
    must hold for it as for any other service a bundle declares (review 58n, access 1: it was
    allowed by its rule alone, `control` being an INFRASTRUCTURE name)."""
    service = troth.Service("control")  # accepted: not a built-in service's name
    world = make_world()
    bundle = world.bundle(policies=POLICIES + FORBID_CONTROL, services={"control": ["run"]})
    store = world.store(bundle)
    support = VerifiedPeer(
        world.support.identity, (world.credential(world.support_chain, world.support),)
    )

    def standing(peer: VerifiedPeer, _now: int) -> Standing:
        return Standing(peer.credentials)

    rules = RulesPolicy("hub", {(service.name, "run"): MembersOnly()}, standing)
    policy = GatedPolicy(rules, world.point(store), lambda name: name == service.name)
    request = AccessRequest(PeerCaller(support, "chan-1"), service.name, "run", None, T + 10)
    decision = policy.decide(request)
    assert not decision.allowed, decision.reasons
    assert decision.policies == ("no-control",)
    # the node's control socket is not locked out by it: its callers are local
    local = AccessRequest(LocalCaller("control socket"), "control", "status", None, T + 10)
    assert policy.decide(local).allowed
