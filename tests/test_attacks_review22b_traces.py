"""Review 22b (traces): what a file hands `troth trace verify --file` — proof bundles and JSONL
export lines, checked against the limits the producer keeps (troth.limits).

1. a record at the log's own limits (each redactable field's canonical JSON at most
   MAX_TRACE_DISCLOSURE_BYTES, kept as UTF-8) is exported with `json.dumps`' default
   `ensure_ascii`: a non-ASCII character becomes a `\\uXXXX` escape (Cyrillic: 2 bytes -> 6),
   so three such fields make a line over MAX_TRACE_LINE_BYTES, which `verify_bundle` (and the
   CLI's line reader) refuse. The log accepts the record (a member's batch of it fits one
   service message), and `verify_export` stops at the first refused line: every export of the
   log, and that record's `prove` bundle, no longer verify.

Each test asserts the correct behaviour and was a strict xfail until its fix.
"""

from __future__ import annotations

import io
from pathlib import Path

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.trace.export import bundle_text, export_jsonl, prove, verify_bundle, verify_export
from troth.trace.record import disclosure_value

# -- 1. an export line of a record at the disclosure limit ------------------------------------


def _at_the_limit() -> str:
    """A text whose canonical JSON is MAX_TRACE_DISCLOSURE_BYTES exactly: 2-byte characters."""
    value = "ж" * ((limits.MAX_TRACE_DISCLOSURE_BYTES - 2) // 2)
    if len(disclosure_value(value)) != limits.MAX_TRACE_DISCLOSURE_BYTES:
        raise AssertionError("the value is not at the limit")
    return value


def test_an_export_line_of_a_record_at_the_disclosure_limit_verifies(tmp_path: Path) -> None:
    """A Russian-speaking agent's tool call: arguments and result each a text at the
    disclosure limit, inputs the rest of what one record discloses (the log takes it; three at
    the limit are over MAX_TRACE_RECORD_DISCLOSURE_BYTES since review 47b, limits 1). Its
    JSONL export line and its proof bundle verify."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    value = _at_the_limit()
    rest = "ж" * ((limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES - 2 * len(value.encode()) - 6) // 2)
    record = tool_call(args=value, result=value, inputs=rest)
    receipt = recorder(log, Held(), clock).record(record)
    out = io.StringIO()
    export_jsonl(log, out)
    lines = out.getvalue().encode().splitlines()
    assert len(lines) == 1
    assert verify_export(lines).records == 1

    bundle = bundle_text(prove(log, receipt.record), lines=True).encode()  # as `trace prove` writes
    assert verify_bundle(bundle).index == receipt.index
