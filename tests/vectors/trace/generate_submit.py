"""Regenerate tests/vectors/trace/submit_vectors.json from trace_vectors.json.

    python tests/vectors/trace/generate_submit.py > tests/vectors/trace/submit_vectors.json

A trace submission (`trace.submit`'s arguments) and its answer carry bytes made elsewhere (the
records' envelopes and disclosures, the signer's history and attestation, a checkpoint note:
all taken from trace_vectors.json), so their encodings are fixed: tests/test_review48g_vectors.py
rebuilds them byte for byte and decodes the stored bytes into their fields (docs/formats.md,
"Trace submissions").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from troth.encoding import cbor
from troth.errors import TraceFailure
from troth.trace.record import Disclosure, canonical_json
from troth.trace.submit import Head, Receipts, Status, Submission, SubmitResult, SubmittedRecord

TRACE = Path(__file__).resolve().parent / "trace_vectors.json"


def _records(vectors: dict[str, Any]) -> tuple[SubmittedRecord, ...]:
    return tuple(
        SubmittedRecord(
            record["envelope"].encode(),
            {
                name: Disclosure(bytes.fromhex(shown["salt"]), canonical_json(shown["value"]))
                for name, shown in record["disclosures"].items()
            },
        )
        for record in vectors["records"]
    )


def build() -> dict[str, Any]:
    vectors = json.loads(TRACE.read_text())["vectors"]
    history = bytes.fromhex(vectors["agent_history"])
    records = _records(vectors)[:2]  # the first two records are the agent's own
    v1 = Submission(history, (bytes.fromhex(vectors["agent_attestation"]),), (), records)
    # version 2: the same with one history window (the agent's history again: an encoding
    # vector, not a bridge a collector would accept)
    v2 = Submission(v1.history, v1.attestations, v1.chains, v1.records, (history,))
    receipts = Receipts(
        (
            SubmitResult(Status.APPENDED, 0),
            SubmitResult(Status.ALREADY, 1),
            SubmitResult(Status.REFUSED, reason=TraceFailure.MALFORMED, detail="not a record"),
        ),
        Head(1, bytes.fromhex(vectors["records"][1]["record_hash"]), vectors["created_at"] + 2),
        (3, vectors["checkpoint"].encode()),
    )
    return {
        "submit_v1": cbor.encode(v1.to_cbor()).hex(),
        "submit_v2": cbor.encode(v2.to_cbor()).hex(),
        "receipts": cbor.encode(receipts.to_cbor()).hex(),
    }


def main() -> None:
    vectors = {
        "about": "troth trace submission golden vectors (docs/formats.md, 'Trace "
        "submissions'): a submission of version 1 (the first two records of trace_vectors.json "
        "with the agent's history and attestation), the same as version 2 with one history "
        "window (the agent's history again: an encoding vector), and receipts (appended, "
        "already there, refused; the head; the checkpoint of trace_vectors.json). Generated "
        "by tests/vectors/trace/generate_submit.py.",
        "vectors": build(),
    }
    json.dump(vectors, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
