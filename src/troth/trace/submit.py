"""What an agent sends a node's trace service, and what it answers (docs/protocols.md, "Trace
service"). Sans-IO: values in, values out.

A submission is the arguments of `trace.submit` (CBOR, inside the service request):

    ["troth.trace.submit", 1, history, [attestation, ...], [chain, ...],
     [[envelope, {field: [salt, value]}], ...]]

`history` is the signer's change history (the records' agent: in full, or from a checkpoint
past 64 changes); each attestation is a signing-key attestation some record's keyid names
(SHA-256 of it); each chain a delegation chain some record names (by its SHA-256), sent once
per batch; each record its exact DSSE envelope bytes and its disclosures (field -> 16-byte
salt and the canonical JSON committed to).

Version 2 is version 1 with a seventh field, `[window, ...]` (1 to MAX_TRACE_SUBMIT_WINDOWS):
the signer's older histories that bridge the log's copy of it to `history`, oldest first (an
agent that rotated 64 times or more since its last record there; review 47l, windows 1). A
submission without windows is encoded as version 1, byte for byte as before; a service that
knows only version 1 refuses a version 2 one as not a submission.

The answer (`Receipts`):

    ["troth.trace.receipts", 1, [result, ...], head, checkpoint]

    result      [0, index]             appended at log index `index`
              | [1, index]             already in the log at `index`, byte for byte (a retry)
              | [2, reason, detail]    refused (reason: a TraceFailure value; detail: at
                                       most MAX_TRACE_REFUSAL_DETAIL characters, longer
                                       ones are cut by the receiver)
    head        null | [seq, hash, time]   the signer's last record in the log
    checkpoint  null | [size, note]        the newest signed checkpoint (C2SP note): records
                                            below `size` are covered, later ones by the next
                                            (`trace.prove RECORD_ID` returns a proof bundle)

A refusal is for good, or for now (review 48n): `not accepted yet` (TraceFailure.NOT_YET,
`TRANSIENT`) says a passing condition on the node refused the record (its copy of a feed
not fresh, a checkpoint it cannot attest yet, a change dated ahead of its clock), and the
client sends it again later as signed; a batch refused whole for one answers it for every
record. `RESIGNED` refusals (troth.trace.batcher) have it signed again; any other is for good
(the record could never be accepted as signed: a bad signature, another agent's record, a
revoked signer). The reason travels as every other's text, so the wire is unchanged: a client
of before review 48n takes it for an unknown reason (`malformed`) and sets the record aside,
as it did when the node said `signer identity invalid` or `delegation chain does not verify`
for those conditions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, TraceError, TraceFailure
from troth.trace.record import REDACTABLE, Disclosure

__all__ = [
    "RECEIPTS_TYPE",
    "SUBMIT_TYPE",
    "TRANSIENT",
    "VERSION",
    "WINDOWS_VERSION",
    "Head",
    "Receipts",
    "Status",
    "Submission",
    "SubmitResult",
    "SubmittedRecord",
    "item_size",
    "windows_size",
]

SUBMIT_TYPE: Final = "troth.trace.submit"
RECEIPTS_TYPE: Final = "troth.trace.receipts"
VERSION: Final = 1
WINDOWS_VERSION: Final = 2
"""The submission version that carries history windows (its seventh field)."""
_REASONS: Final = {reason.value: reason for reason in TraceFailure}
TRANSIENT: Final = frozenset({TraceFailure.NOT_YET})
"""Refusals for now: the record is sent again, as signed, after a backoff (module
docstring)."""
_OVERHEAD: Final = 64  # the request's header, the submission's header and array heads


@dataclass(frozen=True, slots=True)
class SubmittedRecord:
    """One record of a submission: its envelope bytes and its disclosures."""

    envelope: bytes
    disclosures: Mapping[str, Disclosure] = field(default_factory=dict)

    def to_cbor(self) -> list[Any]:
        shown = {name: [d.salt, d.value] for name, d in self.disclosures.items()}
        return [self.envelope, shown]


def item_size(record: SubmittedRecord) -> int:
    """An upper bound of the bytes `record` adds to a submission (for packing batches)."""
    size = len(record.envelope) + 16
    for name, disclosure in record.disclosures.items():
        size += len(name) + len(disclosure.value) + 32
    return size


@dataclass(frozen=True, slots=True)
class Submission:
    """A batch of one signer's records (see the module docstring)."""

    history: bytes
    attestations: tuple[bytes, ...]
    chains: tuple[bytes, ...]
    records: tuple[SubmittedRecord, ...]
    windows: tuple[bytes, ...] = ()
    """The signer's older histories bridging the log's copy of it to `history`, oldest first
    (version 2; none: version 1)."""

    def to_cbor(self) -> list[Any]:
        fields = [
            SUBMIT_TYPE,
            WINDOWS_VERSION if self.windows else VERSION,
            self.history,
            list(self.attestations),
            list(self.chains),
            [record.to_cbor() for record in self.records],
        ]
        return [*fields, list(self.windows)] if self.windows else fields

    def size(self) -> int:
        """An upper bound of the submission's encoded size."""
        fixed = len(self.history) + sum(len(a) + 8 for a in self.attestations)
        fixed += sum(len(c) + 8 for c in self.chains) + windows_size(self.windows)
        return _OVERHEAD + fixed + sum(item_size(r) for r in self.records)

    @classmethod
    def from_cbor(cls, value: Any) -> Submission:
        """Decode `trace.submit` arguments (DecodeError for anything else)."""
        fields = cbor.expect_array(value, "submission")
        if len(fields) not in (6, 7):
            raise DecodeError(f"submission: expected 6 elements (7: windows), got {len(fields)}")
        version = WINDOWS_VERSION if len(fields) == 7 else VERSION
        cbor.expect_header(fields, SUBMIT_TYPE, version, "submission")
        history = cbor.expect_bytes(fields[2], "history")
        if len(history) > limits.MAX_IDENTITY_HISTORY_BYTES:
            raise DecodeError("history: over the limit", DecodeProblem.OVER_LIMIT)
        windows: tuple[bytes, ...] = ()
        if version == WINDOWS_VERSION:
            given = _bounded(fields[6], "windows", limits.MAX_TRACE_SUBMIT_WINDOWS, 1)
            windows = tuple(cbor.expect_bytes(w, "window") for w in given)
            if any(len(window) > limits.MAX_IDENTITY_HISTORY_BYTES for window in windows):
                raise DecodeError("window: over the limit", DecodeProblem.OVER_LIMIT)
        attestations = _bounded(fields[3], "attestations", limits.MAX_TRACE_SUBMIT_KEYS, 1)
        chains = _bounded(fields[4], "chains", limits.MAX_TRACE_SUBMIT_CHAINS, 0)
        keys = tuple(cbor.expect_bytes(a, "attestation") for a in attestations)
        kept = tuple(cbor.expect_bytes(c, "chain") for c in chains)
        if any(len(chain) > limits.MAX_CHAIN_BYTES for chain in kept):
            raise DecodeError("chain: over the limit", DecodeProblem.OVER_LIMIT)
        items = _bounded(fields[5], "records", limits.MAX_TRACE_SUBMIT_RECORDS, 1)
        return cls(history, keys, kept, tuple(_record(item) for item in items), windows)


def windows_size(windows: tuple[bytes, ...]) -> int:
    """An upper bound of the bytes `windows` add to a submission (its seventh field)."""
    return sum(len(window) + 8 for window in windows)


def _bounded(value: Any, what: str, most: int, least: int) -> list[Any]:
    items = cbor.expect_array(value, what)
    if not least <= len(items) <= most:  # past `most`: over a limit (review 54b, decoders 3)
        problem = DecodeProblem.OVER_LIMIT if len(items) > most else DecodeProblem.MALFORMED
        raise DecodeError(f"{what}: {least} to {most}, got {len(items)}", problem)
    return items


def _record(value: Any) -> SubmittedRecord:
    envelope, shown = cbor.expect_array(value, "record", 2)
    envelope = cbor.expect_bytes(envelope, "envelope")
    if len(envelope) > limits.MAX_TRACE_ENVELOPE_BYTES:
        raise DecodeError("envelope: over the limit", DecodeProblem.OVER_LIMIT)
    if type(shown) is not dict or not set(shown) <= set(REDACTABLE):
        raise DecodeError(f"disclosures: a map of fields among {REDACTABLE}")
    disclosures = {}
    for name, pair in shown.items():
        salt, data = cbor.expect_array(pair, f"disclosure {name}", 2)
        try:
            disclosures[name] = Disclosure(
                cbor.expect_bytes(salt, "salt", 16), cbor.expect_bytes(data, "value")
            )
        except ValueError as exc:
            raise DecodeError(f"disclosure {name}: {exc}") from None
    return SubmittedRecord(envelope, disclosures)


# -- the answer ---------------------------------------------------------------------------------


class Status(enum.IntEnum):
    """What became of one submitted record."""

    APPENDED = 0
    ALREADY = 1  # in the log at that index, byte for byte: an earlier send of the same record
    # (or that record signed again, verified as an append: reviews 70o, 70s)
    REFUSED = 2


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """One record's outcome: its index (appended, or already there) or why it was refused."""

    status: Status
    index: int | None = None
    reason: TraceFailure | None = None
    detail: str = ""

    @property
    def delivered(self) -> bool:
        """Whether the record is in the log (this time or before)."""
        return self.status is not Status.REFUSED

    @property
    def transient(self) -> bool:
        """Whether the record was refused for now (`TRANSIENT`: send it again later)."""
        return self.status is Status.REFUSED and self.reason in TRANSIENT

    def error(self, record: str | None = None) -> TraceError:
        """The refusal as a TraceError (for a refused record)."""
        return TraceError(self.reason or TraceFailure.MALFORMED, self.detail, record=record)

    def to_cbor(self) -> list[Any]:
        if self.status is Status.REFUSED:
            reason = (self.reason or TraceFailure.MALFORMED).value
            return [int(self.status), reason, self.detail[: limits.MAX_TRACE_REFUSAL_DETAIL]]
        return [int(self.status), self.index]

    @classmethod
    def from_cbor(cls, value: Any) -> SubmitResult:
        fields = cbor.expect_array(value, "result")
        status = cbor.expect_int(fields[0] if fields else None, "status")
        if status == Status.REFUSED and len(fields) == 3:
            reason = _REASONS.get(cbor.expect_text(fields[1], "reason"), TraceFailure.MALFORMED)
            detail = cbor.expect_text(fields[2], "detail")[: limits.MAX_TRACE_REFUSAL_DETAIL]
            return cls(Status.REFUSED, reason=reason, detail=detail)
        if status in (Status.APPENDED, Status.ALREADY) and len(fields) == 2:
            return cls(Status(status), cbor.expect_int(fields[1], "index"))
        raise DecodeError("result: [0|1, index] or [2, reason, detail]")


@dataclass(frozen=True, slots=True)
class Head:
    """An agent's last record in the log: its seq, hash and time."""

    seq: int
    hash: bytes
    time: int

    def to_cbor(self) -> list[Any]:
        return [self.seq, self.hash, self.time]

    @classmethod
    def from_cbor(cls, value: Any) -> Head | None:
        if value is None:
            return None
        seq, digest, time = cbor.expect_array(value, "head", 3)
        return cls(
            cbor.expect_int(seq, "seq"),
            cbor.expect_bytes(digest, "hash", 32),
            cbor.expect_int(time, "time"),
        )


@dataclass(frozen=True, slots=True)
class Receipts:
    """The answer to a submission: one result per record in order, the signer's head after
    it, and a reference to the newest checkpoint."""

    results: tuple[SubmitResult, ...]
    head: Head | None
    checkpoint: tuple[int, bytes] | None = None

    def to_cbor(self) -> list[Any]:
        return [
            RECEIPTS_TYPE,
            VERSION,
            [result.to_cbor() for result in self.results],
            None if self.head is None else self.head.to_cbor(),
            None if self.checkpoint is None else list(self.checkpoint),
        ]

    @classmethod
    def from_cbor(cls, value: Any, *, expected: int) -> Receipts:
        """Decode an answer to a submission of `expected` records (DecodeError otherwise)."""
        fields = cbor.expect_array(value, "receipts", 5)
        cbor.expect_header(fields, RECEIPTS_TYPE, VERSION, "receipts")
        results = tuple(SubmitResult.from_cbor(r) for r in cbor.expect_array(fields[2], "results"))
        if len(results) != expected:
            raise DecodeError(f"receipts: {len(results)} results for {expected} records")
        checkpoint = None
        if fields[4] is not None:
            size, note = cbor.expect_array(fields[4], "checkpoint", 2)
            checkpoint = (cbor.expect_int(size, "size"), cbor.expect_bytes(note, "note"))
        return cls(results, Head.from_cbor(fields[3]), checkpoint)
