"""Review 34a, identity: what a stolen backup of a node's vault still signs after the owner's
rotation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    issue_credential,
    verify_feed,
)
from troth.crypto import KeyType
from troth.errors import CredentialError, IdentityError, IdentityFailure
from troth.identity import Signer, attest_purpose_key, verify_history, verify_signed_by
from troth.identity.history import VerifiedIdentity
from troth.node import Node, init_node, open_node
from troth.vault import KeyHandle, KeyPurpose

ADMIN = Attributes({"troth.role": "admin", "orders.access": "write"})


def _thiefs_signer(thief: Node, name: str, current: VerifiedIdentity, now: int) -> Signer:
    """A signing key of the thief's, attested under the owner's real current change with the
    next key the stolen backup holds (the key the owner's rotation revealed)."""
    stolen_next = KeyHandle.parse(thief.identities.find(name).next_key or "")
    key = thief.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        thief.vault,
        stolen_next,
        current,
        KeyPurpose.SIGNING,
        thief.vault.public_key(key),
        now=now,
        expires_at=now + 3600,
    )
    return Signer(current, thief.vault, key, attestation, now + 3600)


@pytest.mark.xfail(
    strict=True,
    reason="review 34a, identity 1: a rotation reveals the committed next key, which a stolen "
    "backup holds: the thief attests its own key under the owner's real current change",
)
def test_a_rotation_after_a_stolen_backup_leaves_the_thief_no_key(troth_home: Path) -> None:
    """Review 34a, identity 1. A thief copies the courier's node directory (node.db and
    vault.key: the current key k0 and the committed next key k1, docs/vault.md). The owner
    notices and rotates, as docs/vault.md says retires a stolen backup. But the rotation reveals
    k1, the key the backup holds: the thief needs no stale history nor fork, it takes the
    owner's real new history (public: exported, in every feed) and attests a signing key of its
    own under its current change with k1. Every verifier accepts its signatures: the stored
    copy is that very history, and no feed supersedes it."""
    init_node("laptop")
    with open_node("laptop") as laptop:
        laptop.identities.create(now=NOW, name="courier")
    shutil.copytree(troth_home / "nodes" / "laptop", troth_home / "nodes" / "stolen")
    with open_node("laptop") as owner:
        owner.identities.rotate("courier", now=NOW + 10)  # the owner's recovery
        current = verify_history(owner.identities.export("courier"), now=NOW + 20)
    with open_node("stolen") as thief:
        signer = _thiefs_signer(thief, "courier", current, NOW + 20)
    message = b"pay the thief"
    with pytest.raises(IdentityError) as refused:
        verify_signed_by(current, signer.attestation, message, signer.sign(message), at=NOW + 20)
    assert refused.value.reason is IdentityFailure.ATTESTATION_INVALID


@pytest.mark.xfail(
    strict=True,
    reason="review 34a, identity 1: after its rotation an authority's stolen backup still "
    "issues admin credentials that a verifier holding the fresh feed accepts",
)
def test_an_authoritys_stolen_backup_stops_issuing_after_its_recovery(troth_home: Path) -> None:
    """Review 34a, identity 1, at an authority: the thief of acme's node backup waits for acme's
    rotation (review 2 showed it must not sign with the old history), then issues itself an
    admin credential under acme's real new history, signed with a key attested by the backup's
    next key: a verifier holding acme's fresh feed must refuse it."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth:
        acme = auth.create_authority("acme", now=NOW).identifier
    shutil.copytree(troth_home / "nodes" / "auth", troth_home / "nodes" / "stolen")
    with open_node("agents") as agents:
        mallory = agents.identities.create(now=NOW, name="mallory").identifier
    with open_node("auth") as auth:
        auth.identities.rotate("acme", now=NOW + 10)  # the owner's recovery
        current = verify_history(auth.identities.export("acme"), now=NOW + 20)
        feed = verify_feed(
            auth.authority().feed(now=NOW + 30), authority=acme, now=NOW + 30, max_staleness=60
        )
    with open_node("stolen") as thief:
        signer = _thiefs_signer(thief, "acme", current, NOW + 20)
        forged = issue_credential(
            signer, subject=mallory, attributes=ADMIN, now=NOW + 20, ttl=600, depth=4
        )
    chain = CredentialChain((forged,), (current.history,)).encode()
    verifier = ChainVerifier(TrustPolicy(frozenset({acme})))
    with pytest.raises(CredentialError):
        verifier.verify(chain, presenter=mallory, feeds={acme: feed}, now=NOW + 30)
