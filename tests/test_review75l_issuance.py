"""Review 75l, issuance: what troth signs with an expiry under an identity's key, against the
signer's primary key's end (`signer_key_end`, review 75g) and against one rule for a window
the caller names (refused when the signer cannot make it, never shortened in silence)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.enroll import acme_and_agent
from tests.support.gates import POLICIES, TOOLS
from tests.support.parties import Party, make_party, verified_feed
from troth.authority.client import authority_refusal, enroll_request
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    delegate,
    issue_credential,
)
from troth.credentials.vc import export_credential_vc
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    CredentialFailure,
    PolicyError,
    PolicyFailure,
    RemoteError,
)
from troth.gates import BundleStore, bundles, create_bundle, default_bundle_ttl
from troth.node.services.protocol import failure_response
from troth.vault import SoftwareVault

KEY_LIFE = 3600  # the short-lived party's primary key: valid an hour (its signing key 90 days)
READ = Attributes({"orders.access": "read"})


def delegations_by_a_member_of_an_hour() -> Callable[..., CredentialChain]:
    """`made(ttl, now=NOW)`: a member whose primary key lasts KEY_LIFE from NOW delegates
    READ, held for a day from a long-lived authority, to an agent."""
    vault = SoftwareVault()
    authority = make_party(vault, now=NOW)
    member = make_party(vault, now=NOW, valid_for=KEY_LIFE)
    agent = make_party(vault, now=NOW)
    issued = issue_credential(
        authority.signer, subject=member.identifier, attributes=READ, now=NOW, ttl=86_400, depth=2
    )
    chain = CredentialChain((issued,), (authority.identity.history,))

    def made(ttl: int, now: int = NOW) -> CredentialChain:
        return delegate(
            member.signer, chain, subject=agent.identifier, attributes=READ, now=now,
            ttl=ttl, purpose="p",
        )  # fmt: skip

    return made


def test_delegate_refuses_a_ttl_past_its_signers_primary_key() -> None:
    """75l issuance 1: `delegate` refused a ttl past its parent (AMPLIFIED) and past its
    signing key (ATTESTATION_INVALID), but shortened in silence one past the signer's primary
    key (review 75g): an agent asked for 2 h and was given 1 h without a word. A delegation's
    expiry is within its proof's (UCAN `exp`, Biscuit: attenuation never extends); the window
    asked for is made or refused, naming the end, as for the parent and the signing key."""
    made = delegations_by_a_member_of_an_hour()

    with pytest.raises(CredentialError) as refused:
        made(2 * KEY_LIFE)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert str(NOW + KEY_LIFE + 1) in str(refused.value)
    assert len(made(KEY_LIFE + 1).credentials) == 2  # up to the key's end: made


def test_a_vc_is_not_signed_past_its_signers_keys() -> None:
    """75l issuance 2: `export_credential_vc` (public: the caller names `valid_until`) signed
    a VC whose validUntil outlived the signer's signing key, which `verify_vc` refuses for
    good ("outlives the issuer's signing key"), and one past its primary key, which every
    verifier refuses from then on: only `Authority.issue_member_vc` capped it (reviews 47a,
    75g). The window is the caller's: refused, as `delegate` refuses it."""
    vault = SoftwareVault()
    short_signing = make_party(vault, now=NOW, signing_ttl=600)
    short_primary = make_party(vault, now=NOW, valid_for=KEY_LIFE)
    member = make_party(vault, now=NOW)

    def vc(issuer: Party, valid_until: int) -> dict[str, Any]:
        return export_credential_vc(
            issuer.signer, credential_id=bytes(16), subject=member.identifier,
            attributes=READ, valid_from=NOW, valid_until=valid_until, now=NOW,
        )  # fmt: skip

    with pytest.raises(CredentialError) as past_signing:
        vc(short_signing, NOW + 601)
    assert past_signing.value.reason is CredentialFailure.ATTESTATION_INVALID
    with pytest.raises(CredentialError) as past_primary:
        vc(short_primary, NOW + KEY_LIFE + 2)
    assert past_primary.value.reason is CredentialFailure.ISSUER_INVALID
    assert vc(short_primary, NOW + KEY_LIFE + 1)["validUntil"]


def test_a_policy_bundle_ends_with_its_signers_primary_key() -> None:
    """75l issuance 3: a policy bundle was capped at its signer's signing key only
    (`create_bundle` refuses past it, `default_bundle_ttl` stops at it), not at its primary
    key: signed an hour before that key's end, the default 7-day bundle said it was in force
    for days after every node loading it refuses its signer (`verify_history` at `now`), while
    a node that held it from before kept deciding by it."""
    vault = SoftwareVault()
    authority = make_party(vault, now=NOW, valid_for=KEY_LIFE)
    ttl = default_bundle_ttl(authority.signer, authority=authority.identifier, now=NOW)
    assert ttl == KEY_LIFE + 1

    def bundle(ttl: int) -> bytes:
        return create_bundle(
            authority.signer, authority=authority.identifier, policies=POLICIES, schema="",
            tools=TOOLS, revision=1, now=NOW, ttl=ttl,
        )  # fmt: skip

    with pytest.raises(PolicyError) as refused:
        bundle(KEY_LIFE + 2)
    assert refused.value.reason is PolicyFailure.EXPIRED
    assert bundle(KEY_LIFE + 1)


def test_an_authority_past_its_primary_key_says_so(troth_home: Path) -> None:
    """75l issuance 4: an authority whose primary key had expired refused every credential
    and VC with a bare IdentityError ("change 0: key used outside its validity"), not the
    authority layer's typed error: over a node's service answer a member read
    `IdentityError: ...` (no `AuthorityError` reason its client parses, `authority_refusal`),
    and neither it nor the operator was told whose key it was. AuthorityError KEY_EXPIRED,
    naming the end."""
    with acme_and_agent(None, NOW) as (authority, agent, member, ticket):
        authority.enroll(enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW)
        key_end = authority.signer(NOW).identity.current.body.valid_until
        for issue in (authority.issue_member_credential, authority.issue_member_vc):
            with pytest.raises(AuthorityError) as refused:
                issue(member, now=key_end + 1)
            assert refused.value.reason is AuthorityFailure.KEY_EXPIRED
            assert str(key_end) in refused.value.detail
        answer = failure_response(refused.value, 7)
        remote = RemoteError(cbor.decode(answer)[4]["message"])  # as the member reads it
        parsed = authority_refusal(remote)
        assert parsed is not None
        assert parsed.reason is AuthorityFailure.KEY_EXPIRED


def test_an_expired_signer_is_not_told_to_rotate() -> None:
    """75l issuance 5: a signer past its primary key was refused "rotate it first"
    (`signer_key_end`), which it cannot: an expired key signs no rotation either
    (docs/formats.md, rule 4: `key used outside its validity`). It is told so."""
    vault = SoftwareVault()
    expired = make_party(vault, now=NOW, valid_for=KEY_LIFE)
    member = make_party(vault, now=NOW)
    with pytest.raises(CredentialError) as refused:
        issue_credential(
            expired.signer, subject=member.identifier, attributes=READ,
            now=NOW + KEY_LIFE + 1, ttl=60, depth=0,
        )  # fmt: skip
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "rotate it first" not in str(refused.value)
    assert "nor a rotation" in str(refused.value)


def test_a_held_bundle_decides_no_longer_than_its_signers_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75l issuance 6: a bundle outliving its signer's primary key (signed before issuance 3,
    or by another implementation) is refused by every node that loads it once that key has
    expired (`verify_history` at `now`, SIGNER_INVALID), yet a node that held it from before
    kept deciding by it until its `expires_at`: `BundleStore.engine` checked its expiry, its
    feed and its signer's standing there, not the keys it was verified with. Refused from the
    keys' end (SIGNER_INVALID), as a held credential is (`keys_valid_until`)."""
    vault = SoftwareVault()
    authority = make_party(vault, now=NOW, valid_for=KEY_LIFE)
    key_end = NOW + KEY_LIFE + 1
    with monkeypatch.context() as before_75l:  # create_bundle as it signed before issuance 3
        before_75l.setattr(bundles, "_keys_end", lambda signer: signer.expires_at, raising=False)
        data = create_bundle(
            authority.signer, authority=authority.identifier, policies=POLICIES, schema="",
            tools=TOOLS, revision=1, now=NOW, ttl=2 * KEY_LIFE,
        )  # fmt: skip
    store = BundleStore(ChainVerifier(TrustPolicy(frozenset({authority.identifier}))))
    feeds = {authority.identifier: verified_feed(authority, now=NOW + 5)}
    store.accept(data, feeds=feeds, now=NOW + 5)
    feed = verified_feed(authority, now=key_end - 10)
    assert store.engine(authority.identifier, feed=feed, now=key_end - 1)
    with pytest.raises(PolicyError) as refused:
        store.engine(authority.identifier, feed=feed, now=key_end)
    assert refused.value.reason is PolicyFailure.SIGNER_INVALID
