"""Review 75g, delegation2: attacks on the issuer keys' validity a held credential carries
(`VerifiedCredential.keys_valid_until`, review 75f) that did not work."""

from __future__ import annotations

import pytest

from tests.support.gates import T, make_world
from troth.credentials import ChainVerifier
from troth.errors import CredentialError, CredentialFailure
from troth.gates import ToolCall

DAY = 86_400
KEYS_END = T + 2 * DAY  # the support agent's primary key's valid_until
LOOKUP = ToolCall("lookup_order", {"order_id": "o1"})


def test_every_path_that_makes_a_verified_credential_carries_the_keys_end() -> None:
    """Tried: a `VerifiedCredential` whose `keys_valid_until` is lost (0 or the chain's
    expiry) on a path other than the first cold verification: the verifier's cache (the warm
    path), a presenter's history added (`_presented_by`), another verifier taking up the byte
    checks (`checked_by`), `verify_structure`. Each carries the earliest issuer key end; no
    other constructor call nor `dataclasses.replace` makes one (the token is not passed on)."""
    world = make_world(support_valid_for=2 * DAY)
    verifier, chain, feeds = world.verifier, world.sub_chain, world.feeds()
    made = [
        verifier.verify(chain, presenter=world.sub.identifier, feeds=feeds, now=T + 10),
        verifier.verify(chain, presenter=world.sub.identifier, feeds=feeds, now=T + 11),
        verifier.verify(chain, presenter=world.sub.identity, feeds=feeds, now=T + 12),
        ChainVerifier(verifier.policy, checked_by=verifier).verify(
            chain, presenter=world.sub.identity, feeds=feeds, now=T + 13
        ),
        verifier.verify_structure(chain, now=T + 14),
    ]
    assert [c.keys_valid_until for c in made] == [KEYS_END] * len(made)
    assert world.support.identity.current.body.valid_until == KEYS_END


def test_the_keys_end_is_the_same_instant_at_the_verifier_and_the_gate() -> None:
    """Tried: an off-by-one or a skew between the verifier and a holder: at `keys_valid_until`
    the chain verifies and the decision point allows the held credential; a second later both
    refuse, the clock-skew allowance not stretching the keys at either (the broker's edge, the
    same: tests/test_review75g_delegation2.py)."""
    world = make_world(support_valid_for=2 * DAY)
    held = world.credential(world.sub_chain, world.sub)
    world.refresh_feed(KEYS_END)
    point = world.point(world.store(world.bundle(now=KEYS_END - 60, ttl=DAY), now=KEYS_END))
    assert world.credential(world.sub_chain, world.sub, now=KEYS_END).keys_valid_until
    assert point.decide(held, LOOKUP, now=KEYS_END).allowed
    with pytest.raises(CredentialError) as refused:
        world.credential(world.sub_chain, world.sub, now=KEYS_END + 1)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert not point.decide(held, LOOKUP, now=KEYS_END + 1).allowed
