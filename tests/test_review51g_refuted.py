"""Review 51g, attacks on signed traces that failed (the code was right), kept as tests:

1. Merkle proofs at the edges (RFC 9162 §2.1.3): for trees of 1, 2, 3, 2^k and 2^k + 1
   leaves every leaf's proof verifies, and is refused for the tree's size as an index, any
   larger index, a negative one, a tree of size 0, and one leaf too many or too few.
2. A payload in another spelling of the same values (`-0` for 0, a member twice, a `\\u`
   escape, `1.0` for an integer, a seq of 2^53) is refused: the collector verifies over the
   exact canonical bytes.
3. DSSE payloadType confusion: the same payload signed as another type (its own PAE) is refused
   as another type; the troth type named over a signature of another type's PAE is a bad
   signature.
4. A disclosure moved from one field to another, or from one record to another of the same
   value, does not open the commitment (the field name and a fresh salt are under it).
5. A checkpoint note with a second extension line, or text after its signatures, is refused.
6. A kept checkpoint of another log is refused by `verify_log`, not taken for the log's.
7. An export line of another log (its own checkpoint) slipped into an export is refused.
8. Span attributes of any type (the SDK's checks bypassed: bytes, NaN, lists of mixed types,
   lone surrogates, 300 KB strings, empty strings) on every GenAI attribute the processor
   reads are recorded, or refused as a TrothError or ValueError only (`strict=False` counts
   them); only `troth.decision`, the instrumentation's own outcome, refuses a span (policy
   ids and a revision did too: otel 1, tests/test_review51g_otel.py, fixed).
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import DecodeError, DecodeProblem, TraceError, TraceFailure
from troth.trace.checkpoint import format_note, parse_checkpoint, parse_note
from troth.trace.dsse import encode_envelope, pae
from troth.trace.export import export_jsonl, verify_export
from troth.trace.merkle import MemoryTree, leaf_hash, verify_inclusion
from troth.trace.otel import SigningSpanProcessor
from troth.trace.record import PAYLOAD_TYPE, Disclosure, commitment
from troth.trace.record_decode import decode_payload
from troth.trace.signing import open_envelope, sign_record, verify_envelope
from troth.trace.verify import verify_log


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 9, 16, 17])
def test_inclusion_proofs_at_the_edges(size: int) -> None:
    leaves = [leaf_hash(bytes([n])) for n in range(size)]
    tree = MemoryTree(leaves)
    root = tree.root()
    for index in range(size):
        proof = tree.inclusion_proof(index)
        verify_inclusion(index, size, leaves[index], proof, root)
        for bad_index, bad_size in ((size, size), (size + 1, size), (-1, size), (index, 0)):
            with pytest.raises(TraceError) as caught:
                verify_inclusion(bad_index, bad_size, leaves[index], proof, root)
            assert caught.value.reason is TraceFailure.PROOF_INVALID
        for bad_proof in ([*proof, root], proof[:-1]):
            if bad_proof == proof:
                continue
            with pytest.raises(TraceError):
                verify_inclusion(index, size, leaves[index], bad_proof, root)
        if size > 1:  # another leaf's proof, or another size
            with pytest.raises(TraceError):
                verify_inclusion((index + 1) % size, size, leaves[index], proof, root)


def _payload(tmp_path: Path) -> bytes:
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    signed = recorder(log, Held(), FixedClock(NOW))
    receipt = signed.record(tool_call())
    payload = open_envelope(log.find(receipt.record).envelope)[1]
    log.close()
    return payload


def test_other_spellings_of_a_payload_are_refused(tmp_path: Path) -> None:
    payload = _payload(tmp_path)
    decode_payload(payload)  # the canonical one
    text = payload.decode()
    assert '"seq":0' in text
    spellings = [
        text.replace('"seq":0', '"seq":-0'),
        text.replace('"seq":0', '"seq":0.0'),
        text.replace('"seq":0', '"seq":0,"seq":0'),  # a member twice (json.loads merges)
        text.replace('"kind":"tool_invocation"', '"kind":"tool_invocatio\\u006e"'),
        text.replace('"seq":0', f'"seq":{2**53}'),
        text.replace('"seq":0', '"seq":1e0'),
        text + " ",
    ]
    for spelling in spellings:
        with pytest.raises(DecodeError) as caught:
            decode_payload(spelling.encode())
        assert caught.value.problem in (DecodeProblem.NON_CANONICAL, DecodeProblem.MALFORMED)


def test_payload_type_confusion_is_refused() -> None:
    agent = Held()
    signer = agent.signer()
    signed = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW)
    payload, keyid = open_envelope(signed.envelope)[1], signed.epoch.keyid
    other = "application/vnd.in-toto+json"
    as_other = encode_envelope(other, payload, keyid, signer.sign(pae(other, payload)))
    with pytest.raises(TraceError) as caught:
        open_envelope(as_other)
    assert caught.value.reason is TraceFailure.UNKNOWN_TYPE
    # the troth type named, over a signature of the other type's PAE
    named = encode_envelope(PAYLOAD_TYPE, payload, keyid, signer.sign(pae(other, payload)))
    with pytest.raises(TraceError) as caught:
        verify_envelope(named, signer=agent.identity, attestation=signer.attestation)
    assert caught.value.reason is TraceFailure.BAD_SIGNATURE


def test_a_disclosure_moved_does_not_open() -> None:
    value = json.dumps({"order": "o1"}, separators=(",", ":")).encode()
    disclosure = Disclosure(bytes(16), value)
    assert commitment("args", disclosure) != commitment("result", disclosure)
    assert commitment("args", disclosure) != commitment("args", Disclosure(b"\x01" * 16, value))


def test_checkpoint_notes_with_extra_lines_are_refused(tmp_path: Path) -> None:
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    recorder(log, Held(), FixedClock(NOW)).record(tool_call())
    note = log.checkpoint().note
    text, signatures = parse_note(note)
    extended = format_note(text + b"another extension\n", signatures)
    trailing = note + b"more text\n"
    for bad in (extended, trailing):
        with pytest.raises(TraceError) as caught:
            parse_checkpoint(bad)
        assert caught.value.reason is TraceFailure.CHECKPOINT_INVALID
    log.close()


def test_a_kept_checkpoint_of_another_log_is_refused(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    ours, theirs = open_log(tmp_path / "ours.db", clock), open_log(tmp_path / "theirs.db", clock)
    agent = Held()
    recorder(ours, agent, clock).record(tool_call())
    recorder(theirs, agent, clock).record(tool_call())  # the same agent: another log
    ours.checkpoint()
    kept = theirs.checkpoint().note
    with pytest.raises(TraceError) as caught:
        verify_log(ours, anchor=kept)
    assert caught.value.reason is TraceFailure.CHECKPOINT_INVALID
    ours.close()
    theirs.close()


def test_an_export_line_of_another_log_is_refused(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    ours, theirs = open_log(tmp_path / "ours.db", clock), open_log(tmp_path / "theirs.db", clock)
    agent, other = Held(), Held()
    recorder(ours, agent, clock).record(tool_call())
    recorder(theirs, other, clock).record(tool_call())
    lines = []
    for log in (ours, theirs):
        out = StringIO()
        export_jsonl(log, out)
        lines.append(out.getvalue().encode())
    with pytest.raises(TraceError) as caught:
        verify_export(b"".join(lines).splitlines())
    assert caught.value.reason is TraceFailure.MALFORMED  # lines against two checkpoints
    ours.close()
    theirs.close()


_HOSTILE: list[object] = [
    None,
    1,
    1.5,
    float("nan"),
    True,
    b"bytes",
    ["a", 1],
    [1.0] * 70,
    "",
    "\x00",
    "\ud800",
    "x" * 300_000,
    ["p"] * 65,
]
_READ = [
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "gen_ai.conversation.id",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.input.messages",
    "troth.policy.ids",
    "troth.bundle.revision",
    "troth.decision",
]


@pytest.mark.parametrize("operation", ["execute_tool", "invoke_agent"])
def test_hostile_span_attributes_never_escape_the_processor(tmp_path: Path, operation: str) -> None:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock), strict=False)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("agent")
    refused: set[str] = set()
    for key in _READ:
        for value in _HOSTILE:
            base = {"gen_ai.operation.name": operation}
            if key != "troth.decision":
                base["troth.decision"] = "allow"
            span = tracer.start_span(f"{operation} x", attributes=base)
            vars(span)["_attributes"]._dict[key] = value  # past the SDK's checks
            before = processor.failures
            span.end()  # raises nothing past strict=False
            if processor.failures != before:
                refused.add(key)
    assert refused == {"troth.decision"}
    assert processor.recorded == len(_READ) * len(_HOSTILE) - processor.failures
    log.close()
