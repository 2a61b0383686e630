"""Review 75k, batcher2: the batcher's encoded path and one typed error for bad input.

75k batcher2 1: `sign_record(encoded=)` was a public keyword that signed the caller's bytes as
checked: bytes that are no JSON (or not the canonical JSON of the content's values) were
committed to and signed, a record no check saw (a collector then refuses its disclosure). Now
`sign_record` takes no such keyword; the batcher signs its checked bytes through signing's
internal `_sign`, as `sign_next` does (no call more on the counted path).

75k batcher2 2: `TraceBatcher.add` handed the caller its `Queued` holding the values'
checked bytes in a plain dict (`Queued.encoded`): a caller writing into it had `next_batch`
sign bytes no check saw. Now the batcher keeps them read-only and private (`Queued._encoded`).

75k batcher2 3: on untyped input (a kind that is no `Kind`, a decision that is no `Decision`,
a value named by no string, values or content that are None, a member that is no
`Identifier`) `sign_record` and the outbox's `add` raised a raw KeyError or AttributeError,
and the batcher's `add` too for some, where it says MALFORMED for the rest. Now each raises
TraceError MALFORMED (signing's also a ValueError, as its other refusals of the content).

75k batcher2 4: `TraceBatcher.add` queued a record under a delegation chain that is no bytes
(a str), and `next_batch` raised TypeError hashing it, every batch, the record first in the
queue: no record after it was ever sent (the outbox stored it as text). Both refuse it at
`add` (MALFORMED).

75k batcher2 6: the `Queued` a trace client's `record` returns (its caller may keep it) held
its values' canonical JSON (up to MAX_TRACE_RECORD_DISCLOSURE_BYTES) long after the record was
delivered; the batcher now lets them go when the record is answered.

75k batcher2 5: a record within MAX_TRACE_PAYLOAD_BYTES at its own place but over it at the
chain's farthest one was refused "payload of up to N bytes", N over the size the caller
could measure, without saying why. The refusal now names the rule (the farthest place).

75k batcher2 7 (fixed in review 75n, payload 1): a gate's recorder kept up to 64 deciding policy
ids of up to 256 characters in a record's payload, over 16 KiB: such a decision was never
recorded and the call failed closed. The recorder now keeps the first ids within
MAX_TRACE_POLICY_BYTES (`held_policies`); every id is in the result it discloses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held
from tests.test_review75c_batcher import _at_the_bound
from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.gates import DecisionRecord, Outcome, PolicyDecision
from troth.gates import ToolCall as GateCall
from troth.identity import Identifier
from troth.storage import SqliteDatabase
from troth.trace import Kind, RecordContent, ToolCall, sign_record
from troth.trace.adapters import decision_content
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox
from troth.trace.signing import check_content
from troth.trace.submit import Head, Receipts, Status, SubmitResult

_TOOL = ToolCall("t")


def _batcher(held: Held) -> TraceBatcher:
    batcher = TraceBatcher(held.signer)
    batcher.set_head(None)
    return batcher


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[tuple[Held, TraceOutbox]]:
    held = Held()
    db = SqliteDatabase(tmp_path / "node.db")
    box = TraceOutbox(db, held.identifier, held.signer)
    yield held, box
    box.close()
    db.close()


def test_sign_record_signs_no_bytes_the_caller_gives_for_the_values() -> None:
    """75k batcher2 1: `sign_record(..., encoded={"args": b"{not json"})` returned a record
    committing to bytes that are no JSON (no check saw them); now no public call signs a
    caller's bytes for the values."""
    content = RecordContent(Kind.TOOL_INVOCATION, tool=_TOOL)
    signed: Any = None
    with contextlib.suppress(TypeError, TraceError, ValueError):
        signed = sign_record(  # type: ignore[call-arg]
            Held().signer(), content, seq=0, prev=None, time=NOW, encoded={"args": b"{not json"}
        )
    assert signed is None


def test_the_queued_values_handed_to_the_caller_cannot_be_changed_before_signing() -> None:
    """75k batcher2 2: writing into the checked bytes the `Queued` from `add` held
    (`queued.encoded["args"] = ...`) had `next_batch` sign them; now what is signed is what
    `add` checked."""
    held = Held()
    batcher = _batcher(held)
    queued = batcher.add(
        RecordContent(Kind.TOOL_INVOCATION, tool=_TOOL, values={"args": "ok"}), now=NOW
    )
    for name in ("encoded", "_encoded"):
        kept = getattr(queued, name, None)
        if kept is not None:
            with contextlib.suppress(TypeError):
                kept["args"] = b"{not json"
    batch = batcher.next_batch(NOW)
    assert batch is not None
    assert batch.submission.records[0].disclosures["args"].value == b'"ok"'


_UNTYPED: dict[str, tuple[Any, dict[str, Any]]] = {
    "kind": (RecordContent("no kind", tool=_TOOL), {}),  # type: ignore[arg-type]
    "decision": (RecordContent(Kind.DECISION, decision="allow"), {}),  # type: ignore[arg-type]
    "value-name": (RecordContent(Kind.TOOL_INVOCATION, tool=_TOOL, values={1: "x"}), {}),  # type: ignore[dict-item]
    "values-none": (RecordContent(Kind.TOOL_INVOCATION, tool=_TOOL, values=None), {}),  # type: ignore[arg-type]
    "content-none": (None, {}),
    "source": (RecordContent(Kind.TOOL_INVOCATION, tool=_TOOL), {"source": "member"}),
}


def _refusal(call: Callable[[], Any]) -> TraceError:
    with pytest.raises(TraceError) as refused:  # (not a KeyError, AttributeError, TypeError)
        call()
    assert refused.value.reason is TraceFailure.MALFORMED
    return refused.value


@pytest.mark.parametrize("case", list(_UNTYPED), ids=list(_UNTYPED))
def test_untyped_input_is_malformed_at_signing_and_at_each_add(
    case: str, outbox: tuple[Held, TraceOutbox]
) -> None:
    """75k batcher2 3: each untyped content (or member) is TraceError MALFORMED from
    `sign_record` (a ValueError too, as its refusals of a content always were), from the
    batcher's `add` and from the outbox's `add`, nothing queued; before, raw KeyError or
    AttributeError from signing and the outbox, and from the batcher for some."""
    content, extra = _UNTYPED[case]
    held, box = outbox
    if not extra:
        refused = _refusal(lambda: sign_record(held.signer(), content, seq=0, prev=None, time=NOW))
        assert isinstance(refused, ValueError)
    batcher = _batcher(held)
    _refusal(lambda: batcher.add(content, now=NOW, **extra))
    _refusal(lambda: box.add(content, now=NOW, **extra))
    assert batcher.pending() == 0
    assert box.pending() == 0


def test_a_chain_that_is_no_bytes_is_refused_at_add_not_wedging_the_queue(
    outbox: tuple[Held, TraceOutbox],
) -> None:
    """75k batcher2 4: `add(chain="...")` was queued and every `next_batch` raised TypeError
    on it, first in the queue (the outbox stored it as text); now both `add`s refuse it
    (MALFORMED), and the next record is sent."""
    held, box = outbox
    batcher = _batcher(held)
    content = RecordContent(Kind.TOOL_INVOCATION, tool=_TOOL)
    for sink in (batcher, box):
        _refusal(lambda sink=sink: sink.add(content, now=NOW, chain="chain"))  # type: ignore[misc]
        assert sink.pending() == 0
    batcher.add(content, now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    assert len(batch.items) == 1


def test_a_payload_over_the_bound_at_the_farthest_place_says_so() -> None:
    """75k batcher2 6: the `Queued` a trace client's `record` returns (its caller may keep it) held
    its values' canonical JSON (up to MAX_TRACE_RECORD_DISCLOSURE_BYTES) long after the record was
    delivered; the batcher now lets them go when the record is answered.

    75k batcher2 5: a record whose payload is within the bound at seq 0 but over it at the
        chain's farthest place is refused naming that place, not a size the caller cannot find."""
    content = _at_the_bound(1, Identifier(bytes(32)))
    with pytest.raises(TraceError) as refused:
        sign_record(Held().signer(), content, seq=0, prev=None, time=NOW)
    assert refused.value.reason is TraceFailure.OVER_LIMIT
    assert "farthest" in refused.value.detail


def test_an_answered_record_lets_its_values_bytes_go() -> None:
    """75k batcher2 6: the `Queued` that `add` returns (a trace client's `record`, which its
    caller may keep) held its values' canonical JSON (up to MAX_TRACE_RECORD_DISCLOSURE_BYTES)
    for as long as it was kept, long after it was delivered; now the batcher lets them go when
    the record is answered."""
    held = Held()
    batcher = _batcher(held)
    queued = batcher.add(
        RecordContent(Kind.TOOL_INVOCATION, tool=_TOOL, values={"args": "a" * 1000}), now=NOW
    )
    batch = batcher.next_batch(NOW)
    assert batch is not None
    head = Head(0, bytes(32), NOW)
    batcher.answered(Receipts((SubmitResult(Status.APPENDED, 0),), head), now=NOW)
    assert queued.result() == 0
    assert getattr(queued, "_encoded", None) is None
    assert getattr(queued, "encoded", None) is None


def test_a_gate_decision_of_many_long_policy_ids_is_a_record_signing_takes() -> None:
    """75k batcher2 7 (fixed by 75n, payload 1): a decision determined by 64 policies whose
    ids are 256 characters long (each a valid record text, the most a record names) made
    `decision_content` a content `check_content` refused OVER_LIMIT: the gate could never
    record it, and failed closed on every such call."""
    ids = tuple(f"{n:02d}" + "p" * (limits.MAX_TRACE_TEXT - 2) for n in range(64))
    decision = PolicyDecision(False, Outcome.FORBIDDEN, "forbidden", ids, revision=1)
    made = DecisionRecord(NOW, None, GateCall("refund"), decision)
    content, _ = decision_content(made, Held().identifier)
    check_content(content)
