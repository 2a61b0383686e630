"""Review 75c, batcher: what `TraceBatcher.add` refuses against what signing refuses.

75c batcher 1 (74v last 1, and the rest of it): `TraceBatcher.add` checked a record's values
(`signable_values`) and nothing else signing refuses about the record itself: a value named
outside REDACTABLE, a content id that is not 32 lowercase hex digits, a resolution's id that
is not its escalation's, an escalation's hash on a record that is no resolution, whom it
escalates to on a record that is no escalation, a payload over MAX_TRACE_PAYLOAD_BYTES (64
policy ids of 256 characters). `add` queued the record and `record()` returned as if
recorded; signing refused it only once its batch was made (`Queued.error`, set aside), where
the node's durable outbox, signing at `add`, refuses it at once. Now one check of the
content (`signing.check_content`) is what `sign_record` and `add` both run: `add` refuses
each the same way (MALFORMED for signing's ValueError, its own reason for a TraceError),
nothing queued.

75c batcher 2: a content that is no record's (a kind that is not a `Kind`, a decision that is
not a `Decision`: the typed fields given other objects) was queued by `add`, and signing it
raised KeyError or AttributeError out of `next_batch`, with the record left at the head of the
queue: the trace client's pump, which outlives any failure and tries again, sent no record
after it, ever. Now `check_content` builds the record at `add` and refuses it (MALFORMED),
nothing queued.

75c batcher 3: `add` gave a record naming no id a fresh one (`new_record_id`), a version 3
resolution too, whose id is its escalation's (`resolution_id` of the escalation's hash, which
`sign_record` derives when the content names none): signing refused it as a resolution under
another id, so every resolution recorded through a trace client with no id of its own was set
aside once sent (MALFORMED), where the node's outbox signs it under its escalation's id. Now
`add` takes the id signing would (`signing.content_id`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.traces import NOW, Held
from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.identity import Identifier
from troth.trace import Decision, Kind, Links, RecordContent, ToolCall, sign_record
from troth.trace.batcher import TraceBatcher
from troth.trace.record import TraceRecord, resolution_id

_PARENT = "0" * 31 + "1"
_HASH = bytes(range(32))
_LONG = tuple(f"{n:02d}" + "p" * (limits.MAX_TRACE_TEXT - 2) for n in range(64))

REFUSED: dict[str, dict[str, Any]] = {
    "name-not-redactable": {"values": {"v": 1}},
    "id-not-hex": {"values": {"args": 1}, "id": "zz"},
    "id-upper-hex": {"id": "A" * 32},
    "hash-not-resolution": {"links": Links(parent=_PARENT, parent_hash=_HASH)},
    "resolution-other-id": {
        "kind": Kind.RESOLUTION,
        "links": Links(parent=_PARENT, parent_hash=_HASH),
        "id": "0" * 32,
    },
    "escalation-to-not-escalation": {"escalation_to": Identifier(bytes(32))},
    "payload-over": {"decision": Decision("allow", "7", _LONG)},
    "value-not-json": {"values": {"args": object()}},
    "values-over-the-record-bound": {
        "values": dict.fromkeys(
            ("args", "result", "inputs"), "a" * (limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES // 3)
        )
    },
}


def _content(fields: dict[str, Any]) -> RecordContent:
    made = {"kind": Kind.TOOL_INVOCATION, "tool": ToolCall("t"), **fields}
    return RecordContent(**made)


def _signing_refusal(content: RecordContent, held: Held | None = None) -> TraceFailure:
    """The reason signing at seq 0 as `held` gives (a ValueError is MALFORMED, as the batcher
    and outbox say)."""
    try:
        sign_record((held or Held()).signer(), content, seq=0, prev=None, time=NOW)
    except ValueError:
        return TraceFailure.MALFORMED
    except TraceError as exc:
        return exc.reason
    raise AssertionError("signed")


@pytest.mark.parametrize("fields", list(REFUSED.values()), ids=list(REFUSED))
def test_the_batcher_refuses_at_add_each_record_signing_refuses(fields: dict[str, Any]) -> None:
    """75c batcher 1: each content `sign_record` refuses for the record itself (its values,
    their names, its id, the fields of its kind, its payload's size) is refused by
    `TraceBatcher.add` with the same reason, nothing queued; before, all but the values were
    queued and set aside once signed."""
    content = _content(fields)
    reason = _signing_refusal(content)
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    with pytest.raises(TraceError) as refused:
        batcher.add(content, now=NOW)
    assert refused.value.reason is reason
    assert batcher.pending() == 0


def test_what_the_batcher_queues_is_signed() -> None:
    """75c batcher 1, the other way: contents signing takes (a resolution under its
    escalation's id, an escalation naming whom, a record naming its own agent as the parent's,
    64 short policy ids) are queued by `add` and each signed in its batch."""
    held = Held()
    contents = [
        _content(
            {
                "kind": Kind.RESOLUTION,
                "links": Links(parent=_PARENT, parent_hash=_HASH),
                "id": resolution_id(_HASH),
            }
        ),
        _content({"kind": Kind.ESCALATION, "escalation_to": Identifier(bytes(32))}),
        _content({"links": Links(parent=_PARENT, parent_agent=held.identifier)}),
        _content({"decision": Decision("allow", "7", _LONG[:8]), "values": {"args": [1]}}),
    ]
    batcher = TraceBatcher(held.signer)
    batcher.set_head(None)
    queued = [batcher.add(content, now=NOW) for content in contents]
    batch = batcher.next_batch(NOW)
    assert batch is not None
    assert [item.record for item in batch.items] == [item.record for item in queued]


def _at_the_bound(over: int, parent_agent: Identifier | None) -> RecordContent:
    """A content whose payload at the chain's farthest place (seq and time 2^53 - 1, a prev,
    its parent agent kept) is MAX_TRACE_PAYLOAD_BYTES + `over` bytes (computed here apart)."""

    def sized(policies: tuple[str, ...]) -> tuple[RecordContent, int]:
        links = Links(parent=_PARENT, parent_agent=parent_agent)
        content = _content({"decision": Decision("allow", "7", policies), "links": links})
        agent = Identifier(b"\x07" * 32)
        farthest = TraceRecord(
            "0" * 32, agent, "0" * 64, 2**53 - 1, bytes(32), 2**53 - 1, Kind.TOOL_INVOCATION,
            content.tool, {}, content.decision, None, links,
        )  # fmt: skip
        return content, len(farthest.encode())

    full = _LONG[:60]
    _, size = sized((*full, "q"))
    content, size = sized((*full, "q" * (1 + limits.MAX_TRACE_PAYLOAD_BYTES + over - size)))
    assert size == limits.MAX_TRACE_PAYLOAD_BYTES + over
    return content


@pytest.mark.parametrize("over", [0, 1], ids=["at", "over"])
@pytest.mark.parametrize("own", [False, True], ids=["other-parent", "own-parent"])
def test_the_payload_bound_is_one_rule_at_add_and_at_signing(over: int, own: bool) -> None:
    """75c batcher 1, the payload at its bound: a content whose payload at the chain's farthest
    place is the bound is queued and signed at seq 0; one byte over it is refused by both
    (OVER_LIMIT), though at seq 0 it is 92 bytes smaller (175 when the parent agent named is
    the signer's own, dropped then): one rule whatever the place, so `add` and `sign_record`
    agree and a record signed again later stays within it."""
    held = Held()
    content = _at_the_bound(over, held.identifier if own else Identifier(bytes(32)))
    batcher = TraceBatcher(held.signer)
    batcher.set_head(None)
    if over:
        assert _signing_refusal(content, held) is TraceFailure.OVER_LIMIT
        with pytest.raises(TraceError) as refused:
            batcher.add(content, now=NOW)
        assert refused.value.reason is TraceFailure.OVER_LIMIT
        return
    sign_record(held.signer(), content, seq=0, prev=None, time=NOW)
    batcher.add(content, now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    assert len(batch.items) == 1


@pytest.mark.parametrize(
    "fields",
    [{"kind": "no kind"}, {"decision": "allow"}, {"span": (1, 2)}],
    ids=["kind", "decision", "span"],
)
def test_a_content_that_is_no_records_is_refused_at_add_not_wedging_the_queue(
    fields: dict[str, Any],
) -> None:
    """75c batcher 2: a kind that is not a Kind (or a decision, a span of another type) was
    queued and its signing raised KeyError or AttributeError out of every `next_batch`, the
    record staying first in the queue; now `add` refuses it (MALFORMED), nothing queued, and
    the next record is sent."""
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    with pytest.raises(TraceError) as refused:
        batcher.add(_content(fields), now=NOW)
    assert refused.value.reason is TraceFailure.MALFORMED
    assert batcher.pending() == 0
    batcher.add(_content({}), now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    assert len(batch.items) == 1


def test_a_resolution_naming_no_id_is_queued_under_its_escalations_id_and_signed() -> None:
    """75c batcher 3: a resolution of the escalation whose hash is `_HASH`, naming no id: `add`
    queued it under a fresh id and signing set it aside (MALFORMED, "a resolution's id is its
    escalation's"); now it is queued under `resolution_id(_HASH)` and signed in its batch."""
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    links = Links(parent=_PARENT, parent_hash=_HASH)
    queued = batcher.add(RecordContent(Kind.RESOLUTION, links=links), now=NOW)
    assert queued.record == resolution_id(_HASH)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    assert [item.record for item in batch.items] == [queued.record]
