"""Verifying a change history (docs/formats.md, "Verification rules").

`verify_history(data, now=...)` returns a `VerifiedIdentity` or raises `IdentityError` naming
the failing change and the reason. The structural checks of every change, and the current
key's validity, run before any signature, so a history refused for its structure or its
dates costs no signature (review 61b, identity 2).

A checkpointed history (the changes from index k on, docs/formats.md, "Checkpointed
histories") verifies only through the caller's `checkpoints` callback, which says whether the
named authority attests change k (the credentials layer backs it with held feeds, a node with
its stored copies); this layer never reads a feed itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    Checkpoint,
    SignedChange,
    UnverifiedHistory,
    encode_history,
    next_key_digest,
)
from troth.identity.identifier import Identifier
from troth.identity.signatures import SeenSignatures
from troth.sealed import sealed

__all__ = [
    "Checkpoints",
    "VerifiedChange",
    "VerifiedIdentity",
    "change_hashes",
    "check_extends",
    "check_follows",
    "indexed_hashes",
    "verify_history",
]

Checkpoints = Callable[[Checkpoint, bytes], bool]
"""Whether `checkpoint.authority` attests that change `checkpoint.index` of identity
`checkpoint.identifier` hashes to the given bytes (from a fresh feed of it, or a stored copy)."""

_DECODE_REASONS: Final = {
    DecodeProblem.MALFORMED: IdentityFailure.MALFORMED,
    DecodeProblem.NON_CANONICAL: IdentityFailure.MALFORMED,
    DecodeProblem.TRAILING_BYTES: IdentityFailure.TRAILING_BYTES,
    DecodeProblem.OVER_LIMIT: IdentityFailure.OVER_LIMIT,
    DecodeProblem.UNKNOWN_TYPE: IdentityFailure.UNKNOWN_TYPE,
    DecodeProblem.UNKNOWN_VERSION: IdentityFailure.UNKNOWN_VERSION,
}

_VERIFIED: Final = object()  # only this module (and identity.create) may build verified objects


@dataclass(frozen=True, slots=True, init=False)
class VerifiedChange:
    """One verified change: its index in the identity's history, hash, body and signatures."""

    index: int
    change_hash: bytes
    body: ChangeBody
    signed: SignedChange

    def __init__(
        self, index: int, change_hash: bytes, body: ChangeBody, signed: SignedChange
    ) -> None:
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, twice as slow; every change created or verified makes one)
        _set_change_index(self, index)
        _set_change_hash(self, change_hash)
        _set_change_body(self, body)
        _set_change_signed(self, signed)


_set_change_index = vars(VerifiedChange)["index"].__set__  # the slot descriptors
_set_change_hash = vars(VerifiedChange)["change_hash"].__set__
_set_change_body = vars(VerifiedChange)["body"].__set__
_set_change_signed = vars(VerifiedChange)["signed"].__set__


@sealed  # no pickle, no __setstate__ (review 64n, api 4)
@dataclass(frozen=True, slots=True, init=False)
class VerifiedIdentity:
    """A history that passed `verify_history` (or that this node just created and signed):
    every change from the first, or (`checkpoint` set) the changes from `checkpoint.index`
    on, that change attested by the checkpoint's authority."""

    identifier: Identifier
    changes: tuple[VerifiedChange, ...]
    history: bytes
    _token: object = field(init=False, repr=False, compare=False)  # not passed on by replace()
    checkpoint: Checkpoint | None = None

    def __init__(
        self,
        identifier: Identifier,
        changes: tuple[VerifiedChange, ...],
        history: bytes,
        _token: object = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        if _token is not _VERIFIED:
            raise TypeError("VerifiedIdentity is made by verify_history, not constructed")
        # frozen: the fields are set through their slots (as VerifiedChange's)
        _set_identifier(self, identifier)
        _set_changes(self, changes)
        _set_history(self, history)
        _set_token(self, _token)
        _set_checkpoint(self, checkpoint)

    @property
    def change_count(self) -> int:
        """How many changes the identity has (the current change's index + 1), whether all
        are presented or only a checkpointed suffix."""
        return self.changes[-1].index + 1

    @property
    def first_index(self) -> int:
        """The index of the first change presented (0 unless checkpointed)."""
        return self.changes[0].index

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
                    IdentityFailure.FUTURE_CHANGE, future(change.body.created_at, now), change.index
                )
        _check_current_key(self.changes[-1].body, now, self.changes[-1].index)

    def from_checkpoint(self, checkpoint: Checkpoint) -> VerifiedIdentity:
        """The same identity presented from change `checkpoint.index` on (a change it holds;
        the caller knows the checkpoint's authority attests it)."""
        if checkpoint.identifier != self.identifier.digest:
            raise ValueError("a checkpoint of another identity")
        start = checkpoint.index - self.first_index
        if not 0 <= start < len(self.changes):
            raise ValueError(f"change {checkpoint.index} is not among the changes held")
        return self._with(self.changes[start:], checkpoint)

    def _with(
        self, changes: tuple[VerifiedChange, ...], checkpoint: Checkpoint | None
    ) -> VerifiedIdentity:
        history = encode_history([c.signed for c in changes], checkpoint)
        return VerifiedIdentity(self.identifier, changes, history, _VERIFIED, checkpoint)


_set_identifier = vars(VerifiedIdentity)["identifier"].__set__  # the slot descriptors
_set_changes = vars(VerifiedIdentity)["changes"].__set__
_set_history = vars(VerifiedIdentity)["history"].__set__
_set_token = vars(VerifiedIdentity)["_token"].__set__
_set_checkpoint = vars(VerifiedIdentity)["checkpoint"].__set__


# The two builders of a verified identity whose changes are checked by no one but their maker:
# identity.create's only, which signs them in its vault. They were VerifiedIdentity.first and
# .extended, public: any caller built a VerifiedIdentity of a change signed by no key it names
# (review 66s, identity 1).


def _first(
    signed: SignedChange, body: ChangeBody, history: bytes | None = None
) -> VerifiedIdentity:
    """A new identity from its first change, built and signed by identity.create (`history`:
    its encoding when the caller has it, as `encode_history([signed])` makes it)."""
    digest = sha256(signed.body)
    change = VerifiedChange(0, digest, body, signed)
    if history is None:
        history = encode_history([signed])
    return VerifiedIdentity(Identifier(digest), (change,), history, _VERIFIED)


def _extended(
    identity: VerifiedIdentity, signed: SignedChange, body: ChangeBody
) -> VerifiedIdentity:
    """`identity` with one more change that identity.create has just built and signed."""
    change = VerifiedChange(identity.changes[-1].index + 1, sha256(signed.body), body, signed)
    return identity._with((*identity.changes, change), identity.checkpoint)


def _decode_failure(exc: DecodeError, change: int | None = None) -> IdentityError:
    return IdentityError(_DECODE_REASONS[exc.problem], str(exc), change)


def verify_history(
    data: bytes | UnverifiedHistory,
    *,
    now: int,
    checkpoints: Checkpoints | None = None,
    seen: SeenSignatures | None = None,
) -> VerifiedIdentity:
    """Verify every change of `data` (bytes, or a history already decoded from them) and that
    the current key is valid at `now`. A checkpointed history is accepted only when
    `checkpoints` says its authority attests its first change (UNATTESTED_CHECKPOINT else).
    `seen`: the change signatures checked before (troth.identity.signatures), each one
    remembered as valid checked no more, each one that verifies remembered."""
    if not isinstance(data, UnverifiedHistory):
        if len(data) > limits.MAX_IDENTITY_HISTORY_BYTES:
            raise IdentityError(IdentityFailure.OVER_LIMIT, f"{len(data)} bytes")
        try:
            data = UnverifiedHistory.decode(data)
        except DecodeError as exc:
            raise _decode_failure(exc) from None
    checkpoint = data.checkpoint
    first = 0 if checkpoint is None else checkpoint.index

    # every change's structure (rules 1-5) and the current key's validity before any
    # signature: a junk change appended to a public history, or a dead identity's history,
    # costs no signature (review 61b, identity 2: the last change's break cost every earlier
    # change's two)
    changes: list[VerifiedChange] = []
    previous: VerifiedChange | None = None
    latest_allowed = now + limits.MAX_CLOCK_SKEW_SECONDS
    for index, signed in enumerate(data.changes, first):
        try:
            body = ChangeBody.decode(signed.body)
        except DecodeError as exc:
            raise _decode_failure(exc, index) from None
        _check_structure(index, signed, body, previous, latest_allowed)
        change_hash = sha256(signed.body)
        if checkpoint is not None and previous is None:
            _check_checkpoint(checkpoint, change_hash, checkpoints)
        previous = VerifiedChange(index, change_hash, body, signed)
        changes.append(previous)
    _check_current_key(changes[-1].body, now, changes[-1].index)

    check = verify_signature if seen is None else seen.verify
    before: ChangeBody | None = None
    for change in changes:  # rules 6 and 7
        signed, body = change.signed, change.body
        try:
            check(body.primary_key, signed.signature, signed.body)
        except CryptoError:
            raise IdentityError(IdentityFailure.BAD_SIGNATURE, change=change.index) from None
        if before is not None and signed.previous_signature is not None:
            try:
                check(before.primary_key, signed.previous_signature, signed.body)
            except CryptoError:
                raise IdentityError(
                    IdentityFailure.BAD_PREVIOUS_SIGNATURE, change=change.index
                ) from None
        before = body

    identifier = Identifier(changes[0].change_hash if checkpoint is None else checkpoint.identifier)
    return VerifiedIdentity(identifier, tuple(changes), data.data, _VERIFIED, checkpoint)


def _check_checkpoint(
    checkpoint: Checkpoint, change_hash: bytes, checkpoints: Checkpoints | None
) -> None:
    """Raise UNATTESTED_CHECKPOINT unless `checkpoints` attests the first change presented."""
    if checkpoints is not None and checkpoints(checkpoint, change_hash):
        return
    authority = Identifier(checkpoint.authority)
    raise IdentityError(
        IdentityFailure.UNATTESTED_CHECKPOINT,
        f"its changes before {checkpoint.index} are attested only by authority {authority}, "
        + (
            "and this verifier takes no checkpoints"
            if checkpoints is None
            else "whose fresh feed this verifier does not hold (or names another change), "
            "nor does another it holds name that change"
        )
        + f": present the full history or trust {authority}",
        checkpoint.index,
    )


def future(dated: int, now: int) -> str:
    """The detail of a date more than MAX_CLOCK_SKEW_SECONDS after `now` (the verifier's
    clock, or the time a signature is checked at): both times and the clock to suspect, so a
    member whose clock is off is told so (review 48s, skew 2)."""
    return (
        f"created_at {dated}, {dated - now} s after {now}, the time checked at: more than the "
        f"{limits.MAX_CLOCK_SKEW_SECONDS} s clock skew allowed (is a clock off?)"
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
    if index > limits.MAX_CHANGE_INDEX:  # its supersession could not be written (review 45j)
        raise IdentityError(
            fail.OVER_LIMIT,
            f"index {index} over MAX_CHANGE_INDEX ({limits.MAX_CHANGE_INDEX})",
            index,
        )
    if not body.valid_from <= body.created_at <= body.valid_until:
        raise IdentityError(
            fail.KEY_OUTSIDE_VALIDITY, "created outside its own key's validity", index
        )
    if body.created_at > latest_allowed:
        now = latest_allowed - limits.MAX_CLOCK_SKEW_SECONDS
        raise IdentityError(fail.FUTURE_CHANGE, future(body.created_at, now), index)
    if previous is None and index > 0:  # the first change of a checkpointed history
        if body.previous is None:
            raise IdentityError(fail.BROKEN_LINK, "a later change names no previous change", index)
        if signed.previous_signature is None:
            raise IdentityError(fail.MISSING_PREVIOUS_SIGNATURE, change=index)
        return  # its link and previous signature: attested by the checkpoint, not checked here
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
    return indexed_hashes(history)[1]


def indexed_hashes(history: bytes) -> tuple[int, list[bytes]]:
    """The index of a stored (already verified) history's first change and the hashes of its
    changes, without verifying again. Raises only DecodeError."""
    decoded = UnverifiedHistory.decode(history)
    return decoded.first_index, [sha256(change.body) for change in decoded.changes]


def check_extends(
    stored_hashes: Sequence[bytes],
    candidate: VerifiedIdentity,
    *,
    stored_first: int = 0,
    stored_last: SignedChange | None = None,
) -> None:
    """Raise unless `candidate` equals the stored history (given by the hashes of its changes
    from index `stored_first` on) or appends changes to it: no fork, no rollback. Changes are
    compared by index and hash, so either side may be a checkpointed suffix (formats.md,
    "Pre-rotation and stored histories"):

    - on every index both hold, the hashes agree (else FORK at the first that differs);
    - the candidate ends no earlier than the stored copy (else ROLLBACK);
    - a candidate starting right after the stored copy names its last change as previous,
      and, given that change (`stored_last`), follows it as `verify_history` requires of a
      rotation (its key the one committed to, the previous-key signature, the times): what
      its checkpoint alone vouches for, and another authority's checkpoint may name a change
      it made up (review 23a, checkpoints 4); one starting later (a gap) is refused: nothing
      shows that it descends from the stored copy (another authority's checkpoint may attest
      a stolen backup's fork).
    """
    last_stored = stored_first + len(stored_hashes) - 1
    first, last = candidate.first_index, candidate.current.index
    if stored_first == 0 and stored_hashes[0] != candidate.identifier.digest:
        raise IdentityError(IdentityFailure.IDENTIFIER_MISMATCH)
    for index in range(max(stored_first, first), min(last_stored, last) + 1):
        if stored_hashes[index - stored_first] != candidate.changes[index - first].change_hash:
            raise IdentityError(IdentityFailure.FORK, change=index)
    if last < last_stored:
        raise IdentityError(
            IdentityFailure.ROLLBACK,
            f"it ends at change {last}, the stored copy at change {last_stored}",
        )
    if first == last_stored + 1:
        if candidate.changes[0].body.previous != stored_hashes[-1]:
            raise IdentityError(IdentityFailure.FORK, change=first)
        if stored_last is not None:
            check_follows(stored_last, candidate.changes[0])
    if first > last_stored + 1:
        raise IdentityError(
            IdentityFailure.UNATTESTED_CHECKPOINT,
            f"it starts at change {first}, the stored copy ends at change {last_stored}: "
            f"present it from change {last_stored + 1} or earlier (or import the changes "
            "between)",
            first,
        )


def check_follows(previous: SignedChange, change: VerifiedChange, *, signed: bool = True) -> None:
    """Raise IdentityError unless `change` follows `previous` (the change before it, e.g. a
    stored copy's last) by the rules `verify_history` applies to a rotation (docs/formats.md,
    "Verification rules", 5 and 7): the hash link, the previous key valid at the rotation, the
    times in order, the key committed to (pre-rotation) and, when `signed`, the previous-key
    signature. For the first change of a checkpointed history, whose link its checkpoint
    vouches for. `signed=False` judges the change itself, its body (what its hash covers), not
    the copy of it at hand: a copy whose previous-key signature was mangled holds the same
    change (review 28b, refuted 1)."""
    try:
        body = ChangeBody.decode(previous.body)
    except DecodeError as exc:
        raise _decode_failure(exc, change.index - 1) from None
    before = VerifiedChange(change.index - 1, sha256(previous.body), body, previous)
    # the future check (rule 4) ran when `change` was verified: not again here
    _check_structure(change.index, change.signed, change.body, before, change.body.created_at)
    if not signed:
        return
    signature = change.signed.previous_signature
    try:
        verify_signature(body.primary_key, signature or b"", change.signed.body)
    except CryptoError:
        raise IdentityError(IdentityFailure.BAD_PREVIOUS_SIGNATURE, change=change.index) from None
