"""Review 66s (identity): findings.

identity 1 — `VerifiedIdentity.first(signed, body)` and `identity.extended(signed, body)` were
public: any caller built a `VerifiedIdentity` (the type that says "every change verified") of a
change whose signature was never checked, naming a key the caller does not hold — a verified
type without the verification its name promises (STYLE.md 13). Only identity.create, which
signs the change in its vault the line before, needs them: they are now the module-level
helpers `identity.history._first` and `_extended`, and the type has no public way in but
`verify_history` (new_identities keeps its template, no signature checked again).
"""

from __future__ import annotations

import pytest

from troth.crypto import KeyType
from troth.errors import IdentityError, IdentityFailure
from troth.identity import new_identity, rotate_identity
from troth.identity.change import ChangeBody, SignedChange, encode_history, next_key_digest
from troth.identity.history import VerifiedIdentity, verify_history
from troth.vault import SoftwareVault

T = 1_800_000_000


def test_identity1_no_public_constructor_builds_a_verified_identity_unchecked() -> None:
    vault = SoftwareVault()
    victim = new_identity(vault, KeyType.ED25519, now=T, valid_for=3600)
    stolen = victim.identity.current_key  # a key the forger does not hold
    body = ChangeBody(0, None, stolen, next_key_digest(stolen), T, T, T + 3600)
    forged = SignedChange(body.encode(), bytes(64), None)
    with pytest.raises(AttributeError):
        VerifiedIdentity.first(forged, body)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        victim.identity.extended(forged, body)  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        VerifiedIdentity(victim.identity.identifier, victim.identity.changes, b"")
    # the one way in checks the signature
    with pytest.raises(IdentityError) as refused:
        verify_history(encode_history([forged]), now=T)
    assert refused.value.reason is IdentityFailure.BAD_SIGNATURE


def test_identity1_create_still_builds_what_verify_history_accepts() -> None:
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=T, valid_for=3600)
    rotated = rotate_identity(
        vault, held.identity, held.primary, held.next_key, now=T + 1, valid_for=3600
    )
    again = verify_history(rotated.identity.history, now=T + 2)
    assert again.identifier == held.identity.identifier
    assert again.current_change_hash == rotated.identity.current_change_hash
