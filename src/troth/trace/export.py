"""Offline proof bundles and JSONL evaluation sets (docs/traces.md, "The pieces").

A proof bundle is one JSON object that proves one record with nothing else at hand:

    {"type": "troth.trace.proof", "version": 1, "index": n,
     "envelope": the DSSE envelope's exact text (the log leaf), "record": its payload (to read),
     "disclosures": {field: {"salt", "value"}} (what was not redacted),
     "proof": [hex, ...] (RFC 9162 inclusion proof in the checkpoint's tree),
     "checkpoint": the checkpoint note,
     "signer": {"history": base64, "attestation": base64,
                "windows": [base64, ...], "at": n (version 2 only)},
     "log": {"history": base64, "attestations": [base64, ...]},
     "chain": base64 (the delegation chain the record names, when kept "at log": required)}

Version 2 (review 47o, bundles 1) adds the signer's `windows`: for a record signed under an
older window of its agent's history the log keeps (an agent past 64 changes), the log's
windows that link that history (its place among them: `at`) forward to the agent's newest
history the log holds and back towards change 0, at most MAX_TRACE_PROOF_WINDOWS, so that a
verifier whose copy of the agent moved past the record's history, or that holds none, still
verifies it (`_linked`). A bundle that needs none is version 1, as before; both are read.

`troth trace export --format jsonl` writes one bundle per line, all against one checkpoint, so
each line verifies alone (shuffled, filtered) and the file as a whole also checks the agents'
chains where consecutive records are present.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol

from troth import limits
from troth.crypto import sha256
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, NotFound, TraceError, TraceFailure
from troth.identity import (
    Checkpoints,
    Identifier,
    PurposeKeyAttestation,
    VerifiedIdentity,
    indexed_hashes,
)
from troth.trace.backdating import check_after_kept
from troth.trace.chain_signed import IssuerCheck, check_chain_signed
from troth.trace.checkpoint import (
    AnchorStatus,
    Checkpoint,
    judge_line_kept,
    note_key_id,
    parse_checkpoint,
    parse_kept,
    verify_checkpoint,
)
from troth.trace.export_check import ExportReport, LineFound, check_export
from troth.trace.export_lines import readable_is_payload
from troth.trace.export_memo import ExportMemo, Judged, checkpoint_key, signer_key
from troth.trace.export_tree import DiskTree
from troth.trace.links import chain_retired, link_windows, verify_linked
from troth.trace.log import TraceLog
from troth.trace.merkle import Frontier, leaf_hash, prefix_root, verify_inclusion
from troth.trace.record import Disclosure, TraceRecord, disclosure_value
from troth.trace.signing import (
    KeyEpoch,
    check_disclosures,
    check_signature,
    keyid_of,
    open_envelope,
)
from troth.trace.stored import windows_of
from troth.trace.verify import (
    Known,
    Rows,
    check_chain,
    check_checkpoint_time,
    newest_view,
    verify_identity,
)

__all__ = [
    "BUNDLE_TYPE",
    "BundleReport",
    "ExportReport",
    "bundle_text",
    "export_bundles",
    "export_jsonl",
    "hashed_checkpoint",
    "prove",
    "verify_bundle",
    "verify_export",
]

BUNDLE_TYPE: Final = "troth.trace.proof"
_VERSION: Final = 1
_WINDOWED: Final = 2  # the version of a bundle whose signer part carries windows
_F = TraceFailure


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Bundler:
    """Builds bundles of one log against one checkpoint. It reads only the rows the records it
    bundles need, each once (a signer's history and windows, a key's attestation, the log's
    own): proving one record reads no other agent's (review 34g, trace 2)."""

    def __init__(self, log: TraceLog, checkpoint: Checkpoint) -> None:
        self.log = log
        self.checkpoint = checkpoint
        self._histories: dict[Identifier, bytes | None] = {}
        self._attestations: dict[str, bytes | None] = {}
        self._signer_history: dict[str, bytes] = {}
        self._windows: dict[Identifier, list[bytes]] = {}
        self._links: dict[tuple[Identifier, bytes], tuple[list[bytes], int] | None] = {}
        log_identity = log.log_identity
        log_history = self._newest(log_identity)
        if log_history is None:  # a crafted log: named, as `verify_log` does (review 28b,
            # export 1)
            raise TraceError(_F.MISSING_HISTORY, f"the log's own, {log_identity}")
        self.log_part = {
            "history": _b64(log_history),
            "attestations": [_b64(a) for a in _signing(log, log_identity, checkpoint)],
        }

    def _newest(self, agent: Identifier) -> bytes | None:
        if agent not in self._histories:
            self._histories[agent] = self.log.history(agent)
        return self._histories[agent]

    def bundle(
        self, index: int, envelope: bytes, disclosures: dict[str, Disclosure], proof: list[bytes]
    ) -> dict[str, Any]:
        record, payload, _signature, keyid = open_envelope(envelope)
        signer = self._signer(index, record, keyid)
        value: dict[str, Any] = {
            "type": BUNDLE_TYPE,
            "version": _WINDOWED if "windows" in signer else _VERSION,
            "index": index,
            "envelope": envelope.decode("ascii"),
            "record": json.loads(payload),
            "disclosures": _disclosed(index, record.id, disclosures),
            "proof": [p.hex() for p in proof],
            "checkpoint": self.checkpoint.note.decode(),
            "signer": signer,
            "log": self.log_part,
        }
        if record.authority is not None:
            chain = self.log.chain(record.authority.chain)
            if chain is not None:
                value["chain"] = _b64(chain)
        return value

    def _signer(self, index: int, record: TraceRecord, keyid: str) -> dict[str, Any]:
        """The bundle's signer part, with the windows that link its history (`_link`); a row
        the log does not keep (a crafted log) is named at its record, as `verify_log` names it
        (MISSING_HISTORY, UNKNOWN_KEY), never a KeyError (review 28b, export 1)."""
        try:
            history = self._history(record.agent, keyid)
            part: dict[str, Any] = {
                "history": _b64(history),
                "attestation": _b64(self._attestation(keyid)),
            }
        except TraceError as exc:
            raise exc.located(index=index, record=record.id) from None
        linked = self._link(record.agent, history)
        if linked is not None:
            part["windows"] = [_b64(w) for w in linked[0]]
            part["at"] = linked[1]
        return part

    def _link(self, agent: Identifier, history: bytes) -> tuple[list[bytes], int] | None:
        """(the windows, oldest first, the place of `history` among them) that link `history`
        forward to the agent's newest history the log holds and back towards its change 0, of
        the log's windows of the agent (`history_windows`; review 47o, bundles 1): each starts
        at a change the one before holds, agrees with it there and ends later (the newest may
        end where the last does), as `check_windows` (the verifier's check) asks. Back, as far
        as the log's windows go (a verifier's stored copy may attest where they stop); None
        when none is needed, or no chain of them reaches the newest, or it takes more than
        MAX_TRACE_PROOF_WINDOWS (the bundle is then version 1: verified where the verifier's
        copy of the agent still holds the history, refused elsewhere, as before); the windows
        back nearest the history are kept within it first."""
        key = (agent, history)
        if key not in self._links:
            if agent not in self._windows:
                self._windows[agent] = windows_of(self.log.store, agent)
            found = link_windows(history, self._windows[agent], self._newest(agent))
            self._links[key] = found
        return self._links[key]

    def _attestation(self, keyid: str) -> bytes:
        if keyid not in self._attestations:
            self._attestations[keyid] = self.log.attestation(keyid)
        attestation = self._attestations[keyid]
        if attestation is None:
            raise TraceError(_F.UNKNOWN_KEY, keyid)
        return attestation

    def _history(self, agent: Identifier, keyid: str) -> bytes:
        """The agent's history to bundle with a record signed by `keyid`: the newest one the
        log kept, else an older window that holds the change the key was attested under and
        the one after it (which says when the key retired), else those two from the node's own
        rows. A key no history shows retired (a window ending at its change) is refused: the
        bundle would present it as current."""
        found = self._signer_history.get(keyid)
        if found is None:
            newest = self._newest(agent)
            if newest is None:
                raise TraceError(_F.MISSING_HISTORY, str(agent))
            made_under = PurposeKeyAttestation.decode(self._attestation(keyid)).change_hash
            candidates = [newest, *reversed(windows_of(self.log.store, agent))]
            holding = [h for h in candidates if made_under in indexed_hashes(h)[1]]
            retiring = [h for h in holding if h is newest or indexed_hashes(h)[1][-1] != made_under]
            bridge = self.log.bridge
            rows = None if retiring or bridge is None else bridge.around(agent.digest, made_under)
            if not retiring and rows is None and holding:
                raise TraceError(
                    _F.ATTESTATION_INVALID,
                    f"key {keyid}: no history the log kept shows when it retired",
                )
            found = self._signer_history[keyid] = (retiring or [rows or newest])[0]
        return found


def _disclosed(index: int, record_id: str, disclosures: dict[str, Disclosure]) -> dict[str, Any]:
    """A record's stored disclosures as its bundle carries them; TraceError MALFORMED, located,
    for one whose value is not I-JSON (a crafted or damaged log: a value nested past the
    parser, an integer past 2**53, NaN, a duplicate name; review 54d, json 1)."""
    shown = {}
    for name, disclosure in sorted(disclosures.items()):
        try:
            shown[name] = disclosure.to_json()
        except DecodeError as exc:
            raise TraceError(
                _F.MALFORMED, f"the stored disclosure {name}: {exc}", index=index, record=record_id
            ) from None
    return shown


def _signing(log: TraceLog, identity: Identifier, checkpoint: Checkpoint) -> list[bytes]:
    """The log's attestations of the key(s) whose signature the checkpoint note carries (one
    each): all it ever kept grew a bundle by one per renewal of its key, without bound (review
    47b, limits 1: MAX_TRACE_PROOF_OVERHEAD counts one)."""
    origin = checkpoint.origin
    signed = {key for name, key, _ in parse_checkpoint(checkpoint.note)[1] if name == origin}
    found: dict[bytes, bytes] = {}
    for attestation in log.attestations_of(identity):
        try:
            decoded = PurposeKeyAttestation.decode(attestation)
        except DecodeError:
            continue
        key = note_key_id(origin, decoded.key)
        if decoded.identifier == identity and key in signed:
            found.setdefault(key, attestation)
    return list(found.values())


def prove(log: TraceLog, record_id: str, agent: Identifier | None = None) -> dict[str, Any]:
    """The offline proof bundle of record `record_id` of `agent` (ids are unique per agent;
    without `agent`, of the one record under that id: `TraceLog.find`), against the newest
    checkpoint covering it (one is signed when none does)."""
    stored = log.find(record_id, agent)
    if stored.index < 0:  # a crafted log: named as `verify_log` and `export_jsonl` name it, not
        # a ValueError from the tree (review 29b, prove 1; past the size, the log names it)
        raise TraceError(
            _F.MALFORMED, "not an index of the log's", index=stored.index, record=record_id
        )
    try:
        checkpoint = log.latest_checkpoint(covering=stored.index + 1)
    except NotFound:
        checkpoint = log.checkpoint()
    proof = log.inclusion_proof(stored.index, checkpoint.size)
    bundler = _Bundler(log, checkpoint)
    disclosures = log.disclosures(record_id, agent)
    return bundler.bundle(stored.index, stored.envelope, disclosures, proof)


def export_jsonl(log: TraceLog, out: IO[str], *, agent: Identifier | None = None) -> Checkpoint:
    """Write every record (of `agent`, or all) as one proof bundle per line, against a fresh
    checkpoint of the whole log. Refuses (TraceError) a log whose records do not hash to it."""
    checkpoint, bundles = export_bundles(log, agent=agent)
    for bundle in bundles:
        out.write(bundle_text(bundle) + "\n")
    return checkpoint


def export_bundles(
    log: TraceLog, *, agent: Identifier | None = None
) -> tuple[Checkpoint, Iterator[dict[str, Any]]]:
    """A fresh checkpoint of the whole log (TraceError, before any bundle, for a log whose
    records do not hash to it), and the proof bundle of every record (of `agent`, or all)
    against it, one by one: the lines of `export_jsonl`."""
    checkpoint = log.checkpoint()
    tree = DiskTree()  # on disk: ~150 bytes a record in memory (review 55e, exports 2)
    try:
        _hash_into(log, checkpoint, tree)
        bundler = _Bundler(log, checkpoint)
    except BaseException:
        tree.close()
        raise

    def bundles() -> Iterator[dict[str, Any]]:
        with tree:
            for entry in log.stored():
                if entry.index >= checkpoint.size:
                    break
                if agent is not None and open_envelope(entry.envelope)[0].agent != agent:
                    continue
                proof = tree.inclusion_proof(entry.index)
                yield bundler.bundle(entry.index, entry.envelope, entry.disclosures(), proof)

    return checkpoint, bundles()


class _Leaves(Protocol):
    """A tree leaf hashes are appended to (`DiskTree`, `Frontier`)."""

    @property
    def size(self) -> int: ...

    def append(self, leaf: bytes, /) -> object: ...

    def root(self) -> bytes: ...


def _hash_into(log: TraceLog, checkpoint: Checkpoint, tree: _Leaves) -> None:
    """Append the leaf hash of each stored record `checkpoint` covers to `tree`; TraceError
    when they do not hash to it."""
    for entry in log.stored():
        if entry.index >= checkpoint.size:
            break
        if entry.index != tree.size:  # a gap (a crafted file): named as `verify_log` names
            # it, not a tree asked for leaves it lacks (review 28b, export 2)
            raise TraceError(_F.MALFORMED, f"expected record {tree.size} next", index=entry.index)
        tree.append(leaf_hash(entry.envelope))
    if tree.size != checkpoint.size:
        raise TraceError(
            _F.MALFORMED, f"the log holds {tree.size} records, its checkpoint {checkpoint.size}"
        )
    if tree.root() != checkpoint.root:
        raise TraceError(_F.ROOT_MISMATCH, "the stored records do not hash to the checkpoint")


def hashed_checkpoint(log: TraceLog) -> Checkpoint:
    """A fresh checkpoint of the whole log, once its stored records hash to it (TraceError
    otherwise: `export_bundles`'s check, kept in O(log n) memory): what an export checks
    before it sends a record (review 62b, traces 4: the OTel export sent an edited log's)."""
    checkpoint = log.checkpoint()
    _hash_into(log, checkpoint, Frontier())
    return checkpoint


def bundle_text(bundle: dict[str, Any], *, lines: bool = False) -> str:
    """A proof bundle as the JSON text written: UTF-8, not `\\u00fc`-style escapes (which make a
    non-ASCII character up to 6 bytes), each value compact, each disclosed value the canonical
    JSON committed to (what a verifier recomputes; Python's own number form is longer, `1e-07`
    for `1e-7`) — so a record at its limits makes a bundle within MAX_TRACE_RECORD_DISCLOSURE_BYTES
    + MAX_TRACE_PROOF_OVERHEAD, a service answer (review 47b, limits 1), and within
    MAX_TRACE_LINE_BYTES, which verifiers read. An export line is one line; `troth trace
    prove`'s file (`lines`) puts each top-level field on a line of its own (a few dozen bytes
    more: indenting the values would put every element of an array disclosure on an indented
    line, past the bound)."""
    fields = [(_compact(key), _value_text(key, value)) for key, value in bundle.items()]
    if not lines:
        return "{" + ",".join(f"{key}:{value}" for key, value in fields) + "}"
    return "{\n" + ",\n".join(f"  {key}: {value}" for key, value in fields) + "\n}"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _value_text(key: str, value: Any) -> str:
    """A bundle's top-level value as written: the disclosures' values canonical."""
    if key != "disclosures" or type(value) is not dict:
        return _compact(value)
    members = []
    for name, disclosure in value.items():
        if type(disclosure) is not dict or set(disclosure) != {"salt", "value"}:
            members.append(f"{_compact(name)}:{_compact(disclosure)}")
            continue
        try:
            shown = disclosure_value(disclosure["value"]).decode()
        except (ValueError, RecursionError):  # not one a log holds: as it is
            shown = _compact(disclosure["value"])
        salt = _compact(disclosure["salt"])
        members.append(f'{_compact(name)}:{{"salt":{salt},"value":{shown}}}')
    return "{" + ",".join(members) + "}"


# -- verification -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleReport:
    """A verified proof bundle: the record, where it is, and the checkpoint's standing."""

    record: TraceRecord
    index: int
    hash: bytes
    checkpoint: Checkpoint
    status: AnchorStatus
    disclosed: tuple[str, ...]
    key_change: int = 0
    """The change of the signer's history its key was attested under (`KeyEpoch.change`)."""
    anchor: Checkpoint | None = None
    """The checkpoint the verifier kept that the bundle's is (VALID), parsed; else None."""
    chain_elsewhere: bool = False
    """The record names a delegation chain kept elsewhere than "at log", which the bundle does
    not carry: not checked (review 75e, traceverify 2: the answer did not say so)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.status is AnchorStatus.VALID,  # unanchored is not valid
            "verified": True,  # every signature, chain and proof checked
            "status": self.status.value,
            "index": self.index,
            "record": self.record.id,
            "agent": str(self.record.agent),
            "kind": self.record.kind.value,
            "disclosed": list(self.disclosed),
            "checkpoint": self.checkpoint.summary(),
            "anchor": None if self.anchor is None else self.anchor.summary(),
            "chains_elsewhere": int(self.chain_elsewhere),
        }


def _field(value: dict[str, Any], name: str, kind: type) -> Any:
    item = value.get(name)
    if type(item) is not kind:
        raise TraceError(_F.MALFORMED, f"bundle {name}: not a {kind.__name__}")
    return item


def _unb64(text: Any, what: str) -> bytes:
    if type(text) is not str:
        raise TraceError(_F.MALFORMED, f"bundle {what}: not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TraceError(_F.MALFORMED, f"bundle {what}: not base64") from None


def _proof(value: Any) -> list[bytes]:
    if (
        type(value) is not list
        or len(value) > limits.MAX_TRACE_PROOF_HASHES
        or any(type(h) is not str for h in value)
    ):
        raise TraceError(_F.MALFORMED, "bundle proof: not a list of hex hashes")
    try:
        return [bytes.fromhex(h) for h in value]
    except ValueError:
        raise TraceError(_F.MALFORMED, "bundle proof: not hex") from None


def verify_bundle(
    data: bytes | dict[str, Any],
    *,
    anchor: bytes | None = None,
    known: Known | None = None,
    checkpoints: Checkpoints | None = None,
    rows: Rows | None = None,
    issuers: IssuerCheck | None = None,
) -> BundleReport:
    """Verify a proof bundle (or one JSONL line) with nothing but its bytes: the signer's and
    the log's histories, the record's key at its time, signature, disclosures, chain, the
    inclusion proof and the checkpoint's signature. With `anchor` (a checkpoint note the
    verifier kept), the checkpoint must be that one, or a larger one of its log that the
    record, the kept size's last, shows grew from it (VALID; review 63s, traces 1: else
    INCONSISTENT), or the answer is UNANCHORED; a kept note that is none is refused as such
    first (review 51g, kept 1). `issuers`: a node's
    check of the chain's issuer histories against its copies (`check_issuers`). A dict is
    taken as the value parsed: its numbers are the values checked (the bytes' I-JSON and
    exact-number checks, `load_json`, are the caller's who parsed it; review 75h)."""
    if anchor is not None:
        parse_kept(anchor)
    return _verify_line(data, anchor, known, checkpoints, rows, issuers=issuers)[0]


def _linked(
    agent: Identifier,
    history: bytes,
    signer: dict[str, Any],
    known: Known | None,
    checkpoints: Checkpoints | None,
) -> tuple[VerifiedIdentity, list[VerifiedIdentity]]:
    """The signer's `history` and its chain (it and the windows, oldest first), by the windows
    a version 2 bundle carries (`verify_linked`; review 47o, bundles 1)."""
    entries, at = signer.get("windows"), signer.get("at")
    if (
        type(entries) is not list
        or not 0 < len(entries) <= limits.MAX_TRACE_PROOF_WINDOWS
        or type(at) is not int
        or not 0 <= at <= len(entries)
    ):
        raise TraceError(
            _F.MALFORMED,
            f"bundle signer windows: not 1 to {limits.MAX_TRACE_PROOF_WINDOWS} histories with "
            "the history's place among them",
        )
    windows = [_unb64(entry, "signer window") for entry in entries]
    return verify_linked(agent, [*windows[:at], history, *windows[at:]], at, known, checkpoints)


def _judged(
    record: TraceRecord,
    history: bytes,
    attestation: bytes,
    signer: dict[str, Any],
    windowed: bool,
    verifier: tuple[Known | None, Checkpoints | None, Rows | None],
    memo: ExportMemo | None,
) -> Judged:
    """A line's signer judged (its history, with the windows a version 2 bundle carries,
    `_linked`) and the record's key by the newest the verifier knows (`newest_view`) and the
    chain the line carries (`chain_retired`; review 47r, bundles 2); once per export for the
    lines that carry the same (`memo`; review 55e, exports 1)."""
    key = None if memo is None else signer_key(record.agent, history, attestation, windowed, signer)
    found = None if memo is None or key is None else memo.signers.get(key)
    if found is not None:
        return found
    known, checkpoints, rows = verifier
    if windowed:
        identity, carried = _linked(record.agent, history, signer, known, checkpoints)
    else:
        identity = verify_identity(record.agent, history, known, checkpoints)
        carried = [identity]
    epoch = newest_view(record.agent, attestation, identity, rows, known, checkpoints)
    judged = (identity, carried, chain_retired(epoch, identity, carried))
    return judged if memo is None or key is None else memo.signers.put(key, judged)


def _verify_line(
    data: bytes | dict[str, Any],
    anchor: bytes | None,
    known: Known | None,
    checkpoints: Checkpoints | None,
    rows: Rows | None,
    memo: ExportMemo | None = None,
    issuers: IssuerCheck | None = None,
) -> tuple[BundleReport, VerifiedIdentity, bytes, list[VerifiedIdentity]]:
    """`verify_bundle`, and the signer's identity (the history the line carries) and key
    attestation it judged the record by, and the histories of the signer it carries (that one,
    and its windows, oldest first: the newest last); `memo`: what the export's lines before
    it verified (`_judged`, `_checkpoint`)."""
    if isinstance(data, bytes | bytearray):
        try:
            value = load_json(  # its disclosures' numbers as they read (75e, traceverify 3)
                bytes(data),
                max_bytes=limits.MAX_TRACE_LINE_BYTES,
                what="bundle",
                exact_numbers=True,
            )
        except DecodeError as exc:
            raise TraceError(_F.MALFORMED, str(exc)) from None
    else:
        value = data
    if type(value) is not dict or value.get("type") != BUNDLE_TYPE:
        raise TraceError(_F.UNKNOWN_TYPE, "not a troth trace proof bundle")
    version = value.get("version")
    if type(version) is not int or version not in (_VERSION, _WINDOWED):
        raise TraceError(_F.UNKNOWN_VERSION, repr(version))
    index = _field(value, "index", int)
    record: TraceRecord | None = None
    try:
        envelope = _field(value, "envelope", str).encode("utf-8")
        record, payload, signature, keyid = open_envelope(envelope)
        if not readable_is_payload(value.get("record"), payload):  # review 48b, exports 1
            raise TraceError(_F.MALFORMED, "the readable record is not the signed one")
        signer = _field(value, "signer", dict)
        attestation = _unb64(signer.get("attestation"), "signer attestation")
        if keyid_of(attestation) != keyid:
            raise TraceError(_F.UNKNOWN_KEY, "the bundle's attestation is not the record's key")
        history = _unb64(signer.get("history"), "signer history")
        verifier = (known, checkpoints, rows)
        windowed = version == _WINDOWED
        identity, carried, epoch = _judged(
            record, history, attestation, signer, windowed, verifier, memo
        )
        epoch.check_time(record.time)
        check_signature(epoch, payload, signature)
        disclosures = _disclosures(_field(value, "disclosures", dict))
        check_disclosures(record, disclosures)
        if record.authority is not None and "chain" in value:
            chain = _unb64(value["chain"], "chain")
            if sha256(chain) != record.authority.chain:
                raise TraceError(_F.CHAIN_MISMATCH, "the bundle's chain is not the one named")
            check_chain(record, chain)
            signed = None if memo is None else memo.chains  # review 56f, chains 1
            check_chain_signed(chain, checkpoints, signed, rows, issuers)  # 56y: chains 2
        elif record.authority is not None and record.authority.at == "log":
            # the log holds every chain named "at log" (refused at append otherwise) and its
            # bundles carry it: one without it was stripped (review 27t, export 1)
            raise TraceError(
                _F.CHAIN_MISMATCH, "the bundle does not carry the chain the record keeps at the log"
            )
        checkpoint = _checkpoint(value, known, checkpoints, rows, memo)
        check_checkpoint_time(checkpoint, record.time)
        leaf, proof = leaf_hash(envelope), _proof(value.get("proof"))
        verify_inclusion(index, checkpoint.size, leaf, proof, checkpoint.root)
        status, kept = AnchorStatus.UNANCHORED, None
        if anchor is not None:  # a note the verifier kept, so verified when it was kept
            saved = parse_kept(anchor)

            def prefix(size: int) -> bytes:  # the line of the kept size's last record
                return prefix_root(index, checkpoint.size, leaf, proof, checkpoint.root)

            # review 63s, traces 1: the line of the kept size's last record; `valid` when its
            # log material attests the kept note's key as `verify_log` requires of a log's,
            # a fork refused whatever it attests (review 65i, traces 1)
            last = index == saved.size - 1
            status = judge_line_kept(
                saved,
                checkpoint,
                prefix if last else None,
                lambda: _attests_kept(anchor, value, verifier),
            )
            kept = saved if status is AnchorStatus.VALID else None  # named: 51g, anchor 1
            # a record past it dated more than the skew before it (review 66h)
            check_after_kept(index, record, saved, lambda: _attests_kept(anchor, value, verifier))
    except TraceError as exc:
        raise exc.located(index=index, record=None if record is None else record.id) from None
    report = BundleReport(
        record,
        index,
        sha256(payload),
        checkpoint,
        status,
        tuple(sorted(disclosures)),
        epoch.change,
        kept,
        record.authority is not None and "chain" not in value,
    )
    return report, identity, attestation, carried


def _attests_kept(
    anchor: bytes,
    value: dict[str, Any],
    verifier: tuple[Known | None, Checkpoints | None, Rows | None],
) -> bool:
    """Whether the log's history and keys a line carries sign the verifier's kept note (at its
    time), as `verify_log` verifies a kept note by the log's: a line whose log history ends
    before a rotation the kept note was signed after (a stolen old log key's checkpoint dated
    after it) does not, so its larger checkpoint is not taken as grown from the kept one (nor
    a line that lacks the kept note's key, renewed since: unanchored, as before review 63s)."""
    try:
        _verify_checkpoint(anchor, _field(value, "log", dict), *verifier)
    except TraceError:
        return False
    return True


def _disclosures(value: dict[str, Any]) -> dict[str, Disclosure]:
    try:
        return {name: Disclosure.from_json(d, f"disclosure {name}") for name, d in value.items()}
    except DecodeError as exc:
        raise TraceError(_F.MALFORMED, str(exc)) from None


def _checkpoint(
    value: dict[str, Any],
    known: Known | None,
    checkpoints: Checkpoints | None,
    rows: Rows | None,
    memo: ExportMemo | None = None,
) -> Checkpoint:
    """A line's checkpoint, verified by the log's history and attestations the line carries;
    once per export for the lines that carry the same (`memo`; review 55e, exports 1)."""
    text = _field(value, "checkpoint", str)
    log = _field(value, "log", dict)
    key = None if memo is None else checkpoint_key(text, log)
    found = None if memo is None or key is None else memo.checkpoints.get(key)
    if found is not None:
        return found
    verified = _verify_checkpoint(text.encode("utf-8"), log, known, checkpoints, rows)
    return verified if memo is None or key is None else memo.checkpoints.put(key, verified)


def _verify_checkpoint(
    note: bytes,
    log: dict[str, Any],
    known: Known | None,
    checkpoints: Checkpoints | None,
    rows: Rows | None,
) -> Checkpoint:
    parsed, _ = parse_checkpoint(note)
    try:
        identifier = Identifier.parse(parsed.origin.split("/", 1)[1])
    except (IndexError, ValueError):
        raise TraceError(_F.CHECKPOINT_INVALID, f"origin {parsed.origin!r}") from None
    history = _unb64(log.get("history"), "log history")
    identity = verify_identity(identifier, history, known, checkpoints)
    entries = log.get("attestations")
    if type(entries) is not list:
        raise TraceError(_F.MALFORMED, "bundle log attestations: not a list")
    attestations = {keyid_of(a): a for a in (_unb64(e, "log attestation") for e in entries)}

    def judge(log_identity: VerifiedIdentity, attestation: bytes) -> KeyEpoch:
        return newest_view(identifier, attestation, log_identity, rows, known, checkpoints)

    return verify_checkpoint(note, identity, attestations, resolve=judge)


def verify_export(
    lines: Iterable[bytes],
    *,
    anchor: bytes | None = None,
    known: Known | None = None,
    checkpoints: Checkpoints | None = None,
    rows: Rows | None = None,
    issuers: IssuerCheck | None = None,
) -> ExportReport:
    """Verify every line of a JSONL export (`verify_bundle`), that all lines share one
    checkpoint and no index or (agent, record id) repeats (ids are unique per agent), no
    agent has two records at one seq, each agent's chain between consecutive records present
    (hashes, times, key changes), each agent's keys used before they retired by the newest
    of its histories the lines carry (review 35c, trace 1), each resolution whose escalation
    is present answers it as its signer was asked, and no version 1 link is ambiguous among
    the lines (`parent_record`), where the lines present settle which record it names
    (review 38b, trace 1). With `anchor`, the export must reach it (TRUNCATED otherwise).
    `issuers`: as for `verify_bundle`, a chain's once per export.
    TraceError: the first bad record's fault, the one of the lowest log index of every fault
    found, whatever the order of the lines (`check_export`; issue #13, review 48i)."""
    memo = ExportMemo()  # what the lines repeat, verified once (review 55e, exports 1)
    if anchor is not None:  # a kept note that is none, refused before a line is read: not
        # blamed on the first line (review 51g, kept 1)
        parse_kept(anchor)

    def verify(line: bytes) -> LineFound:
        return _verify_line(line, anchor, known, checkpoints, rows, memo, issuers)

    return check_export(
        lines, verify, anchor=anchor, known=known, checkpoints=checkpoints, rows=rows
    )
