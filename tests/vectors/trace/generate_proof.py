"""Regenerate tests/vectors/trace/proof_vectors.json from trace_vectors.json.

    python tests/vectors/trace/generate_proof.py > tests/vectors/trace/proof_vectors.json

Version 1: the three records of trace_vectors.json appended to a fresh log of the same log
identity (fixed keys, a fixed clock), and the proof bundle `troth trace prove` writes for each,
against the checkpoint the log signs at the vectors' checkpoint time: the same note as
trace_vectors.json's. Version 2: an agent of fixed keys records at change 0, rotates 70 times,
and records again from a checkpoint at change 70 with the two history windows that bridge the
log's copy (changes 0-63, 63-70), through a trace collector; the bundle of its first record
carries those windows. tests/test_review48g_vectors.py rebuilds them byte for byte and
verifies the stored bytes (docs/formats.md, "Trace log and checkpoints", "Proof bundle").
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.support.fixed_vault import FixedKeyVault
from tests.vectors.trace.generate import RECORDED, counter, signer

from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.identity import (
    Checkpoint,
    HeldIdentity,
    Signer,
    attest_purpose_key,
    encode_history,
    new_identity,
    rotate_identity,
)
from troth.trace.bridge import window_spans
from troth.trace.collect import TraceCollector
from troth.trace.export import bundle_text, prove
from troth.trace.log import TraceLog
from troth.trace.record import Disclosure, Kind, ToolCall
from troth.trace.signing import RecordContent, VerifiedRecord, sign_record, verify_envelope
from troth.trace.submit import Submission, SubmittedRecord
from troth.vault import KeyPurpose

TRACE = Path(__file__).resolve().parent / "trace_vectors.json"
DAY = 86_400
ROTATIONS = 70  # past 64 changes: the history is presented from change 70, two windows back
KEYS = [bytes([0xB0]) + n.to_bytes(2, "big") + bytes(29) for n in range(ROTATIONS + 8)]


def build() -> dict[str, Any]:
    vectors = json.loads(TRACE.read_text())["vectors"]
    agent, log_signer = signer("agent"), signer("log")
    by = [agent, agent, log_signer]
    records = [
        verify_envelope(
            stored["envelope"].encode(),
            signer=held.identity,
            attestation=held.attestation,
            disclosures={
                name: Disclosure.from_json(value, name)
                for name, value in stored["disclosures"].items()
            },
        )
        for stored, held in zip(vectors["records"], by, strict=True)
    ]
    with tempfile.TemporaryDirectory() as directory:
        clock = FixedClock(RECORDED + 3)
        with TraceLog.open(
            Path(directory) / "trace.db", clock=clock, signer=lambda now: log_signer
        ) as log:
            for verified in records:
                log.append(verified)
            bundles = [
                bundle_text(prove(log, r.record.id, held.identity.identifier), lines=True)
                for r, held in zip(records, by, strict=True)
            ]
    return {"bundles": bundles, "bundle_v2": _bridged()}


def _attested(vault: FixedKeyVault, held: HeldIdentity, now: int) -> Signer:
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        vault,
        held.primary,
        held.identity,
        KeyPurpose.SIGNING,
        vault.public_key(handle),
        now=now,
        expires_at=now + 30 * DAY,
    )
    return Signer(held.identity, vault, handle, attestation, now + 30 * DAY)


def _submitted(record: VerifiedRecord) -> SubmittedRecord:
    return SubmittedRecord(record.envelope, dict(record.disclosures))


def _bridged() -> str:
    """The version 2 bundle of a record at change 0 of an agent since rotated 70 times."""
    vault = FixedKeyVault([(KeyType.ED25519, key) for key in KEYS])
    held = new_identity(vault, KeyType.ED25519, now=RECORDED, valid_for=3650 * DAY)
    log_signer = signer("log")
    random = counter(0x40)
    with tempfile.TemporaryDirectory() as directory:
        clock = FixedClock(RECORDED)
        log = TraceLog.open(
            Path(directory) / "trace.db", clock=clock, signer=lambda now: log_signer
        )
        collector = TraceCollector(
            log,
            verifier=lambda: None,
            feeds=dict,
            observe=lambda identity: None,
            vouched=lambda identifier: frozenset(),
            checkpoints=lambda now: lambda checkpoint, history: True,
        )
        first = _attested(vault, held, RECORDED)
        early = sign_record(
            first,
            RecordContent(
                Kind.TOOL_INVOCATION,
                tool=ToolCall("lookup_order", "call_1"),
                values={"args": {"order_id": "o1"}},
            ),
            seq=0,
            prev=None,
            time=RECORDED,
            random=random,
        )
        batch = Submission(held.identity.history, (first.attestation,), (), (_submitted(early),))
        (result,) = collector.submit(batch, submitter=None, now=RECORDED).results
        assert result.delivered, result.detail
        changes = [held.identity.changes[0].signed]
        for number in range(ROTATIONS):
            held = rotate_identity(
                vault,
                held.identity,
                held.primary,
                held.next_key,
                now=RECORDED + 60 + number,
                valid_for=3650 * DAY,
            )
            changes.append(held.identity.changes[-1].signed)
        digest = held.identity.identifier.digest
        cut = held.identity.from_checkpoint(Checkpoint(digest, digest, ROTATIONS))
        held = held._replace(identity=cut)
        spans = window_spans(0, cut.first_index)
        assert spans == [(0, 63), (63, ROTATIONS)]
        windows = tuple(  # as a node's change rows give them: from change 0, then checkpoints
            encode_history(
                changes[start : end + 1], Checkpoint(digest, digest, start) if start else None
            )
            for start, end in spans
        )
        later = RECORDED + 600
        clock.advance(later - clock.now())
        second = _attested(vault, held, later)
        late = sign_record(
            second,
            RecordContent(
                Kind.TOOL_INVOCATION,
                tool=ToolCall("refund", "call_2"),
                values={"args": {"order_id": "o1", "amount": 20}},
            ),
            seq=1,
            prev=early.hash,
            time=later,
            random=random,
        )
        batch = Submission(cut.history, (second.attestation,), (), (_submitted(late),), windows)
        (result,) = collector.submit(batch, submitter=None, now=later).results
        assert result.delivered, result.detail
        text = bundle_text(prove(log, early.record.id, cut.identifier), lines=True)
        log.close()
    return text


def main() -> None:
    vectors = {
        "about": "troth trace proof bundle golden vectors (docs/formats.md, 'Proof bundle'): "
        "the version 1 bundle `troth trace prove` writes for each record of trace_vectors.json "
        "in a log of its log identity, against the checkpoint of trace_vectors.json; a version "
        "2 bundle (bundle_v2) of a record an agent of fixed keys (b0 0000 .. b0 004d, 29 zero "
        "bytes after) made at change 0 before rotating 70 times, with the two history windows "
        "that link it to the agent's newest history. Generated by "
        "tests/vectors/trace/generate_proof.py.",
        "vectors": build(),
    }
    json.dump(vectors, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
