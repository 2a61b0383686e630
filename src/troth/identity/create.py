"""Making and extending change histories with keys held in a vault (no storage here).

The first change is signed by its own key; a rotation is signed by the new key and by the
previous key, which must be valid at the rotation's time (docs/formats.md).
"""

from __future__ import annotations

from troth.crypto import KeyType
from troth.errors import IdentityError, IdentityFailure
from troth.identity.change import ChangeBody, SignedChange
from troth.identity.history import VerifiedIdentity
from troth.vault import KeyHandle, KeyPurpose, Vault

__all__ = ["new_identity", "rotate_identity"]


def new_identity(
    vault: Vault, key_type: KeyType, *, now: int, valid_for: int
) -> tuple[KeyHandle, VerifiedIdentity]:
    """Generate a primary key in `vault` and sign the first change of a new history."""
    handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    body = ChangeBody(None, vault.public_key(handle), now, now, now + valid_for)
    encoded = body.encode()
    signed = SignedChange(encoded, vault.sign(handle, encoded), None)
    return handle, VerifiedIdentity.first(signed, body)


def rotate_identity(
    vault: Vault,
    identity: VerifiedIdentity,
    current: KeyHandle,
    key_type: KeyType,
    *,
    now: int,
    valid_for: int,
) -> tuple[KeyHandle, VerifiedIdentity]:
    """Append a change with a new primary key, signed by it and by the current key.

    Refuses (IdentityError) when the current key is not valid at `now`: an expired key must not
    be able to sign a rotation (Trail of Bits' finding in Ockam).
    """
    before = identity.current.body
    if not before.valid_from <= now <= before.valid_until:
        raise IdentityError(
            IdentityFailure.KEY_OUTSIDE_VALIDITY,
            f"current key valid {before.valid_from}..{before.valid_until}, now is {now}",
            identity.current.index,
        )
    if now < before.created_at:
        raise IdentityError(IdentityFailure.TIME_REVERSED, change=identity.current.index + 1)
    if vault.public_key(current) != before.primary_key:
        raise IdentityError(
            IdentityFailure.BAD_PREVIOUS_SIGNATURE, "the handle is not the current key"
        )
    handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    body = ChangeBody(
        identity.current_change_hash, vault.public_key(handle), now, now, now + valid_for
    )
    encoded = body.encode()
    signed = SignedChange(encoded, vault.sign(handle, encoded), vault.sign(current, encoded))
    return handle, identity.extended(signed, body)
