"""Review 35c, gates: attacks on review 34f's fixes to the policy gates (docs/policy.md)."""

from __future__ import annotations

import pytest

from tests.support.gates import GatesWorld, T, make_world
from troth.credentials import RevocationKind
from troth.errors import PolicyError, PolicyFailure
from troth.gates import ToolCall

ALL = '@id("all") permit(principal, action in Action::"invoke", resource);'
EXPORT = ToolCall("export_customers", {})


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


def test_an_older_bundle_dated_within_the_skew_cannot_replace_one_whose_signer_left(
    world: GatesWorld,
) -> None:
    """Review 34f, gates 1 took a replacement of a bundle out of force only when issued since
    it (`issued_at` not before the held one's). But `issued_at` is each signer's own clock,
    and a verifier takes one up to the clock skew (60 s) ahead: the authority's permit-all
    (revision 3), signed on a machine whose clock runs 30 s ahead of its policy-admin's, is
    dated after the admin's tighter revision 9 that replaced it a few seconds later. Once the
    admin is revoked (or rotates), any member replays revision 3 and it decides again — what
    34f meant to refuse. Two bundle dates closer than the skew do not say which was signed
    first: a replacement of a lower revision must be dated more than the skew after the
    bundle it replaces (a genuine one signed later still is accepted).

    Review 35c, gates 1: was a strict xfail until troth.gates.store._rollback took a
    replacement of a lower revision only when dated more than the clock skew after the
    bundle out of force."""
    older = world.bundle(revision=3, policies=ALL, now=T + 31)  # the authority's clock: +30 s
    store = world.store(older, world.bundle(revision=9, by_admin=True, now=T + 1), now=T + 40)
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    assert not point.decide(member, EXPORT, now=T + 41).allowed
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 50)

    with pytest.raises(PolicyError) as caught:
        store.accept(older, feeds=world.feeds(), now=T + 51)
    assert caught.value.reason is PolicyFailure.ROLLBACK
    assert "issued" in caught.value.detail
    assert not point.decide(member, EXPORT, now=T + 52).allowed

    later = world.bundle(revision=4, now=T + 62)  # signed since, beyond the skew: it replaces
    store.accept(later, feeds=world.feeds(), now=T + 63)
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.body.revision == 4
