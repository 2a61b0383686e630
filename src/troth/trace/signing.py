"""Signing trace records as an agent, and verifying who signed one (docs/formats.md, "Trace
records": "Signatures outlive rotations").

A record is signed by the agent's signing purpose key; the DSSE keyid, also inside the signed
payload (`key`), is the lowercase hex SHA-256 of that key's purpose-key attestation, so a
verifier finds the attestation by it (in the log bundle) and the signature binds it.

Unlike `troth.identity.verify_signed_by`, which accepts only keys attested under the
identity's latest change, a record names its time and is judged at that time: the attestation
may be made under any change of the signer's verified history, and the key may sign only while
that change was the current one (`KeyEpoch.check_time`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from troth import limits
from troth.crypto import PublicKey, sha256, verify_signature
from troth.errors import CryptoError, DecodeError, DecodeProblem, TraceError, TraceFailure
from troth.identity import PurposeKeyAttestation, Signer, VerifiedIdentity
from troth.identity.identifier import Identifier
from troth.sealed import sealed
from troth.trace.dsse import decode_envelope, encode_envelope, pae
from troth.trace.merkle import leaf_hash
from troth.trace.record import (
    HASHED_VERSION,
    PAYLOAD_TYPE,
    PROCESS_RECORD_IDS,
    REDACTABLE,
    VERSION,
    Authority,
    Decision,
    Disclosure,
    Kind,
    Links,
    RecordIds,
    SpanTimes,
    ToolCall,
    TraceRecord,
    commitment,
    disclosure_value,
    encode_disclosures,
    is_canonical_value,
    new_record_id,
    resolution_id,
)
from troth.trace.record_decode import decode_payload
from troth.vault import KeyPurpose

__all__ = [
    "ContentError",
    "KeyEpoch",
    "RecordContent",
    "VerifiedRecord",
    "check_content",
    "check_disclosures",
    "check_signature",
    "content_id",
    "decode_failure",
    "keyid_of",
    "open_envelope",
    "resign_record",
    "resolve_key",
    "sign_next",
    "sign_record",
    "signable_values",
    "signed_again",
    "verify_envelope",
    "verify_listed_envelope",
]

_F = TraceFailure
_VERIFIED: Final = object()
_DECODE_REASONS: Final = {
    DecodeProblem.UNKNOWN_TYPE: _F.UNKNOWN_TYPE,
    DecodeProblem.UNKNOWN_VERSION: _F.UNKNOWN_VERSION,
    DecodeProblem.OVER_LIMIT: _F.OVER_LIMIT,
}

Random = Callable[[int], bytes]


def decode_failure(exc: DecodeError) -> TraceError:
    """A decoder's refusal as a TraceError with the matching reason."""
    return TraceError(_DECODE_REASONS.get(exc.problem, _F.MALFORMED), str(exc))


class ContentError(TraceError, ValueError):
    """TraceError MALFORMED for a record's content signing refuses (a value no export carries,
    a name not REDACTABLE, a malformed id, a field its kind has not, a field given an object of
    another type): from `sign_record`, `check_content` and so a batcher's or outbox's `add`,
    one typed error (review 75k, batcher2 3: untyped input raised a raw KeyError or
    AttributeError). Also a ValueError, as signing's refusals of a content were before."""

    def __init__(self, detail: str) -> None:
        super().__init__(_F.MALFORMED, detail)


def _not_content(exc: Exception) -> ContentError:
    """`exc`, raised building a record of a content, as its ContentError."""
    if isinstance(exc, ValueError):  # the record's own refusal: its message says what
        return ContentError(str(exc))
    return ContentError(f"not a record's content: {type(exc).__name__}: {exc}")


_NOT_CONTENT: Final = (AttributeError, KeyError, TypeError, ValueError)
"""What building a record of a content raises for one signing refuses (`_not_content`)."""


def keyid_of(attestation: bytes) -> str:
    """The DSSE keyid of a signing key: hex SHA-256 of its purpose-key attestation."""
    return sha256(attestation).hex()


@dataclass(frozen=True, slots=True)
class KeyEpoch:
    """A signing key of an identity, attested under one change of its history, and the times
    at which it may sign."""

    identifier: Identifier
    keyid: str
    key: PublicKey
    change: int
    is_current: bool
    attested_from: int
    expires_at: int
    primary_valid_from: int
    primary_valid_until: int
    retired_at: int | None

    def check_time(self, at: int) -> None:
        """Raise TraceError unless the key could sign at `at`: within its attestation's window
        and its primary key's validity (300 s of skew before each start), and before the next
        change retired it."""
        skew = limits.MAX_CLOCK_SKEW_SECONDS
        if not self.attested_from - skew <= at < self.expires_at:
            raise TraceError(
                _F.ATTESTATION_INVALID,
                f"attestation valid {self.attested_from}..{self.expires_at}, record at {at}",
            )
        if not self.primary_valid_from - skew <= at <= self.primary_valid_until:
            raise TraceError(
                _F.ATTESTATION_INVALID, f"attested by change {self.change} outside its validity"
            )
        # whole seconds: a record of the rotation's own second is taken as made before it
        if self.retired_at is not None and at > self.retired_at:
            raise TraceError(
                _F.KEY_RETIRED,
                f"attested under change {self.change}, retired at {self.retired_at}, "
                f"record at {at}",
            )


def resolve_key(identity: VerifiedIdentity, attestation: bytes) -> KeyEpoch:
    """The signing key `attestation` attests for `identity`, under whichever change of its
    verified history it was made (signature by that change's primary key)."""
    try:
        decoded = PurposeKeyAttestation.decode(attestation)
    except DecodeError as exc:
        raise TraceError(_F.ATTESTATION_INVALID, str(exc)) from None
    if decoded.identifier != identity.identifier:
        raise TraceError(_F.ATTESTATION_INVALID, "attested for another identity")
    if decoded.purpose is not KeyPurpose.SIGNING or not decoded.key.key_type.can_sign:
        raise TraceError(_F.ATTESTATION_INVALID, "not a signing key")
    changes = identity.changes  # a checkpointed history starts at change first_index
    position = next(
        (n for n, c in enumerate(changes) if c.change_hash == decoded.change_hash), None
    )
    if position is None:
        raise TraceError(_F.ATTESTATION_INVALID, "made under a change not in the history")
    change = changes[position].body
    try:
        verify_signature(change.primary_key, decoded.signature, decoded.body)
    except CryptoError:
        raise TraceError(_F.ATTESTATION_INVALID, "bad attestation signature") from None
    following = changes[position + 1].body.created_at if position + 1 < len(changes) else None
    return KeyEpoch(
        identity.identifier,
        keyid_of(attestation),
        decoded.key,
        changes[position].index,
        following is None,
        decoded.created_at,
        decoded.expires_at,
        change.valid_from,
        change.valid_until,
        following,
    )


@dataclass(frozen=True, slots=True)
class RecordContent:
    """What a record says, before it is numbered, dated and signed. `values` are the
    redactable ones (tool arguments and result, inputs, reasoning): the record commits to each
    with a salted hash and the value becomes a disclosure."""

    kind: Kind
    tool: ToolCall | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    authority: Authority | None = None
    links: Links = field(default_factory=Links)
    escalation_to: Identifier | None = None
    span: SpanTimes | None = None
    id: str | None = None


@sealed  # no pickle, no __setstate__ (review 64n, api 4)
@dataclass(frozen=True, slots=True, init=False)
class VerifiedRecord:
    """A record whose signature and signing key were checked at its time (or that this process
    just signed), with its exact envelope bytes (the log leaf) and its disclosures."""

    record: TraceRecord
    envelope: bytes = field(repr=False)
    hash: bytes
    leaf: bytes  # RFC 9162 leaf hash of the envelope: made by the signer's or submitter's
    # thread, off the log's commit path
    signer: VerifiedIdentity = field(repr=False)
    attestation: bytes = field(repr=False)
    epoch: KeyEpoch = field(repr=False)
    disclosures: Mapping[str, Disclosure] = field(repr=False)
    stored_disclosures: bytes | None = field(repr=False)  # as the log keeps them
    _token: object = field(init=False, repr=False, compare=False)  # not passed on by replace()

    def __init__(
        self,
        record: TraceRecord,
        envelope: bytes,
        hash: bytes,
        leaf: bytes,
        signer: VerifiedIdentity,
        attestation: bytes,
        epoch: KeyEpoch,
        disclosures: Mapping[str, Disclosure],
        stored_disclosures: bytes | None,
        _token: object = None,
    ) -> None:
        if _token is not _VERIFIED:
            raise TypeError("VerifiedRecord is made by sign_record or verify_envelope")
        # frozen: through the slots (a dataclass's object.__setattr__ per field is ~6x slower)
        _set_record(self, record)
        _set_envelope(self, envelope)
        _set_hash(self, hash)
        _set_leaf(self, leaf)
        _set_signer(self, signer)
        _set_attestation(self, attestation)
        _set_epoch(self, epoch)
        _set_disclosures(self, disclosures)
        _set_stored_disclosures(self, stored_disclosures)
        _set_token(self, _token)


_slots: Final = vars(VerifiedRecord)  # the slot descriptors
_set_record = _slots["record"].__set__
_set_envelope = _slots["envelope"].__set__
_set_hash = _slots["hash"].__set__
_set_leaf = _slots["leaf"].__set__
_set_signer = _slots["signer"].__set__
_set_attestation = _slots["attestation"].__set__
_set_epoch = _slots["epoch"].__set__
_set_disclosures = _slots["disclosures"].__set__
_set_stored_disclosures = _slots["stored_disclosures"].__set__
_set_token = _slots["_token"].__set__


def sign_next(
    signer: Signer,
    content: RecordContent,
    after: tuple[int, bytes, int] | None,
    *,
    now: int,
    epoch: KeyEpoch | None,
    random: Random,
) -> VerifiedRecord:
    """`sign_record` of the agent's next record: after `after` (the seq, hash and time of the
    record it chains onto; None: the agent's first), dated no earlier than it (times never go
    back along an agent's chain), ids from this process's sequence."""
    seq, prev, time = (
        (0, None, now) if after is None else (after[0] + 1, after[1], max(now, after[2]))
    )
    return _sign(signer, content, None, seq, prev, time, epoch, random, PROCESS_RECORD_IDS)


def signable_values(values: Mapping[str, Any], record: str | None = None) -> dict[str, bytes]:
    """The canonical JSON of each value of a record to sign (record id `record`, if named):
    what a collector admits and an export carries (an ASCII string always is), each within
    MAX_TRACE_DISCLOSURE_BYTES, ValueError for any other; TraceError OVER_LIMIT when together
    over MAX_TRACE_RECORD_DISCLOSURE_BYTES (its proof would not fit a service answer: review
    47b, limits 1). `TraceBatcher.add` refuses when queued what signing would (review 74s,
    records3 1-2)."""
    encoded: dict[str, bytes] = {}
    total = 0
    for name, value in values.items():
        try:
            encoded[name] = one = disclosure_value(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if name not in REDACTABLE:  # (a name that is no text too: review 75k, batcher2 3)
            raise ValueError(f"{name!r}: a redactable value is named one of {REDACTABLE}")
        size = len(one)
        total += size
        if total > limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES:
            raise _over_disclosed(record)
        if not (type(value) is str and value.isascii()) and not is_canonical_value(one):
            raise ValueError(
                f"{name}: not a value an export can carry (I-JSON: no surrogate or "
                f"noncharacter, at most {limits.MAX_JSON_DEPTH - 3} levels of nesting)"
            )
        if size > limits.MAX_TRACE_DISCLOSURE_BYTES:  # what a `Disclosure` holds
            bound = limits.MAX_TRACE_DISCLOSURE_BYTES
            raise ValueError(f"{name}: a disclosed value is at most {bound}")
    return encoded


def check_content(content: RecordContent) -> dict[str, bytes]:
    """Everything `sign_record` refuses about `content` itself, whoever signs it and wherever
    in the agent's chain: its values (`signable_values`), their names (REDACTABLE), its id (32
    lowercase hex digits; a resolution's is its escalation's), the fields of its kind (an
    escalation's hash on a resolution only, whom it escalates to on an escalation only), its
    payload at the chain's farthest place within MAX_TRACE_PAYLOAD_BYTES (`_check_payload`).
    ContentError (MALFORMED: a field of another type than its own too) or TraceError
    (OVER_LIMIT) as `sign_record` raises them; the canonical JSON of each value otherwise (what
    signing's internal `_sign` signs for a batcher's queued record). `TraceBatcher.add` refuses with
    it, when queued, what signing would (reviews 74s records3 1-2; 75c batcher 1: only the
    values were checked there). `sign_record` runs these same pieces on the record it signs
    (`signable_values`, `_unsigned`'s TraceRecord, `_check_payload` once its payload is near
    the bound): one check, not a copy that could disagree with it."""
    try:  # a typed field given another object: refused (review 75c, batcher 2: queued, its
        # signing failed every batch, first in the queue)
        encoded = signable_values(content.values, content.id)
        _check_payload(content, dict.fromkeys(encoded, _NO_DIGEST))
    except _NOT_CONTENT as exc:
        raise _not_content(exc) from None
    return encoded


def content_id(content: RecordContent) -> str | None:
    """The id `sign_record` gives a record of `content` whatever its place: the one it names,
    else a resolution's (`resolution_id` of its escalation's hash: review 53l, resolutions 1);
    None: a fresh one when signed. `TraceBatcher.add` numbers a record by it (review 75c,
    batcher 3: it gave a resolution naming none a fresh id, which signing refused)."""
    parent_hash = content.links.parent_hash
    if content.id is None and parent_hash is not None:
        return resolution_id(parent_hash)
    return content.id


def sign_record(
    signer: Signer,
    content: RecordContent,
    *,
    seq: int,
    prev: bytes | None,
    time: int,
    epoch: KeyEpoch | None = None,
    random: Random = os.urandom,
    ids: RecordIds | None = None,
) -> VerifiedRecord:
    """Number, date, commit and sign `content` as `signer`'s identity. `epoch` (the signer's
    resolved key, when the caller keeps it) saves resolving the attestation again; `ids`
    (when content names no id) numbers it in the sequence of ids it keeps. ContentError
    (TraceError MALFORMED, a ValueError too) or TraceError for what `check_content` refuses:
    OVER_LIMIT when its values together are over MAX_TRACE_RECORD_DISCLOSURE_BYTES (its proof
    would not fit a service answer: review 47b, limits 1) or its payload could be over
    MAX_TRACE_PAYLOAD_BYTES. Its values are encoded and checked here: no caller hands in bytes
    for them (review 75k, batcher2 1: `encoded=` signed a caller's bytes no check saw)."""
    return _sign(signer, content, None, seq, prev, time, epoch, random, ids)


def _sign(
    signer: Signer,
    content: RecordContent,
    encoded: Mapping[str, bytes] | None,
    seq: int,
    prev: bytes | None,
    time: int,
    epoch: KeyEpoch | None,
    random: Random,
    ids: RecordIds | None,
) -> VerifiedRecord:
    """`sign_record` (and `sign_next`, calling it here: no call more a record); `encoded`, for
    troth.trace.batcher only: what `check_content` returned for `content`, kept since (its
    queue, read-only), signed for its values (`content.values` is not read)."""
    epoch = epoch or resolve_key(signer.identity, signer.attestation)
    epoch.check_time(time)
    try:  # (free unless raised: a content signing refuses is one typed error, 75k batcher2 3)
        signable = signable_values(content.values, content.id) if encoded is None else encoded
        entropy = random(16 * (1 + len(signable)))  # the id's random bits, then a salt a value
        disclosures: dict[str, Disclosure] = {}
        digests: dict[str, bytes] = {}
        offset = 16
        for name in signable:  # (no `items()`: a call per record; review 74s's check costs one)
            disclosure = Disclosure(entropy[offset : offset + 16], signable[name])
            offset += 16
            disclosures[name] = disclosure
            digests[name] = commitment(name, disclosure)
        record_id, links = content.id, content.links
        if links.parent_hash is not None:  # `content_id`, inline (a call per record)
            record_id = record_id or resolution_id(links.parent_hash)
        agent = signer.identity.identifier
        if links.parent_agent is not None:  # `Links.signed_by`, called only when it may drop it
            links = links.signed_by(agent)  # (a call per record)
        record = _unsigned(
            content,
            record_id
            or (new_record_id(time, entropy[:16]) if ids is None else ids.next(time, entropy[:16])),
            agent,
            epoch.keyid,
            seq,
            prev,
            time,
            digests,
            links,
        )
        payload = record.encode()
    except _NOT_CONTENT as exc:
        raise _not_content(exc) from None
    return _seal(signer, epoch, record, payload, disclosures, content)


def _unsigned(
    content: RecordContent,
    record_id: str,
    agent: Identifier,
    key: str,
    seq: int,
    prev: bytes | None,
    time: int,
    digests: Mapping[str, bytes],
    links: Links,
) -> TraceRecord:
    """The record of `content` with these fields (TraceRecord's ValueError for what it
    refuses): `sign_record`'s, and `_check_payload`'s at the chain's farthest place."""
    tool = content.tool
    return TraceRecord(  # (positional: keywords cost a lookup each, per record)
        record_id,
        agent,
        key,
        seq,
        prev,
        time,
        content.kind,
        tool,
        digests,
        content.decision,
        content.authority,
        links,
        content.escalation_to,
        content.span,
        # a resolution naming its escalation's hash, a tool its server (reviews 53i, 53l):
        # `version_of`, inline (per record)
        VERSION
        if links.parent_hash is None and (tool is None or tool.server is None)
        else HASHED_VERSION,
    )


_NO_DIGEST: Final = bytes(32)
_FARTHEST: Final = 2**53 - 1  # the largest seq and time a record holds
_PLACEHOLDERS: Final = (Identifier(bytes(32)), Identifier(b"\x01" * 32))
_PAYLOAD_ROOM: Final = (
    2 * (len(str(_FARTHEST)) - len("0"))  # seq and time: 16 digits, not 1
    + len('"' + "0" * 64 + '"')
    - len("null")  # a prev, not null
    + len(',"parent_agent":""')
    + len(str(_PLACEHOLDERS[0]))  # the agent's own, kept
)
"""What a record's payload may grow by at the chain's farthest place (`_check_payload`)."""


def _check_payload(content: RecordContent, digests: Mapping[str, bytes]) -> None:
    """TraceRecord's ValueError for what it refuses of `content` (with digests of these names),
    TraceError OVER_LIMIT unless its payload is within MAX_TRACE_PAYLOAD_BYTES wherever in the
    chain it is signed or signed again (the largest seq and time, a prev, a parent agent that is
    the signer itself kept, one id as long as any): one rule for every signer, whatever its
    place, so `check_content` (a batcher's `add`) refuses exactly what `sign_record` does
    (review 75c, batcher 1), and a record `resign_record` moves stays within it."""
    links = content.links
    farthest = _unsigned(
        content,
        content_id(content) or "0" * 32,
        _PLACEHOLDERS[links.parent_agent == _PLACEHOLDERS[0]],  # never the parent's agent
        "0" * 64,
        _FARTHEST,
        _NO_DIGEST,
        _FARTHEST,
        digests,
        links,
    )
    size = len(farthest.encode())
    if size > limits.MAX_TRACE_PAYLOAD_BYTES:
        raise TraceError(
            _F.OVER_LIMIT,
            f"payload of {size} bytes at the chain's farthest place (seq and time 2^53 - 1, a "
            f"prev: a record is within MAX_TRACE_PAYLOAD_BYTES, {limits.MAX_TRACE_PAYLOAD_BYTES}, "
            "wherever it is signed or signed again; docs/formats.md, Payload)",
            record=content.id,
        )


def resign_record(
    signer: Signer,
    record: TraceRecord,
    disclosures: Mapping[str, Disclosure],
    *,
    seq: int,
    prev: bytes | None,
    time: int,
    epoch: KeyEpoch | None = None,
) -> VerifiedRecord:
    """`record` (with its `disclosures`) signed again as `signer` at another place in the
    agent's chain: the same id and content, the same commitments and salts, a new seq, prev,
    time and key (a trace outbox re-signs a record the log refused for its place, and those
    chained after it: troth.trace.outbox). It seals whatever `record` holds: the caller first
    verifies it as the signer's own (review 55b, outbox 1). TraceError DISCLOSURE_MISMATCH for
    a disclosure its commitment does not open (review 75n, payload 3: a log appended it)."""
    if record.agent != signer.identity.identifier:
        raise TraceError(_F.SIGNER_INVALID, "the record is another identity's")
    check_disclosures(record, disclosures)
    epoch = epoch or resolve_key(signer.identity, signer.attestation)
    epoch.check_time(time)
    moved = TraceRecord(
        record.id,
        record.agent,
        epoch.keyid,
        seq,
        prev,
        time,
        record.kind,
        record.tool,
        record.digests,
        record.decision,
        record.authority,
        record.links,
        record.escalation_to,
        record.span,
        record.version,  # its links keep their meaning (a version 1 parent is by id)
    )
    return _seal(signer, epoch, moved, moved.encode(), dict(disclosures), None)


_RESIGNED: Final = frozenset({"key", "seq", "prev", "time"})
"""The fields of a record `resign_record` changes."""


def signed_again(envelope: bytes, record: TraceRecord) -> bool:
    """Whether the record in `envelope` is `record` signed again (`resign_record`: the same
    id, agent and content, its commitments among them; another seq, prev, time or key), or
    as it is. False when `envelope` does not decode (review 70o, outbox2 3: a trace log
    answers such a resend already in the log)."""
    try:
        held = open_envelope(envelope)[0]
    except TraceError:
        return False
    return all(
        getattr(held, name) == getattr(record, name)
        for name in TraceRecord.__dataclass_fields__
        if name not in _RESIGNED
    )


def _seal(
    signer: Signer,
    epoch: KeyEpoch,
    record: TraceRecord,
    payload: bytes,
    disclosures: Mapping[str, Disclosure],
    content: RecordContent | None,
) -> VerifiedRecord:
    """Sign `record`'s `payload` (the envelope of a VerifiedRecord): of `content`, whose
    payload must be within the bound wherever in the chain (`_check_payload`), or moved
    (`resign_record`: its payload within it)."""
    if len(payload) > limits.MAX_TRACE_PAYLOAD_BYTES - _PAYLOAD_ROOM:  # (else within it)
        if content is not None:
            _check_payload(content, record.digests)
        if len(payload) > limits.MAX_TRACE_PAYLOAD_BYTES:
            raise TraceError(_F.OVER_LIMIT, f"payload of {len(payload)} bytes")
    envelope = encode_envelope(
        PAYLOAD_TYPE, payload, epoch.keyid, signer.sign(pae(PAYLOAD_TYPE, payload))
    )
    return VerifiedRecord(
        record,
        envelope,
        sha256(payload),
        leaf_hash(envelope),
        signer.identity,
        signer.attestation,
        epoch,
        disclosures,
        encode_disclosures(disclosures),
        _VERIFIED,
    )


def open_envelope(data: bytes) -> tuple[TraceRecord, bytes, bytes, str]:
    """Decode (not verify) a trace envelope: (record, payload, signature, keyid). Raises
    TraceError with the decoding reason."""
    try:
        envelope, keyid = decode_envelope(data)
        if envelope.payload_type != PAYLOAD_TYPE:
            raise DecodeError(f"payload type {envelope.payload_type!r}", DecodeProblem.UNKNOWN_TYPE)
        record = decode_payload(envelope.payload)
    except DecodeError as exc:
        raise decode_failure(exc) from None
    if record.key != keyid:
        raise TraceError(_F.MALFORMED, "the envelope's keyid is not the record's key")
    return record, envelope.payload, envelope.signatures[0].sig, keyid


def check_signature(epoch: KeyEpoch, payload: bytes, signature: bytes) -> None:
    """Raise TraceError(BAD_SIGNATURE) unless `signature` is `epoch`'s key's over the PAE."""
    try:
        verify_signature(epoch.key, signature, pae(PAYLOAD_TYPE, payload))
    except CryptoError:
        raise TraceError(_F.BAD_SIGNATURE) from None


def verify_envelope(
    data: bytes,
    *,
    signer: VerifiedIdentity,
    attestation: bytes,
    disclosures: Mapping[str, Disclosure] | None = None,
) -> VerifiedRecord:
    """Verify a record submitted as envelope bytes: it decodes in canonical form, names
    `signer` and the key `attestation` attests, the key could sign at the record's time, the
    signature verifies, and every disclosure matches its commitment."""
    return _verify(data, signer, attestation, disclosures, retired=True)


def verify_listed_envelope(
    data: bytes,
    *,
    signer: VerifiedIdentity,
    attestation: bytes,
    disclosures: Mapping[str, Disclosure] | None = None,
) -> VerifiedRecord:
    """`verify_envelope` but for the time the key's change was followed, not checked: for the
    trace outbox only, a row a rotation's ticket lists (in node.db while its key was current:
    troth.trace.outbox_tickets.verify_queued; review 73e, tickets4 1). troth.trace does not
    export it: a verifier of records it is sent never skips the retirement (review 73i,
    listed 1: `verify_envelope(retired=False)` did)."""
    return _verify(data, signer, attestation, disclosures, retired=False)


def _verify(
    data: bytes,
    signer: VerifiedIdentity,
    attestation: bytes,
    disclosures: Mapping[str, Disclosure] | None,
    *,
    retired: bool,
) -> VerifiedRecord:
    record, payload, signature, keyid = open_envelope(data)
    if record.agent != signer.identifier:
        raise TraceError(_F.SIGNER_INVALID, "the record names another agent", record=record.id)
    if keyid != keyid_of(attestation):
        raise TraceError(_F.UNKNOWN_KEY, "the attestation given is not the record's key")
    epoch = resolve_key(signer, attestation)
    epoch = epoch if retired else replace(epoch, retired_at=None)
    epoch.check_time(record.time)
    check_signature(epoch, payload, signature)
    given = dict(disclosures or {})
    total = sum(len(disclosure.value) for disclosure in given.values())
    if total > limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES:  # its proof would be over a service
        # answer (review 47b, limits 1)
        raise _over_disclosed(record.id)
    for name, disclosure in given.items():  # as exports carry it (Disclosure.from_json)
        if not is_canonical_value(disclosure.value):
            raise TraceError(
                _F.MALFORMED, f"{name}: not the canonical JSON of a value", record=record.id
            )
    check_disclosures(record, given)
    envelope = bytes(data)
    return VerifiedRecord(
        record,
        envelope,
        sha256(payload),
        leaf_hash(envelope),
        signer,
        attestation,
        epoch,
        given,
        encode_disclosures(given),
        _VERIFIED,
    )


def _over_disclosed(record: str | None) -> TraceError:
    return TraceError(
        _F.OVER_LIMIT,
        f"its disclosed values together are over {limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES} "
        "bytes (MAX_TRACE_RECORD_DISCLOSURE_BYTES: its proof must fit a service answer)",
        record=record,
    )


def check_disclosures(record: TraceRecord, disclosures: Mapping[str, Disclosure]) -> None:
    """Raise TraceError(DISCLOSURE_MISMATCH) unless every disclosure opens its commitment."""
    for name, disclosure in disclosures.items():
        digest = record.digests.get(name)
        if digest is None or commitment(name, disclosure) != digest:
            raise TraceError(_F.DISCLOSURE_MISMATCH, name, record=record.id)
