"""Review 75n, payload: deciding policy ids a record cannot hold within MAX_TRACE_PAYLOAD_BYTES.

75n payload 1 (75k batcher2 7, its test there): a gate's recorder kept up to
MAX_TRACE_POLICY_IDS deciding ids of up to MAX_TRACE_TEXT characters in the record's
`decision`: 64 ids of 256 characters are over MAX_TRACE_PAYLOAD_BYTES, so signing refused the
record and the gated call failed closed, every time. A bundle's `@id`s are at most
MAX_POLICY_ID_TEXT (128) characters, and 64 of them with every other member at its limit fit
(tests/test_review75n_refuted.py); a decision naming longer ids (one made by hand) keeps the
first ids within MAX_TRACE_POLICY_BYTES, what 64 bundle ids take, and every id is in the
result's disclosure the record commits to (`digests.result`), as ids past 64 already were.

75n payload 2: the OpenTelemetry span processor kept a span's `troth.policy.ids` the same
way (at most 64 record texts): 64 ids of 256 characters made the record refuse the span
(strict: `span.end()` raised). It now keeps the ids within the same bound; every id given is
in the record's `inputs`, as ids past 64 already were.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review51g_otel import _only, _span, _world
from troth import limits
from troth.clock import FixedClock
from troth.crypto import sha256
from troth.errors import TraceError, TraceFailure
from troth.gates import DecisionRecord, Outcome, PolicyDecision
from troth.gates import ToolCall as GateCall
from troth.trace import Kind, RecordContent, ToolCall, sign_record
from troth.trace.adapters import TraceDecisionRecorder
from troth.trace.disclosure import Disclosure
from troth.trace.record import disclosure_value
from troth.trace.signing import resign_record

_LONG = tuple(f"{n:02d}" + "p" * (limits.MAX_TRACE_TEXT - 2) for n in range(64))


def _encoded(ids: tuple[str, ...]) -> int:
    """The bytes `ids` take in a record's `decision.policies` (each `"id",`)."""
    return sum(len(json.dumps(p, ensure_ascii=False).encode()) + 1 for p in ids)


def test_a_gate_records_a_decision_of_long_policy_ids_and_discloses_them_all(
    tmp_path: Path,
) -> None:
    """75n payload 1: the gate's recorder signs a decision of 64 ids of 256 characters (it
    raised OVER_LIMIT, the call failing closed); the record keeps the first ids within
    MAX_TRACE_POLICY_BYTES and the result it commits to discloses every id."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    gate = TraceDecisionRecorder(recorder(log, Held(), clock))
    decision = PolicyDecision(False, Outcome.FORBIDDEN, "forbidden", _LONG, revision=1)
    gate.record(DecisionRecord(NOW, None, GateCall("refund"), decision))
    record = _only(log)
    assert record.decision is not None
    kept = record.decision.policies
    assert kept == _LONG[: len(kept)]
    assert _encoded(kept) <= limits.MAX_TRACE_POLICY_BYTES < _encoded(_LONG[: len(kept) + 1])
    result = json.loads(log.disclosures(record.id)["result"].value)
    assert result["policies"] == list(_LONG)
    log.close()


def test_a_span_of_long_policy_ids_is_recorded_with_every_id_in_its_inputs(
    tmp_path: Path,
) -> None:
    """75n payload 2: a span naming 64 policy ids of 256 characters is recorded (the record
    refused it: strict, `span.end()` raised), its decision keeping the first ids within
    MAX_TRACE_POLICY_BYTES, its `inputs` every id given (by hash and size, as any value past
    MAX_TRACE_DENIED_DISCLOSURE_BYTES there)."""
    log, processor, tracer = _world(tmp_path)
    _span(tracer, **{"troth.policy.ids": list(_LONG)})
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    assert record.decision is not None
    kept = record.decision.policies
    assert kept == _LONG[: len(kept)]
    assert _encoded(kept) <= limits.MAX_TRACE_POLICY_BYTES < _encoded(_LONG[: len(kept) + 1])
    every = disclosure_value(list(_LONG))  # past MAX_TRACE_DENIED_DISCLOSURE_BYTES: by hash
    inputs = json.loads(log.disclosures(record.id)["inputs"].value)
    assert inputs == {"policies": {"bytes": len(every), "sha256": sha256(every).hex()}}
    log.close()


def test_resign_record_seals_no_disclosure_its_record_does_not_commit_to() -> None:
    """75n payload 3: `resign_record` (public) sealed whatever disclosures it was handed into a
    VerifiedRecord, which a log appends as checked: a value its record's commitment does not
    open (or one it has none for) went into the log beside the record, found only by a later
    verification. Now it refuses them (DISCLOSURE_MISMATCH), as `verify_envelope` does."""
    held = Held()
    signer = held.signer(NOW)
    first = sign_record(
        signer, RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"args": "ok"}),
        seq=0, prev=None, time=NOW,
    )  # fmt: skip
    salt = first.disclosures["args"].salt
    for given in ({"args": Disclosure(salt, b'"forged"')}, {"result": Disclosure(salt, b"1")}):
        with pytest.raises(TraceError) as refused:
            resign_record(signer, first.record, given, seq=1, prev=bytes(32), time=NOW)
        assert refused.value.reason is TraceFailure.DISCLOSURE_MISMATCH
    moved = resign_record(signer, first.record, first.disclosures, seq=1, prev=bytes(32), time=NOW)
    assert moved.disclosures == first.disclosures
