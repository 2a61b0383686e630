"""Review 64t, access: the shapes left between a served service and a made-up name after
review 64o's access 1 (`GatedPolicy._members_refusal`).

access 1 (low; fixed, troth.node.access `_why`): a stranger (no verified credential) asking a
  served service whose method's rule names its authority (`MembersOnly(authority=X)`,
  `RequireAttributes(..., authority=X)`, `AttributeCoversArgument(..., authority=X)`, as
  docs/guide and troth.Service recommend, and the relay's and broker's own) was refused "it
  holds no credential from X", where a made-up name (`channels.unserved`, members only) is
  refused "it holds no credential from an authority hub trusts": both `denied`, but the text
  told the served services (and their pinned methods: review 63l, access 1, a strict xfail)
  from made-up names, whether a bundle declared the service or not, and named the authority.
  A caller holding no credential is now told the same whatever the rule: what it lacks is any
  credential from an authority the node trusts (the reasons its chains were dropped still
  follow). Review 63l's access 1 passes now (its xfail removed).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import POLICIES, T, make_world
from tests.test_review64o_access import FAILS, SERVICES, Orders, answers, refused_alike
from troth.channel import VerifiedPeer
from troth.node.access import (
    UNSERVED,
    AttributeCoversArgument,
    GatedPolicy,
    MembersOnly,
    RequireAttributes,
    Rule,
    RulesPolicy,
    Standing,
)
from troth.node.services.base import Method


def pinned_rules(authority: Any) -> list[Rule]:
    return [
        MembersOnly(authority=authority),
        RequireAttributes({"orders.access": "read"}, authority=authority),
        AttributeCoversArgument("orders.access", authority=authority),
    ]


@pytest.mark.parametrize("declared", [True, False])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_access1_a_stranger_cannot_tell_a_pinned_service_from_a_made_up_name(
    monkeypatch: pytest.MonkeyPatch, declared: bool, which: int
) -> None:
    """access 1: `orders.read` pinned to the authority, declared by a bundle or not: the
    stranger's answers for `orders.read` and `ordres.read` are the same bytes."""
    world = make_world(sub_caveats=FAILS)
    rule = pinned_rules(world.authority.identifier)[which]
    real = Orders.__init__

    def init(self: Orders) -> None:
        real(self)
        self.methods = {"read": Method(self.read, rule, inline=True)}

    monkeypatch.setattr(Orders, "__init__", init)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    if not declared:
        store = world.store()
    rules = {("orders", "read"): rule, UNSERVED: MembersOnly()}
    policy = GatedPolicy(
        RulesPolicy("hub", rules, lambda p, _n: Standing(p.credentials)),
        world.point(store),
        store.declares,
    )
    stranger = VerifiedPeer(world.sub.identity, ())
    got = answers(policy, stranger, T + 10, "orders.read", "ordres.read")
    refused_alike(got)
    assert str(world.authority.identifier) not in got[0].decode("utf-8", "replace")
