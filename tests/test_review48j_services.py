"""Review 48j, delegation 3: a service of your own cannot take the MCP service's rule, under
which a caveated delegate's requests reach the handler with their caveats unevaluated."""

from __future__ import annotations

from typing import Any

import pytest

import troth
from tests.support.gates import T, make_world
from troth.channel import VerifiedPeer
from troth.errors import ArgumentError
from troth.node.access import (
    AccessRequest,
    AttributeCoversArgument,
    GatedMembers,
    MembersOnly,
    PeerCaller,
    RulesPolicy,
    Standing,
)

NEVER = "context.now < 5"
"""A caveat no request meets."""


def test_gated_members_lets_a_caveated_delegate_past_any_rule_without_cedar() -> None:
    """Why a service of its own must not take GatedMembers: its requests are decided by the
    rule alone unless a bundle declares the service, and that rule admits a delegate whose
    caveat no request meets (the MCP service decides each tools/call with Cedar itself)."""
    world = make_world(sub_caveats=(NEVER,))
    sub = world.credential(world.sub_chain, world.sub)
    peer = VerifiedPeer(world.sub.identity, (sub,))
    policy = RulesPolicy(
        "node",
        {("orders", "gated"): GatedMembers(), ("orders", "members"): MembersOnly()},
        standing=lambda _peer, _now: Standing((sub,)),
    )

    def allowed(method: str) -> bool:
        request = AccessRequest(PeerCaller(peer, "c"), "orders", method, None, T + 10)
        return policy.decide(request).allowed

    assert allowed("gated")
    assert not allowed("members")


@pytest.mark.parametrize("rule", [GatedMembers(), "members only", None])
def test_a_service_method_refuses_a_rule_that_is_not_one_of_its_own(rule: Any) -> None:
    """Review 48j, delegation 3: `Service.method(allow=GatedMembers())` (the `Rule` its
    signature names) made a method whose caveated callers reached the handler with their
    caveats unevaluated; any other object made a method that refused everyone, silently. Both
    are an ArgumentError naming `allow`."""
    service = troth.Service("orders")
    with pytest.raises(ArgumentError) as caught:
        service.method("lookup", allow=rule)
    assert caught.value.parameter == "allow"
    assert "lookup" not in service.methods


@pytest.mark.parametrize(
    "rule",
    [
        troth.AnyAuthenticated(),
        troth.MembersOnly(),
        troth.RequireAttributes(troth.Attributes({"orders.access": "read"})),
        AttributeCoversArgument("orders.name"),
    ],
)
def test_a_service_method_takes_the_rules_that_refuse_caveats(rule: Any) -> None:
    service = troth.Service("orders")
    service.method("lookup", allow=rule)(_handler)
    assert service.methods["lookup"].rule is rule


async def _handler(request: troth.Request) -> str:
    return "ok"
