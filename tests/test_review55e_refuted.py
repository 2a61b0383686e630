"""Review 55e: attacks on offline trace verification, export and the OTel bridge that did not
work (each a real attempt, which fails if the defence breaks)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import NotFound, TraceError, TraceFailure
from troth.trace.dsse import decode_envelope, encode_envelope
from troth.trace.export import bundle_text, export_jsonl, prove, verify_bundle, verify_export
from troth.trace.export_memo import Memo
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import open_envelope


def _bundles(tmp_path: Path, records: int = 5) -> list[dict[str, Any]]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent = recorder(log, Held(), clock)
    for _ in range(records):
        agent.record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _refused(bundles: list[dict[str, Any]]) -> TraceError:
    with pytest.raises(TraceError) as refused:
        verify_export([bundle_text(b).encode() for b in bundles])
    return refused.value


def test_a_later_line_s_forged_signature_is_refused_though_its_signer_was_verified(
    tmp_path: Path,
) -> None:
    """Review 55e, exports 1's memo keeps the signer's history and key, never a record's
    signature: a line after good lines of the same signer, its signature's first byte
    changed, is refused at its index."""
    bundles = _bundles(tmp_path)
    envelope = bundles[3]["envelope"]
    at = envelope.index('"sig":"') + len('"sig":"')
    first = envelope[at]
    bundles[3]["envelope"] = envelope[:at] + ("B" if first != "B" else "C") + envelope[at + 1 :]
    fault = _refused(bundles)
    assert (fault.reason, fault.index) == (TraceFailure.BAD_SIGNATURE, 3)


def test_a_later_line_without_the_log_s_attestation_is_refused_though_its_note_was_verified(
    tmp_path: Path,
) -> None:
    """The checkpoint is kept by its note with the log's history and attestations: a line
    carrying the same note without the log key's attestation is judged again, and refused."""
    bundles = _bundles(tmp_path)
    bundles[2]["log"] = {**bundles[2]["log"], "attestations": []}
    fault = _refused(bundles)
    assert (fault.reason, fault.index) == (TraceFailure.CHECKPOINT_INVALID, 2)


def test_the_export_memo_forgets_the_least_recently_used() -> None:
    memo: Memo[int, str] = Memo(2)
    memo.put(1, "one")
    memo.put(2, "two")
    assert memo.get(1) == "one"  # 2 is now the least recently used
    memo.put(3, "three")
    assert (memo.get(2), memo.get(1), memo.get(3), len(memo)) == (None, "one", "three", 2)


# -- attacks on a proof bundle or an export that did not work ---------------------------------


def _log_and_agent(tmp_path: Path, name: str = "trace.db") -> tuple[Any, Held, Any]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / name, clock)
    held = Held()
    return log, held, recorder(log, held, clock)


def _verify_one(bundle: dict[str, Any]) -> TraceError:
    with pytest.raises(TraceError) as refused:
        verify_bundle(bundle_text(bundle).encode())
    return refused.value


def test_a_proof_for_one_tree_size_under_a_later_checkpoint_is_refused(tmp_path: Path) -> None:
    """A bundle's inclusion proof (made for the tree of 3) shown under the log's genuine
    checkpoint of 4 records: the proof does not reach that root."""
    log, _held, agent = _log_and_agent(tmp_path)
    for _ in range(3):
        agent.record(tool_call())
    bundle = prove(log, open_envelope(next(iter(log.stored())).envelope)[0].id)
    assert verify_bundle(bundle).index == 0
    agent.record(tool_call())
    later = log.checkpoint()
    assert later.size == 4
    moved = {**bundle, "checkpoint": later.note.decode()}
    assert _verify_one(moved).reason is TraceFailure.PROOF_INVALID
    log.close()


def test_a_bundle_s_index_moved_to_another_leaf_is_refused(tmp_path: Path) -> None:
    log, _held, agent = _log_and_agent(tmp_path)
    for _ in range(4):
        agent.record(tool_call())
    bundle = prove(log, open_envelope(list(log.stored())[2].envelope)[0].id)
    for index in (3, 1, 4, -1):
        assert _verify_one({**bundle, "index": index}).reason is TraceFailure.PROOF_INVALID
    log.close()


def test_lines_of_two_logs_spliced_into_one_export_are_refused(tmp_path: Path) -> None:
    """Each line verifies alone (its own log's checkpoint); together they are two logs."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = _bundles(tmp_path / "one", 2), _bundles(tmp_path / "two", 2)
    for bundle in (*first, *second):
        assert verify_bundle(bundle).record is not None
    fault = _refused([first[0], {**second[1]}])
    assert fault.reason is TraceFailure.MALFORMED
    assert "different checkpoints" in (fault.detail or "")


def test_a_dsse_envelope_of_another_payload_type_or_signed_without_pae_is_refused(
    tmp_path: Path,
) -> None:
    """The signed bytes re-labelled (another payloadType, the same signature), and a record
    signed by the agent's own key over the payload itself rather than its PAE: refused."""
    log, held, agent = _log_and_agent(tmp_path)
    agent.record(tool_call())
    bundle = prove(log, open_envelope(next(iter(log.stored())).envelope)[0].id)
    envelope, _keyid = decode_envelope(bundle["envelope"].encode())
    _record, payload, signature, keyid = open_envelope(bundle["envelope"].encode())
    relabelled = encode_envelope("application/vnd.in-toto+json", payload, keyid, signature)
    fault = _verify_one({**bundle, "envelope": relabelled.decode()})
    assert fault.reason is TraceFailure.UNKNOWN_TYPE
    assert envelope.payload_type == PAYLOAD_TYPE
    bare = held.signer(NOW).sign(payload)  # the right key, over the payload alone
    unframed = encode_envelope(PAYLOAD_TYPE, payload, keyid, bare)
    assert _verify_one({**bundle, "envelope": unframed.decode()}).reason is (
        TraceFailure.BAD_SIGNATURE
    )
    log.close()


def test_prove_of_a_record_the_log_does_not_hold_is_refused(tmp_path: Path) -> None:
    log, _held, agent = _log_and_agent(tmp_path)
    agent.record(tool_call())
    with pytest.raises(NotFound):
        prove(log, "0190f0f0-0000-7000-8000-000000000000")
    log.close()


def test_the_otel_export_carries_no_disclosed_value(tmp_path: Path) -> None:
    """A record's disclosed values (arguments, result), in clear in the log and redacted,
    reach no span: the spans carry the record's hash and ids, never a disclosure."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from troth.trace.otel import export_otel

    log, _held, agent = _log_and_agent(tmp_path)
    secret, kept = "card-4111-1111-1111-1111", "result-in-clear-7a1f"
    receipt = agent.record(tool_call(args={"card": secret}, result=kept))
    agent.record(tool_call(args={"card": secret}, result=kept))
    assert log.redact(receipt.record, "args")
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 2
    for span in exporter.get_finished_spans():
        shown = repr(dict(span.attributes or {})) + span.name
        assert secret not in shown
        assert kept not in shown
    log.close()
