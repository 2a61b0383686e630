"""Review 75l, issuance: attacks tried that did not work (kept as passing tests)."""

from __future__ import annotations

import pytest

from tests.conftest import NOW
from tests.support.parties import make_party, verified_feed
from tests.test_review75l_issuance import KEY_LIFE, READ, delegations_by_a_member_of_an_hour
from troth import limits
from troth.credentials import (
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    TrustPolicy,
    issue_credential,
)
from troth.errors import CredentialError, CredentialFailure
from troth.vault import SoftwareVault


def test_a_link_ending_at_the_key_end_is_taken_through_valid_until_only() -> None:
    """75l refuted 1 (off by one, skew): a link capped at its signer's `valid_until + 1` and
    checked with the largest skew was tried at `valid_until` and `valid_until + 1`: taken at
    the key's last second, refused the next (`issuer identity invalid`: the key check has no
    skew, so the link's `expires_at + skew` never outlasts the key), as `Signer.key_end` says."""
    vault = SoftwareVault()
    authority = make_party(vault, now=NOW, valid_for=KEY_LIFE)
    member = make_party(vault, now=NOW)
    issued = issue_credential(
        authority.signer, subject=member.identifier, attributes=READ, now=NOW, ttl=86_400, depth=1
    )
    valid_until = authority.identity.current.body.valid_until
    assert CredentialBody.decode(issued.body).expires_at == valid_until + 1
    chain = CredentialChain((issued,), (authority.identity.history,)).encode()
    policy = TrustPolicy(
        frozenset({authority.identifier}), max_clock_skew=limits.MAX_CLOCK_SKEW_SECONDS
    )
    feeds = {authority.identifier: verified_feed(authority, now=valid_until - 10)}
    taken = ChainVerifier(policy).verify(
        chain, presenter=member.identifier, feeds=feeds, now=valid_until
    )
    assert taken.keys_valid_until == valid_until
    with pytest.raises(CredentialError) as refused:
        ChainVerifier(policy).verify(
            chain, presenter=member.identifier, feeds=feeds, now=valid_until + 1
        )
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID


def test_a_delegation_at_the_keys_last_second_is_made_and_not_after() -> None:
    """75l refuted 2: a delegator at its primary key's last second (`valid_until`) delegates
    for one second, ending at `valid_until + 1` (the key end): made; a second later the
    same delegation is refused (an expired key signs nothing), never made ending past it."""
    made = delegations_by_a_member_of_an_hour()
    last = NOW + KEY_LIFE  # the member's key's valid_until
    link = CredentialBody.decode(made(1, now=last).credentials[-1].body)
    assert link.expires_at == last + 1
    with pytest.raises(CredentialError) as refused:
        made(1, now=last + 1)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
