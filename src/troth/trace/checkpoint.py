"""Checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, signed by the log's key.

    body = origin "\\n" size "\\n" base64(root) "\\n" "troth-time " unix-seconds "\\n"
    note = body "\\n" ("\\u2014 " name " " base64(key id (4) || Ed25519 signature (64)) "\\n")+

The origin is "troth.trace/" + the log identity's identifier, so a checkpoint names the identity
whose signing key must sign it; the signature line's name is the origin (tlog-checkpoint), its
key id SHA-256(name || 0x0A || 0x01 || public key)[:4] (signed-note, Ed25519). The extension
line dates the checkpoint, so the log's signing key is judged at that time as a record's key
is (`troth.trace.signing.KeyEpoch`). Signature lines by other names or key ids are skipped;
one by the log's name and key id that does not verify refuses the note (review 49j, notes 3).

`CheckpointAnchor` is what a verifier keeps: the last checkpoint it accepted. With none, every
answer is "unanchored"; a later checkpoint must be consistent with it (no truncation, no fork).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.crypto import KeyType, PublicKey, sha256, verify_signature
from troth.errors import CryptoError, TraceError, TraceFailure, TrothError
from troth.identity import Identifier, Signer, VerifiedIdentity
from troth.trace.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from troth.trace.signing import KeyEpoch, resolve_key

__all__ = [
    "ORIGIN_PREFIX",
    "AnchorStatus",
    "Checkpoint",
    "CheckpointAnchor",
    "check_checkpoint_time",
    "format_note",
    "in_order",
    "judge_kept",
    "log_origin",
    "note_key_id",
    "parse_checkpoint",
    "parse_checkpoint_text",
    "parse_kept",
    "parse_note",
    "sign_checkpoint",
    "verifier_key",
    "verify_checkpoint",
    "verify_note",
    "what_is_kept",
]

ORIGIN_PREFIX: Final = "troth.trace/"
_TIME_PREFIX: Final = "troth-time "
_DASH: Final = "\u2014 "
_ED25519: Final = b"\x01"
_F = TraceFailure
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,18}")
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")
_NOT_IN_NAME: Final = re.compile(r"[\s+]")  # Unicode spaces (str patterns) and plus


def log_origin(log_identity: Identifier) -> str:
    """The origin line (and signer name) of a log whose key belongs to `log_identity`."""
    return ORIGIN_PREFIX + str(log_identity)


def note_key_id(name: str, key: PublicKey) -> bytes:
    """C2SP signed-note key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return sha256(name.encode() + b"\n" + _ED25519 + key.data)[:4]


def verifier_key(name: str, key: PublicKey) -> str:
    """The signed-note verifier key text: name + hex key id + base64(0x01 || key)."""
    encoded = base64.b64encode(_ED25519 + key.data).decode()
    return f"{name}+{note_key_id(name, key).hex()}+{encoded}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint: the tree of `size` leaves with root `root`, dated `time`, and the note as
    signed (`note`). Made by `parse_checkpoint` (not verified) or the functions that sign or
    verify one (check `verified`)."""

    origin: str
    size: int
    root: bytes
    time: int
    note: bytes
    verified: bool = False

    @property
    def body(self) -> bytes:
        """The signed text: everything up to the blank line."""
        return self.note[: self.note.rindex(b"\n\n") + 1]

    @property
    def log(self) -> str:
        """The log identity the origin names (whose key signs the checkpoint): what a report
        of an unanchored answer names, the only thing telling one log's from another's
        (review 49j, logs 1)."""
        return self.origin.removeprefix(ORIGIN_PREFIX)

    def summary(self) -> dict[str, Any]:
        """What a verification report says of the checkpoint it was checked against: whose
        (`log`, review 49j, logs 1), its size, root and time (which of the log's it is: an
        older one kept in place of the newest reads `valid` too; review 51g, anchor 1)."""
        return {"log": self.log, "size": self.size, "root": self.root.hex(), "time": self.time}

    def to_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "time": self.time,
            "note": self.note.decode(),
        }


def _body(origin: str, size: int, root: bytes, time: int) -> bytes:
    root_text = base64.b64encode(root).decode()
    return f"{origin}\n{size}\n{root_text}\n{_TIME_PREFIX}{time}\n".encode()


def sign_checkpoint(
    signer: Signer, epoch: KeyEpoch, size: int, root: bytes, time: int
) -> Checkpoint:
    """Sign the checkpoint of (size, root) at `time` with the log identity's signing key."""
    if epoch.key.key_type is not KeyType.ED25519:
        raise TraceError(_F.CHECKPOINT_INVALID, "a log signs checkpoints with an Ed25519 key")
    epoch.check_time(time)
    origin = log_origin(signer.identity.identifier)
    body = _body(origin, size, root, time)
    note = format_note(body, [(origin, note_key_id(origin, epoch.key), signer.sign(body))])
    return Checkpoint(origin, size, root, time, note, verified=True)


def _invalid(detail: str) -> TraceError:
    return TraceError(_F.CHECKPOINT_INVALID, detail)


NoteSignature = tuple[str, bytes, bytes]
"""A signed-note signature line: (key name, 4-byte key id, signature)."""


def parse_note(note: bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a C2SP signed note into its text (ending in its newline) and its signature lines
    (those too short to hold a key id and a signature are skipped). Raises
    TraceError(CHECKPOINT_INVALID), also for an ASCII control character other than newline
    and a key name holding a Unicode space or a plus (signed-note, "Format": MUST NOT;
    review 49j, notes 1-2)."""
    if len(note) > limits.MAX_TRACE_CHECKPOINT_BYTES:
        raise TraceError(_F.OVER_LIMIT, f"note of {len(note)} bytes")
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("not UTF-8") from None
    if _CONTROL.search(decoded):
        raise _invalid("an ASCII control character other than newline")
    if not decoded.endswith("\n") or "\n\n" not in decoded:
        raise _invalid("not a signed note (text, blank line, signatures)")
    text, _, block = decoded.rpartition("\n\n")
    signatures = []
    for line in block.removesuffix("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH.strip() or not parts[1]:
            raise _invalid("bad signature line")
        if _NOT_IN_NAME.search(parts[1]):
            raise _invalid("a key name with a space or a plus")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise _invalid("signature is not base64") from None
        if len(blob) >= 5:
            signatures.append((parts[1], blob[:4], blob[4:]))
    return (text + "\n").encode(), signatures


def format_note(text: bytes, signatures: Sequence[NoteSignature]) -> bytes:
    """A signed note from its text and signature lines."""
    lines = "".join(
        f"{_DASH}{name} {base64.b64encode(key_id + signature).decode()}\n"
        for name, key_id, signature in signatures
    )
    return text + b"\n" + lines.encode()


def verify_note(note: bytes, vkey: str) -> bytes:
    """Verify a signed note with a signed-note verifier key (name+hex key id+base64(0x01 ||
    Ed25519 key)); return its text. Raises TraceError(CHECKPOINT_INVALID)."""
    try:
        name, key_id_hex, encoded = vkey.split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        key = PublicKey(KeyType.ED25519, raw[1:])
    except (ValueError, binascii.Error, TrothError):
        raise _invalid("not an Ed25519 verifier key") from None
    if raw[:1] != _ED25519 or note_key_id(name, key).hex() != key_id_hex:
        raise _invalid("the verifier key's id does not match its key")
    text, signatures = parse_note(note)
    for sig_name, key_id, signature in signatures:
        if sig_name == name and key_id.hex() == key_id_hex:
            try:
                verify_signature(key, signature, text)
            except CryptoError:
                raise _invalid("bad signature") from None
            return text
    raise _invalid(f"no signature by {name}")


def parse_checkpoint_text(text: bytes) -> tuple[str, int, bytes, list[str]]:
    """C2SP tlog-checkpoint: origin, decimal size, base64 root hash, then extension lines.
    Raises TraceError (CHECKPOINT_INVALID; OVER_LIMIT past MAX_TRACE_CHECKPOINT_BYTES)."""
    if len(text) > limits.MAX_TRACE_CHECKPOINT_BYTES:  # the text is a part of a note
        raise TraceError(_F.OVER_LIMIT, f"checkpoint text of {len(text)} bytes")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("not UTF-8") from None
    lines = decoded.removesuffix("\n").split("\n")
    if len(lines) < 3:
        raise _invalid("expected origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:  # the origin may hold spaces ("go.sum database tree"); a key name may not
        raise _invalid("empty origin")
    if not _DECIMAL.fullmatch(size_text):
        raise _invalid("the size is not a decimal integer")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("the root is not base64") from None
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise _invalid("the root is not a canonical base64 SHA-256 hash")
    if any(not line for line in extensions):
        raise _invalid("empty extension line")
    return origin, int(size_text), root, extensions


def parse_checkpoint(note: bytes) -> tuple[Checkpoint, list[NoteSignature]]:
    """Parse (not verify) a troth checkpoint note: exactly one extension line, troth-time.
    Raises TraceError(CHECKPOINT_INVALID)."""
    text, signatures = parse_note(note)
    origin, size, root, extensions = parse_checkpoint_text(text)
    if len(extensions) != 1 or not extensions[0].startswith(_TIME_PREFIX):
        raise _invalid("expected one troth-time extension line")
    time_text = extensions[0][len(_TIME_PREFIX) :]
    if not _DECIMAL.fullmatch(time_text):
        raise _invalid("the time is not a decimal integer")
    if size == 0 and root != EMPTY_ROOT:
        raise _invalid("an empty tree has the root SHA-256('')")
    return Checkpoint(origin, size, root, int(time_text), bytes(note)), signatures


@contextlib.contextmanager
def what_is_kept() -> Iterator[None]:
    """A TraceError raised within said of the checkpoint the verifier kept (its detail starting
    `the kept checkpoint: `, no record named): a damaged kept file, or another log's note, is
    not the log's or an export line's fault (review 51g, kept 1: `line 1: not a signed
    note`)."""
    try:
        yield
    except TraceError as exc:
        detail = exc.detail or exc.reason.value
        raise TraceError(exc.reason, f"the kept checkpoint: {detail}") from None


def parse_kept(anchor: bytes) -> Checkpoint:
    """The checkpoint a verifier kept (`anchor`), parsed (not verified); its faults said of it
    (`what_is_kept`)."""
    with what_is_kept():
        return parse_checkpoint(anchor)[0]


def verify_checkpoint(
    note: bytes,
    log_identity: VerifiedIdentity,
    attestations: Mapping[str, bytes],
    *,
    resolve: Callable[[VerifiedIdentity, bytes], KeyEpoch] = resolve_key,
) -> Checkpoint:
    """Verify a checkpoint note: its origin names `log_identity`, and a signature line by
    that name verifies under one of the identity's signing keys in `attestations` (keyid ->
    attestation) that could sign at the checkpoint's time. `resolve` judges each key (a
    verifier with stored histories: by the newest it knows, `troth.trace.verify.newest_view`)."""
    checkpoint, signatures = parse_checkpoint(note)
    if checkpoint.origin != log_origin(log_identity.identifier):
        raise _invalid(f"origin {checkpoint.origin!r} is not the log {log_identity.identifier}")
    epochs: list[KeyEpoch] = []
    for attestation in attestations.values():
        try:
            epoch = resolve(log_identity, attestation)
        except TraceError:
            continue  # another identity's key (the bundle holds the agents' too)
        if epoch.key.key_type is KeyType.ED25519:
            epochs.append(epoch)
    body = checkpoint.body
    good: list[KeyEpoch] = []
    for name, key_id, signature in signatures:
        if name != checkpoint.origin:
            continue
        for epoch in epochs:
            if note_key_id(name, epoch.key) != key_id:
                continue
            # signed-note, "Signatures": a known key's signature that fails to verify rejects
            # the whole note (a forged line: a 4-byte key id is easily collided; review 49j,
            # notes 3), as `verify_note` does
            if not _verifies(epoch, signature, body):
                raise _invalid("bad signature by the log's key name and key id")
            good.append(epoch)
    if not good:
        raise _invalid("no signature by the log's key")
    _check_times(good, checkpoint.time)
    return Checkpoint(
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root,
        checkpoint.time,
        checkpoint.note,
        verified=True,
    )


def _check_times(good: Sequence[KeyEpoch], at: int) -> None:
    """Any of the log's keys whose signature verified could sign at `at` (a retired key's
    line beside the current key's does not refuse the note; review 52a, anchor 3), else the
    first one's fault: one retired before `at` is refused as before."""
    first: TraceError | None = None
    for epoch in good:
        try:
            epoch.check_time(at)
        except TraceError as exc:
            first = first or exc
        else:
            return
    raise _invalid(f"the log's key: {first}")


def check_checkpoint_time(checkpoint: Checkpoint, latest: int | None) -> None:
    """A checkpoint is signed after the records it covers entered the log, each within
    MAX_CLOCK_SKEW_SECONDS of the log's clock: one dated earlier than that before the latest of
    them is a forgery (a retired log key backdating its signature; review 16)."""
    if latest is not None and checkpoint.time < latest - limits.MAX_CLOCK_SKEW_SECONDS:
        raise TraceError(
            _F.CHECKPOINT_INVALID,
            f"dated {checkpoint.time}, before the records it covers (one at {latest})",
        )


def in_order(checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
    """A log's checkpoints, smallest first, each dated no earlier than a smaller one: a log
    never dates one before an older one (`TraceLog.checkpoint`), and a verifier that kept the
    smaller refuses the larger (`CheckpointAnchor.accept`); in one log, a larger tree signed
    back to an earlier time (by a log key since retired) is refused as well (review 49j,
    checkpoints 1). Checkpoints of one size are ordered by time: two of one tree signed at
    different times are both honest, the later the floor (`LogFloor`; review 67u, traces 1:
    the later first read INCONSISTENT). Raises TraceError(INCONSISTENT)."""
    ordered = sorted(checkpoints, key=lambda c: (c.size, c.time))
    for smaller, larger in itertools.pairwise(ordered):
        if larger.time < smaller.time:
            raise TraceError(
                _F.INCONSISTENT,
                f"the checkpoint of {larger.size} records is dated {larger.time}, before the "
                f"one of {smaller.size} ({smaller.time})",
            )
    return ordered


def _verifies(epoch: KeyEpoch, signature: bytes, body: bytes) -> bool:
    try:
        verify_signature(epoch.key, signature, body)
    except CryptoError:
        return False
    return True


class AnchorStatus(enum.Enum):
    """What a checkpoint is worth to a verifier."""

    VALID = "valid"  # consistent with the checkpoint this verifier kept
    UNANCHORED = "unanchored"  # this verifier kept none: nothing to compare with


RootAt = Callable[[int], bytes]


class CheckpointAnchor:
    """The last checkpoint a verifier accepted; `accept` judges a newer one against it."""

    def __init__(self, saved: Checkpoint | None) -> None:
        if saved is not None and not saved.verified:
            raise ValueError("an anchor keeps only a verified checkpoint")
        self.saved = saved

    def accept(
        self,
        new: Checkpoint,
        proof: Sequence[bytes] | None = None,
        *,
        root_at: RootAt | None = None,
    ) -> AnchorStatus:
        """Judge verified checkpoint `new`: UNANCHORED without a saved one; VALID when it is
        the saved one or a consistent extension (shown by a consistency `proof`, or by
        `root_at(size)`, the root the verifier computed itself from the log's leaves).
        Raises TraceError TRUNCATED, FORKED or INCONSISTENT; keeps `new` when it is valid."""
        if not new.verified:
            raise ValueError("verify a checkpoint before judging it")
        saved = self.saved
        if saved is None:
            self.saved = new
            return AnchorStatus.UNANCHORED
        if new.origin != saved.origin:
            raise _invalid(f"checkpoint of log {new.origin!r}, anchored to {saved.origin!r}")
        if new.size < saved.size:
            raise TraceError(_F.TRUNCATED, f"size {new.size}, anchored at {saved.size}")
        if new.size == saved.size:
            if new.root != saved.root:
                raise TraceError(_F.FORKED, f"size {new.size}")
        elif saved.size > 0:  # the empty tree is a prefix of every tree
            if root_at is not None:
                if root_at(saved.size) != saved.root:
                    raise TraceError(
                        _F.INCONSISTENT, f"the log's first {saved.size} records have another root"
                    )
            else:
                try:
                    verify_consistency(saved.size, new.size, saved.root, new.root, proof or ())
                except TraceError as exc:
                    raise TraceError(
                        _F.INCONSISTENT, f"{saved.size} -> {new.size}: {exc.detail}"
                    ) from None
        if new.time < saved.time:
            raise TraceError(_F.INCONSISTENT, "dated before the anchored checkpoint")
        self.saved = new
        return AnchorStatus.VALID


def judge_line_kept(
    saved: Checkpoint,
    checkpoint: Checkpoint,
    prefix: RootAt | None,
    attested: Callable[[], bool],
) -> AnchorStatus:
    """An export line's or a proof bundle's `checkpoint` (verified) against the one the
    verifier kept (`saved`): VALID when it is that one (FORKED: of its size, another root), or
    a larger one of its log whose first `saved.size` records hash to the kept root
    (`prefix(saved.size)`: the root the line's inclusion proof gives of them, the line being
    record `saved.size - 1`; None: no such line) and whose line's log material signs the kept
    note (`attested`: else UNANCHORED, a stolen old log key's checkpoint of the honest root),
    INCONSISTENT when they do not hash to it, whoever signed the larger one (review 65i,
    traces 1: a fork checkpointed by a renewed log key, whose lines lack the kept note's key,
    read `unanchored`), or when it is dated before the kept one (review 63s, traces 1: a
    fork's export read `unanchored`, as an honest one of the grown log). UNANCHORED
    otherwise: another log's, a smaller one (an older bundle), or nothing to prove it by."""
    if saved.origin != checkpoint.origin or saved.size > checkpoint.size:
        return AnchorStatus.UNANCHORED
    if saved.size == checkpoint.size:
        if saved.root != checkpoint.root:
            raise TraceError(_F.FORKED, f"size {saved.size}")
        return AnchorStatus.VALID
    if prefix is None or saved.size == 0:
        return AnchorStatus.UNANCHORED
    if prefix(saved.size) != saved.root:
        raise TraceError(
            _F.INCONSISTENT,
            f"{saved.size} -> {checkpoint.size}: the first {saved.size} records have another"
            " root than the kept checkpoint's",
        )
    if not attested():
        return AnchorStatus.UNANCHORED
    if checkpoint.time < saved.time:
        raise TraceError(_F.INCONSISTENT, "dated before the anchored checkpoint")
    return AnchorStatus.VALID


def judge_kept(
    saved: Checkpoint, newest: Checkpoint | None, size: int, root_at: RootAt
) -> AnchorStatus:
    """Judge a log of `size` records, its `newest` checkpoint (verified, its root checked) and
    `root_at` (the roots the verifier computed) against the kept checkpoint `saved` (verified):
    TRUNCATED when the log is shorter; a log that lacks the kept one (no checkpoint, or a
    smaller newest), every record it covers there, is judged the other way round: VALID, not
    TRUNCATED (review 52a, anchor 2); the first records must hash to the kept root."""
    if saved.size > size:
        raise TraceError(_F.TRUNCATED, f"anchored at {saved.size}, the log has {size}")
    if newest is None or newest.size < saved.size:
        status = CheckpointAnchor(newest or saved).accept(saved, root_at=root_at)
    else:
        status = CheckpointAnchor(saved).accept(newest, root_at=root_at)
    if root_at(saved.size) != saved.root:  # no stored checkpoint since the anchor
        raise TraceError(_F.INCONSISTENT, f"the first {saved.size} records differ")
    return status
