"""Review 58e, refuted: attacks on credentials, delegation chains, revocation feeds and VCs
that the product defeats (each test fails if the defence breaks)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.feeds import entries, pages
from tests.support.gates import SUPPORT
from tests.support.parties import Party, make_party
from troth import limits
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_page,
    write_page_sequence,
)
from troth.credentials.vc import (
    CRYPTOSUITE,
    export_credential_vc,
    sign_eddsa_jcs_2022,
    signing_key_id,
)
from troth.errors import CredentialError, CredentialFailure
from troth.node.verify import Sources, verify_vc
from troth.vault import SoftwareVault

NOW = 1_800_000_000
_F = CredentialFailure
SKEW = limits.DEFAULT_CREDENTIAL_SKEW_SECONDS


def _feed(z: Party, revoked: list[tuple[int, bytes]] | None = None, *, at: int = NOW) -> bytes:
    return pages(z, entries(z, revoked or [], at=at - 5), now=at, per_page=10)[0]


def _held(
    z: Party, page: bytes, previous: VerifiedFeed | None = None, *, now: int = NOW
) -> VerifiedFeed:
    return verify_page(page, authority=z.identifier, now=now, previous=previous)


def _chain(vault: SoftwareVault) -> tuple[Party, list[Party], CredentialChain]:
    """z -> a -> b -> c, each link narrowing to orders.access=read, valid NOW-100..NOW+600."""
    z, a, b, c = (make_party(vault, now=NOW - 1000) for _ in range(4))
    root = issue_credential(
        z.signer, subject=a.identifier, attributes=SUPPORT, now=NOW - 100, ttl=3600, depth=3
    )
    chain = CredentialChain((root,), (z.identity.history,))
    read = Attributes({"orders.access": frozenset({"read"})})
    for signer, subject in ((a, b), (b, c)):
        chain = delegate(
            signer.signer,
            chain,
            subject=subject.identifier,
            attributes=read,
            now=NOW - 100,
            ttl=700,
            purpose="p",
        )
    return z, [a, b, c], chain


def _verify(z: Party, chain: CredentialChain, actor: Party, now: int = NOW) -> Any:
    feeds = {z.identifier: _held(z, _feed(z, at=now), now=now)}
    verifier = ChainVerifier(TrustPolicy(frozenset({z.identifier})))
    return verifier.verify(chain.encode(), presenter=actor.identifier, feeds=feeds, now=now)


def test_links_reordered_or_repeated_do_not_verify() -> None:
    """The chain's links swapped, or a link given twice, never verify (alignment, parent
    hashes, cycles)."""
    z, (_, _, c), chain = _chain(SoftwareVault())
    root, first, second = chain.credentials
    assert _verify(z, chain, c).actor == c.identifier  # the control
    for credentials in ((root, second, first), (root, first, first), (root, first, second, second)):
        bad = CredentialChain(credentials, chain.histories)
        with pytest.raises(CredentialError) as refused:
            _verify(z, bad, c)
        assert refused.value.reason in (_F.MISALIGNED, _F.BROKEN_LINK, _F.CYCLE)


def test_the_window_edges_hold_to_the_second_with_the_skew() -> None:
    """The last link expires at NOW+600: valid up to the skew past it, not one second more;
    not valid before its start minus the skew."""
    z, (_, _, c), chain = _chain(SoftwareVault())
    expires = NOW - 100 + 700
    assert _verify(z, chain, c, now=expires + SKEW - 1).within_skew(expires + SKEW - 1)
    with pytest.raises(CredentialError) as late:
        _verify(z, chain, c, now=expires + SKEW)
    assert late.value.reason is _F.EXPIRED
    with pytest.raises(CredentialError) as early:
        _verify(z, chain, c, now=NOW - 100 - SKEW - 1)
    assert early.value.reason is _F.NOT_YET_VALID, early.value
    assert _verify(z, chain, c, now=NOW - 100 - SKEW).within_skew(NOW - 100 - SKEW)


def test_an_older_page_handed_to_a_holder_again_is_refused() -> None:
    """A holder that verified the feed revoking a link is handed the page from before that
    revocation again: refused (it starts before what is held), as is an empty page from the
    end signed before the one held (a rollback of its freshness)."""
    z = make_party(SoftwareVault(), now=NOW - 1000)
    old_tip = _feed(z, at=NOW - 60)
    held = _held(z, _feed(z, [(RevocationKind.CREDENTIAL, b"\x01" * 32)], at=NOW - 10))
    with pytest.raises(CredentialError) as replayed:
        _held(z, old_tip, previous=held)
    assert replayed.value.reason is _F.FEED_INVALID
    revoking = entries(z, [(RevocationKind.CREDENTIAL, b"\x01" * 32)], at=NOW - 15)
    (stale_end,) = pages(z, revoking, now=NOW - 30, per_page=10, start=1)
    with pytest.raises(CredentialError) as rolled_back:
        _held(z, stale_end, previous=held)
    assert rolled_back.value.reason is _F.FEED_ROLLBACK


def _vc(z: Party, member: Party) -> dict[str, Any]:
    return export_credential_vc(
        z.signer,
        credential_id=b"\x05" * 16,
        subject=member.identifier,
        attributes=SUPPORT,
        valid_from=NOW - 100,
        valid_until=NOW + 3600,
        now=NOW - 100,
    )


def _verify_vc(tmp_path: Path, z: Party, data: bytes) -> Any:
    feed = tmp_path / "z.feed"
    feed.write_bytes(b"".join(write_page_sequence([_feed(z)])))
    sources = Sources(frozenset({z.identifier}), tmp_path, [str(feed)])
    return verify_vc(data, sources, now=NOW, issuer_history=z.identity.history)


def test_a_vc_with_a_second_proof_by_another_identitys_key_is_refused(tmp_path: Path) -> None:
    """A member adds an eddsa-jcs-2022 proof of its own (its signing key, its attestation) to
    the authority's VC: every proof of the suite must verify as the issuer's, so it is refused
    (a proof by another key is no proof of the issuer)."""
    vault = SoftwareVault()
    z, member = make_party(vault, now=NOW - 1000), make_party(vault, now=NOW - 1000)
    document = _vc(z, member)
    assert _verify_vc(tmp_path, z, json.dumps(document).encode()).proofs == 1  # the control
    key = member.signer.vault.public_key(member.signer.handle)
    options = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": "2027-01-15T08:00:00Z",
        "verificationMethod": signing_key_id(member.identifier, key),
        "proofPurpose": "assertionMethod",
        "trothKeyAttestation": base64.urlsafe_b64encode(member.signer.attestation)
        .rstrip(b"=")
        .decode(),
    }
    theirs = sign_eddsa_jcs_2022(document, options, member.signer.sign)["proof"]
    both = {**document, "proof": [document["proof"], theirs]}
    with pytest.raises(CredentialError) as refused:
        _verify_vc(tmp_path, z, json.dumps(both).encode())
    assert refused.value.reason is _F.ATTESTATION_INVALID


def test_a_vc_hiding_a_second_value_under_a_duplicate_name_is_refused(tmp_path: Path) -> None:
    """The VC's JSON with `credentialSubject` given twice (a parser keeping the first sees
    another subject than one keeping the last): refused before any proof is read."""
    vault = SoftwareVault()
    z, member, other = (make_party(vault, now=NOW - 1000) for _ in range(3))
    text = json.dumps(_vc(z, member))
    signed_subject = text.index('"credentialSubject"')
    decoy = json.dumps({"id": other.identifier.did, "attributes": {"orders.customer": "1"}})
    doubled = text[:signed_subject] + f'"credentialSubject": {decoy}, ' + text[signed_subject:]
    with pytest.raises(CredentialError) as refused:
        _verify_vc(tmp_path, z, doubled.encode())
    assert refused.value.reason is _F.MALFORMED
    assert "duplicate member name" in str(refused.value)


def test_a_vc_whose_attribute_is_rewritten_in_lookalike_code_points_fails_its_proof(
    tmp_path: Path,
) -> None:
    """The customer number rewritten in fullwidth digits (NFKC-equal to the signed one): JCS
    does not normalise, the proof covers the exact code points, so the VC is refused."""
    vault = SoftwareVault()
    z, member = make_party(vault, now=NOW - 1000), make_party(vault, now=NOW - 1000)
    document = _vc(z, member)
    attributes = document["credentialSubject"]["attributes"]
    attributes["orders.customer"] = "\uff14\uff14\uff17\uff11"  # "4471", fullwidth
    with pytest.raises(CredentialError) as refused:
        _verify_vc(tmp_path, z, json.dumps(document).encode())
    assert refused.value.reason is _F.BAD_SIGNATURE
