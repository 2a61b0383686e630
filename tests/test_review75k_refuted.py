"""Review 75k, refuted: attacks on the payload rule (a record within MAX_TRACE_PAYLOAD_BYTES
wherever in its agent's chain it is signed or signed again) and on the memory a batcher's
encoded values hold, that did not work."""

from __future__ import annotations

import pytest

from tests.support.traces import NOW, Held
from tests.test_review75c_batcher import _at_the_bound
from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.identity import Identifier
from troth.trace import Kind, Links, RecordContent, ToolCall
from troth.trace.batcher import TraceBatcher
from troth.trace.record import TraceRecord
from troth.trace.signing import _PAYLOAD_ROOM, resign_record, verify_envelope

_FARTHEST = 2**53 - 1
_AGENT = Identifier(b"\x07" * 32)
_OTHER = Identifier(b"\x08" * 32)


def _payload(links: Links, seq: int, time: int, agent: Identifier = _AGENT) -> int:
    prev = None if seq == 0 else bytes(32)
    record = TraceRecord(
        "0" * 32, agent, "0" * 64, seq, prev, time, Kind.TOOL_INVOCATION, ToolCall("t"),
        links=links.signed_by(agent),
    )  # fmt: skip
    return len(record.encode())


@pytest.mark.parametrize("parent", [None, _AGENT, _OTHER], ids=["none", "own", "other"])
@pytest.mark.parametrize(("seq", "time"), [(0, 0), (0, NOW), (1, 0), (9, 99), (_FARTHEST, 0)])
def test_no_place_in_the_chain_grows_a_payload_past_the_room_signing_leaves(
    parent: Identifier | None, seq: int, time: int
) -> None:
    """Tried: a place in the chain where a record's payload grows more than `_PAYLOAD_ROOM`
    (175 bytes) past its size where it was signed, so signing, which checks the farthest
    place only for a payload within that room of the bound, would pass one over it: seq and
    time of 1 digit against 16, no prev against one, its own parent agent dropped against
    kept. The growth is at most the room, exactly it at seq 0, time 0 and its own parent
    agent (every other field, id, agent, key, digests, has one length)."""
    links = Links(parent="0" * 31 + "1", parent_agent=parent)
    farthest = _payload(Links(parent="0" * 31 + "1", parent_agent=_OTHER), _FARTHEST, _FARTHEST)
    grown = farthest - _payload(links, seq, time)
    assert grown <= _PAYLOAD_ROOM
    if (seq, time, parent) == (0, 0, _AGENT):
        assert grown == _PAYLOAD_ROOM


@pytest.mark.parametrize("own", [False, True], ids=["other-parent", "own-parent"])
def test_a_record_at_the_bound_is_signed_again_after_a_rotation_at_the_farthest_seq(
    own: bool,
) -> None:
    """Tried: a record at the bound at the chain's farthest place, queued by the batcher and
    signed at seq 0, then signed again (`resign_record`, as the outbox's re-sign and a
    rotation do) by the rotated identity's new key at seq 2^53 - 1 after a prev: it is signed
    and verifies (a keyid is 64 hex whatever the key; the time the attestation allows)."""
    held = Held()
    content = _at_the_bound(0, held.identifier if own else Identifier(bytes(32)))
    batcher = TraceBatcher(held.signer)
    batcher.set_head(None)
    batcher.add(content, now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    sent = batch.submission.records[0]
    first = held.signer()
    verified = verify_envelope(
        sent.envelope, signer=first.identity, attestation=first.attestation,
        disclosures=sent.disclosures,
    )  # fmt: skip
    held.rotate(NOW + 10)
    signer = held.signer(NOW + 10)
    moved = resign_record(
        signer, verified.record, verified.disclosures, seq=_FARTHEST, prev=bytes(32),
        time=NOW + 10,
    )  # fmt: skip
    assert moved.record.key != verified.record.key
    assert len(moved.record.encode()) <= limits.MAX_TRACE_PAYLOAD_BYTES


def test_the_queue_holds_each_records_values_as_bounded_bytes_only() -> None:
    """Tried: a batcher's queue holding more than before 75c encoded the values (their
    canonical JSON, kept at `add`): the kept content holds no values, the bytes are within
    MAX_TRACE_RECORD_DISCLOSURE_BYTES a record (one past it refused at `add`, OVER_LIMIT),
    and the queue within its `queue_size` records: the bound is TRACE_QUEUE_RECORDS times
    that, as before (the Python objects it held before were never smaller than their JSON)."""
    most, bound = limits.MAX_TRACE_DISCLOSURE_BYTES, limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES
    rest = bound - 2 * most  # three values' JSON: the bound
    values = {"args": "a" * (most - 2), "result": "r" * (most - 2), "inputs": "i" * (rest - 2)}
    batcher = TraceBatcher(Held().signer, queue_size=1)
    batcher.set_head(None)
    with pytest.raises(TraceError) as over:
        batcher.add(RecordContent(Kind.TOOL_INVOCATION, values={**values, "reasoning": 1}), now=NOW)
    assert over.value.reason is TraceFailure.OVER_LIMIT
    queued = batcher.add(RecordContent(Kind.TOOL_INVOCATION, values=values), now=NOW)
    assert queued.content.values == {}
    kept = queued._encoded
    assert kept is not None
    assert sum(map(len, kept.values())) == limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES
    with pytest.raises(TraceError) as full:
        batcher.add(RecordContent(Kind.TOOL_INVOCATION), now=NOW)
    assert full.value.reason is TraceFailure.OVER_LIMIT
