"""Verifying a change history (docs/formats.md, "Verification rules").

`verify_history(data, now=...)` returns a `VerifiedIdentity` or raises `IdentityError` naming
the failing change and the reason. Cheap structural checks run before any signature, so a
hostile history costs at most one decode before it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from troth import limits
from troth.crypto import PublicKey, sha256, verify_signature
from troth.errors import (
    CryptoError,
    DecodeError,
    DecodeProblem,
    IdentityError,
    IdentityFailure,
)
from troth.identity.change import (
    ChangeBody,
    SignedChange,
    UnverifiedHistory,
    decode_history,
    encode_history,
    next_key_digest,
)
from troth.identity.identifier import Identifier

__all__ = [
    "VerifiedChange",
    "VerifiedIdentity",
    "change_hashes",
    "check_extends",
    "verify_history",
]

_DECODE_REASONS: Final = {
    DecodeProblem.MALFORMED: IdentityFailure.MALFORMED,
    DecodeProblem.NON_CANONICAL: IdentityFailure.MALFORMED,
    DecodeProblem.TRAILING_BYTES: IdentityFailure.TRAILING_BYTES,
    DecodeProblem.OVER_LIMIT: IdentityFailure.OVER_LIMIT,
    DecodeProblem.UNKNOWN_TYPE: IdentityFailure.UNKNOWN_TYPE,
    DecodeProblem.UNKNOWN_VERSION: IdentityFailure.UNKNOWN_VERSION,
}

_VERIFIED: Final = object()  # only this module (and identity.create) may build verified objects


@dataclass(frozen=True, slots=True)
class VerifiedChange:
    index: int
    change_hash: bytes
    body: ChangeBody
    signed: SignedChange


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """A history that passed `verify_history` (or that this node just created and signed)."""

    identifier: Identifier
    changes: tuple[VerifiedChange, ...]
    history: bytes
    _token: object = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _VERIFIED:
            raise TypeError("VerifiedIdentity is made by verify_history, not constructed")

    @property
    def current(self) -> VerifiedChange:
        return self.changes[-1]

    @property
    def current_key(self) -> PublicKey:
        return self.changes[-1].body.primary_key

    @property
    def current_change_hash(self) -> bytes:
        return self.changes[-1].change_hash

    @property
    def next_key_digest(self) -> bytes:
        """The current change's commitment to the next primary key (pre-rotation)."""
        return self.changes[-1].body.next_key_digest

    def check_valid_at(self, now: int) -> None:
        """Raise IdentityError unless the rules of `verify_history` that depend on the time
        hold at `now` (no change dated after now + skew; the current key valid at `now`): for
        a history verified or built earlier, whose time-independent checks already passed."""
        latest_allowed = now + limits.MAX_CLOCK_SKEW_SECONDS
        for change in self.changes:
            if change.body.created_at > latest_allowed:
                raise IdentityError(
                    IdentityFailure.FUTURE_CHANGE,
                    f"created_at {change.body.created_at}",
                    change.index,
                )
        _check_current_key(self.changes[-1].body, now, len(self.changes) - 1)

    def extended(self, signed: SignedChange, body: ChangeBody) -> VerifiedIdentity:
        """This identity with one more change that the caller has just built and signed."""
        change = VerifiedChange(len(self.changes), sha256(signed.body), body, signed)
        changes = (*self.changes, change)
        return VerifiedIdentity(
            self.identifier, changes, encode_history([c.signed for c in changes]), _VERIFIED
        )

    @staticmethod
    def first(signed: SignedChange, body: ChangeBody) -> VerifiedIdentity:
        """A new identity from its first change, built and signed by the caller."""
        digest = sha256(signed.body)
        change = VerifiedChange(0, digest, body, signed)
        return VerifiedIdentity(Identifier(digest), (change,), encode_history([signed]), _VERIFIED)


def _decode_failure(exc: DecodeError, change: int | None = None) -> IdentityError:
    return IdentityError(_DECODE_REASONS[exc.problem], str(exc), change)


def verify_history(data: bytes | UnverifiedHistory, *, now: int) -> VerifiedIdentity:
    """Verify every change of `data` (bytes, or a history already decoded from them) and that
    the current key is valid at `now`."""
    if not isinstance(data, UnverifiedHistory):
        if len(data) > limits.MAX_IDENTITY_HISTORY_BYTES:
            raise IdentityError(IdentityFailure.OVER_LIMIT, f"{len(data)} bytes")
        try:
            data = UnverifiedHistory.decode(data)
        except DecodeError as exc:
            raise _decode_failure(exc) from None
    signed_changes = data.changes

    changes: list[VerifiedChange] = []
    previous: VerifiedChange | None = None
    latest_allowed = now + limits.MAX_CLOCK_SKEW_SECONDS
    for index, signed in enumerate(signed_changes):
        try:
            body = ChangeBody.decode(signed.body)
        except DecodeError as exc:
            raise _decode_failure(exc, index) from None
        _check_structure(index, signed, body, previous, latest_allowed)
        try:
            verify_signature(body.primary_key, signed.signature, signed.body)
        except CryptoError:
            raise IdentityError(IdentityFailure.BAD_SIGNATURE, change=index) from None
        if previous is not None and signed.previous_signature is not None:
            try:
                verify_signature(previous.body.primary_key, signed.previous_signature, signed.body)
            except CryptoError:
                raise IdentityError(IdentityFailure.BAD_PREVIOUS_SIGNATURE, change=index) from None
        previous = VerifiedChange(index, sha256(signed.body), body, signed)
        changes.append(previous)

    _check_current_key(changes[-1].body, now, len(changes) - 1)
    return VerifiedIdentity(
        Identifier(changes[0].change_hash), tuple(changes), data.data, _VERIFIED
    )


def _check_current_key(current: ChangeBody, now: int, index: int) -> None:
    if not current.valid_from - limits.MAX_CLOCK_SKEW_SECONDS <= now <= current.valid_until:
        raise IdentityError(
            IdentityFailure.KEY_OUTSIDE_VALIDITY,
            f"current key valid {current.valid_from}..{current.valid_until}, now is {now}",
            index,
        )


def _check_structure(
    index: int,
    signed: SignedChange,
    body: ChangeBody,
    previous: VerifiedChange | None,
    latest_allowed: int,
) -> None:
    fail = IdentityFailure
    if body.position != index:
        raise IdentityError(fail.BROKEN_LINK, f"index {body.position} at position {index}", index)
    if not body.valid_from <= body.created_at <= body.valid_until:
        raise IdentityError(
            fail.KEY_OUTSIDE_VALIDITY, "created outside its own key's validity", index
        )
    if body.created_at > latest_allowed:
        raise IdentityError(fail.FUTURE_CHANGE, f"created_at {body.created_at}", index)
    if previous is None:
        if body.previous is not None:
            raise IdentityError(fail.BROKEN_LINK, "the first change names a previous change", index)
        if signed.previous_signature is not None:
            raise IdentityError(fail.UNEXPECTED_PREVIOUS_SIGNATURE, change=index)
        return
    if body.previous != previous.change_hash:
        raise IdentityError(fail.BROKEN_LINK, "previous hash does not match", index)
    if signed.previous_signature is None:
        raise IdentityError(fail.MISSING_PREVIOUS_SIGNATURE, change=index)
    before = previous.body
    if body.created_at < before.created_at:
        raise IdentityError(fail.TIME_REVERSED, change=index)
    if not before.valid_from <= body.created_at <= before.valid_until:
        raise IdentityError(
            fail.KEY_OUTSIDE_VALIDITY,
            f"previous key valid {before.valid_from}..{before.valid_until}, "
            f"rotation at {body.created_at}",
            index,
        )
    if next_key_digest(body.primary_key) != before.next_key_digest:
        raise IdentityError(fail.NEXT_KEY_MISMATCH, change=index)  # formats.md, pre-rotation


def change_hashes(history: bytes) -> list[bytes]:
    """The change hashes of a stored (already verified) history, without verifying again."""
    return [sha256(change.body) for change in decode_history(history)]


def check_extends(stored_hashes: Sequence[bytes], candidate: VerifiedIdentity) -> None:
    """Raise unless `candidate` equals the stored history (given by its change hashes, first
    one = identifier) or appends changes to it: no fork, no rollback."""
    if stored_hashes[0] != candidate.identifier.digest:
        raise IdentityError(IdentityFailure.IDENTIFIER_MISMATCH)
    for index, (old, new) in enumerate(zip(stored_hashes, candidate.changes, strict=False)):
        if old != new.change_hash:
            raise IdentityError(IdentityFailure.FORK, change=index)
    if len(candidate.changes) < len(stored_hashes):
        raise IdentityError(
            IdentityFailure.ROLLBACK,
            f"it ends at change {len(candidate.changes) - 1}, "
            f"the stored copy at change {len(stored_hashes) - 1}",
        )
