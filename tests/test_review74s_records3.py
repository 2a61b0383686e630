"""Review 74s, records3: 74p's lease-to-decision link and deep-value errors, attacked.

records3 1: `TraceBatcher.add` (the in-memory `TraceClient`'s queue) checked only that a value
encodes as JSON, where signing also refuses a value an export cannot carry (nested past
MAX_JSON_DEPTH - 3 levels, a noncharacter) or one over MAX_TRACE_DISCLOSURE_BYTES: `record()`
returned as if recorded and the record failed only when its batch was signed (`Queued.error`,
which a caller that fails closed on `record()` never reads), where the node's durable outbox,
signing at `add`, refuses it at once (TraceError MALFORMED). Now `add` refuses what signing
would (MALFORMED), nothing queued.

records3 2: the same for values together over MAX_TRACE_RECORD_DISCLOSURE_BYTES: `add` queued
them, signing set the record aside (OVER_LIMIT) once sent. Now `add` refuses it, OVER_LIMIT.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.traces import NOW, Held
from tests.test_review74p_records2 import nested
from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.batcher import TraceBatcher


@pytest.mark.parametrize(
    "value",
    [nested(30), {"note": "\ufdd0"}, "a" * limits.MAX_TRACE_DISCLOSURE_BYTES],
    ids=["deep", "nonchar", "over-256k"],
)
def test_the_batcher_refuses_at_add_what_signing_refuses(value: Any) -> None:
    """74s records3 1: a value 30 lists deep, or holding a noncharacter, is JSON that no
    export carries; one over MAX_TRACE_DISCLOSURE_BYTES (its quotes beside its 256 KiB) no
    disclosure holds: `TraceBatcher.add` queued it (the record failed only once sent); now
    TraceError MALFORMED at add, nothing queued, and the next record is queued."""
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"v": value})
    with pytest.raises(TraceError) as refused:
        batcher.add(content, now=NOW)
    assert refused.value.reason is TraceFailure.MALFORMED
    assert batcher.pending() == 0
    batcher.add(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t")), now=NOW)
    assert batcher.pending() == 1


def test_the_batcher_refuses_at_add_values_over_the_record_bound() -> None:
    """74s records3 2: three values together one byte over MAX_TRACE_RECORD_DISCLOSURE_BYTES
    (each within MAX_TRACE_DISCLOSURE_BYTES): `add` queued the record, signing set it aside
    once sent; now TraceError OVER_LIMIT at add, nothing queued."""
    bound = limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES
    each = bound // 3  # canonical JSON: the string and its 2 quotes
    rest = bound + 1 - 2 * each  # the third value's bytes: one more than the bound leaves
    values = {"args": "a" * (each - 2), "result": "b" * (each - 2), "inputs": "c" * (rest - 2)}
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values=values)
    with pytest.raises(TraceError) as refused:
        batcher.add(content, now=NOW)
    assert refused.value.reason is TraceFailure.OVER_LIMIT
    assert batcher.pending() == 0
