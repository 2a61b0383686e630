"""Making and extending change histories with keys held in a vault (no storage here).

Pre-rotation (docs/formats.md, "Pre-rotation and stored histories"): every change commits to
the digest of the next primary key, which is generated in the vault together with the change
and never used until the rotation that reveals it. The first change is signed by its own key; a
rotation is signed by the revealed key and by the previous key, which must be valid at the
rotation's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from troth import limits
from troth.crypto import KeyType
from troth.errors import IdentityError, IdentityFailure
from troth.identity.change import ChangeBody, FirstChanges, SignedChange, next_key_digest
from troth.identity.history import VerifiedIdentity, _extended, _first
from troth.vault import KeyHandle, KeyPurpose, Vault

__all__ = [
    "HeldIdentity",
    "fits_limits",
    "new_identities",
    "new_identity",
    "presented_whole",
    "rotate_identity",
]

_PRIMARY = KeyPurpose.PRIMARY  # bound once: a member's lookup through its enum class is slow
_UINT_BOUND = 1 << 64  # a change's times are CBOR unsigned integers (docs/formats.md)


def _check_window(now: int, valid_for: int, index: int) -> None:
    """IdentityError KEY_OUTSIDE_VALIDITY unless a change made at `now` with a key valid for
    `valid_for` seconds is one every verifier takes (`verify_history`: created within its key's
    window, every time an unsigned 64-bit integer): the maker refuses, before generating a key,
    what no reader accepts (review 45d, identity 1)."""
    if now < 0 or valid_for < 0 or now + valid_for >= _UINT_BOUND:
        raise IdentityError(
            IdentityFailure.KEY_OUTSIDE_VALIDITY,
            f"a key valid for {valid_for} s from {now} (0 <= now, 0 <= valid_for, "
            f"now + valid_for < 2**64)",
            index,
        )


class HeldIdentity(NamedTuple):
    """An identity with the vault handles of its current primary key and its committed next key."""

    primary: KeyHandle
    identity: VerifiedIdentity
    next_key: KeyHandle


def new_identity(vault: Vault, key_type: KeyType, *, now: int, valid_for: int) -> HeldIdentity:
    """Generate a primary key and the next primary key in `vault`, and sign the first change of
    a new history (committing to the next key)."""
    _check_window(now, valid_for, 0)
    handle = vault.generate(key_type, _PRIMARY)
    next_key = vault.generate(key_type, _PRIMARY)
    body = ChangeBody(
        0,
        None,
        vault.public_key(handle),
        next_key_digest(vault.public_key(next_key)),
        now,
        now,
        now + valid_for,
    )
    encoded = body.encode()
    signed = SignedChange(encoded, vault.sign(handle, encoded), None)
    return HeldIdentity(handle, _first(signed, body), next_key)


def new_identities(
    vault: Vault, key_type: KeyType, count: int, *, now: int, valid_for: int
) -> Iterator[HeldIdentity]:
    """`count` new identities, each made as `new_identity` makes one (the same bytes), their
    first changes and histories encoded from one template (`FirstChanges`: a batch shares its
    key type and window)."""
    _check_window(now, valid_for, 0)
    if count == 1:  # the template costs more than it saves for one
        yield new_identity(vault, key_type, now=now, valid_for=valid_for)
        return
    first = FirstChanges(key_type, now, now, now + valid_for)
    generate, public_key, sign = vault.generate, vault.public_key, vault.sign
    for _ in range(count):
        handle = generate(key_type, _PRIMARY)
        next_key = generate(key_type, _PRIMARY)
        body, encoded = first.body(public_key(handle), next_key_digest(public_key(next_key)))
        signed = SignedChange(encoded, sign(handle, encoded), None)
        yield HeldIdentity(handle, _first(signed, body, first.history(signed)), next_key)


def rotate_identity(
    vault: Vault,
    identity: VerifiedIdentity,
    current: KeyHandle,
    next_key: KeyHandle,
    *,
    now: int,
    valid_for: int,
    next_type: KeyType | None = None,
) -> HeldIdentity:
    """Append a change revealing the committed `next_key`, signed by it and by the current key,
    and committing to a new next key (of `next_type`, default: the revealed key's type).

    Refuses (IdentityError) when the current key is not valid at `now` (an expired key must not
    be able to sign a rotation: Trail of Bits' finding in Ockam), when `current` is not the
    current key, when `next_key` is not the committed one (NEXT_KEY_MISMATCH), and when the new
    change's index would pass MAX_CHANGE_INDEX (OVER_LIMIT: review 45j, rotation 1).
    """
    before = identity.current.body
    index = identity.current.index + 1
    if index > limits.MAX_CHANGE_INDEX:  # its supersession (index + 1 changes) is unwritable
        raise IdentityError(
            IdentityFailure.OVER_LIMIT,
            f"a change index is at most {limits.MAX_CHANGE_INDEX} (MAX_CHANGE_INDEX): "
            "this identity can rotate no more, make a new one",
            index,
        )
    _check_window(now, valid_for, index)
    if not before.valid_from <= now <= before.valid_until:
        raise IdentityError(
            IdentityFailure.KEY_OUTSIDE_VALIDITY,
            f"current key valid {before.valid_from}..{before.valid_until}, now is {now}",
            identity.current.index,
        )
    if now < before.created_at:
        raise IdentityError(IdentityFailure.TIME_REVERSED, change=index)
    if vault.public_key(current) != before.primary_key:
        raise IdentityError(
            IdentityFailure.BAD_PREVIOUS_SIGNATURE, "the handle is not the current key"
        )
    revealed = vault.public_key(next_key)
    if next_key_digest(revealed) != before.next_key_digest:
        raise IdentityError(
            IdentityFailure.NEXT_KEY_MISMATCH, "the handle is not the committed next key", index
        )
    following = vault.generate(next_type or next_key.key_type, KeyPurpose.PRIMARY)
    body = ChangeBody(
        index,
        identity.current_change_hash,
        revealed,
        next_key_digest(vault.public_key(following)),
        now,
        now,
        now + valid_for,
    )
    encoded = body.encode()
    signed = SignedChange(encoded, vault.sign(next_key, encoded), vault.sign(current, encoded))
    return HeldIdentity(next_key, _extended(identity, signed, body), following)


def presented_whole(identity: VerifiedIdentity) -> bool:
    """Whether `identity` is presented as it is: every change, within the limits
    (`IdentityService._presentable` returns it unchanged)."""
    return identity.first_index == 0 and fits_limits(identity)


def fits_limits(identity: VerifiedIdentity) -> bool:
    """Whether a presented history is within the limits every verifier enforces."""
    return (
        len(identity.changes) <= limits.MAX_IDENTITY_CHANGES
        and len(identity.history) <= limits.MAX_IDENTITY_HISTORY_BYTES
    )
