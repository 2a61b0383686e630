"""Review 34c, remove: removing a member revokes every credential a verifier would still
accept, including one that expired within the clock skew verifiers allow (reported by review
34b)."""

from __future__ import annotations

import pytest

from tests.test_authority import Setup, setup, verifier_for  # noqa: F401
from troth.credentials.format import CredentialBody
from troth.errors import CredentialError, CredentialFailure


def test_a_removed_members_just_expired_credential_is_revoked(
    setup: Setup,  # noqa: F811
) -> None:
    """Review 34c, remove 1. `remove_member` revoked the member's credentials unexpired at the
    authority's `now`; a verifier accepts a credential up to its clock skew past its expiry
    (60 s by default, at most `MAX_CLOCK_SKEW_SECONDS`), so one that had expired a few seconds
    before the removal was left out of the feed and still verified as the removed member's
    for the rest of that skew. It is revoked now with the others.

    Was a strict xfail until `remove_member` revoked what expired within
    `MAX_CLOCK_SKEW_SECONDS` before `now` too."""
    chain = setup.enroll("alice", setup.ticket())
    expired = CredentialBody.decode(chain.credentials[0].body).expires_at
    removed_at = expired + 20
    revoked = setup.authority.remove_member(setup.id("alice"), now=removed_at)
    assert revoked == [chain.credentials[0].hash]
    verifier, feeds = verifier_for(setup, removed_at + 1)
    with pytest.raises(CredentialError) as caught:
        verifier.verify(
            chain.encode(), presenter=setup.id("alice"), feeds=feeds, now=removed_at + 1
        )
    assert caught.value.reason is CredentialFailure.REVOKED
