"""Review 62b: attacks on trace collection, exports and their rendering that did not work.

Each test is a real attempt that fails if the defence it pins breaks: one member's batch sent
to the collector again and again (its log, its answers, the service's memory of the member), a
denied tool call under a sampler that drops every span, and a tool name carrying a newline
or a terminal escape into a `trace show` line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review27t_collect import _batch, _collector
from tests.test_review46a_traces import _member_context, _service
from tests.test_review62b_traces import denials_signed
from troth import limits
from troth.cli.trace_cmds import _tree_line
from troth.clock import FixedClock
from troth.errors import RemoteError
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.otel import SigningSampler, SigningSpanProcessor
from troth.trace.signing import open_envelope
from troth.trace.submit import Receipts, Status
from troth.trace.view import TraceNode


def test_a_batch_replayed_until_busy_appends_once_and_leaves_one_budget(tmp_path: Path) -> None:
    """A member sends one batch as fast as its byte budget lets it: the first is appended,
    every other answered `already` at the same index; the log holds one record, the service
    no submission in progress and one byte budget (the member's), and past the budget the
    member is told `busy` (nothing else grows per replay)."""
    world, log, collector = _collector(tmp_path)
    service = _service(collector)
    context = _member_context(world, log.clock.now())
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("read"))
    submission = _batch(collector, world.support.signer, content).to_cbor()
    most = limits.TRACE_SUBMIT_BURST_BYTES // limits.TRACE_SUBMIT_CHARGE
    answers = []
    refusal = ""
    for _ in range(most + 1):
        try:
            answer = asyncio.run(service.submit(submission, context))
        except RemoteError as exc:
            refusal = str(exc)
            break
        answers.append(Receipts.from_cbor(answer, expected=1).results[0])
    assert "busy" in refusal
    assert len(answers) == most
    assert [(a.status, a.index) for a in answers[:2]] == [(Status.APPENDED, 0), (Status.ALREADY, 0)]
    assert {(a.status, a.index) for a in answers[1:]} == {(Status.ALREADY, 0)}
    assert log.size() == 1
    assert service._busy == {}
    assert len(service._rates) == 1


def test_a_denied_tool_call_is_signed_under_a_sampler_that_drops_every_span(
    tmp_path: Path,
) -> None:
    """The app's sampler drops every span (ALWAYS_OFF); a denied execute_tool span (its
    decision given at start, as a gate's instrumentation sets it) is recorded all the same,
    as a denial, and not exported as sampled."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock))
    provider = TracerProvider(sampler=SigningSampler(ALWAYS_OFF))
    provider.add_span_processor(processor)
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "refund",
        "troth.decision": "deny",
    }
    with provider.get_tracer("agent").start_as_current_span(
        "execute_tool refund", attributes=attributes
    ) as span:
        assert not span.get_span_context().trace_flags.sampled
    (entry,) = list(log.stored())
    record = open_envelope(entry.envelope)[0]
    assert record.kind is Kind.DENIAL
    assert record.decision is not None
    assert record.decision.outcome == "deny"


def test_a_tool_name_with_a_newline_or_an_escape_is_no_shown_text(tmp_path: Path) -> None:
    """A caller asks a gate for tools named with a newline (a forged second line) and with a
    terminal escape: each denial names the placeholder tool, the name itself kept in the
    record's inputs, and its `trace show` line is one line without control characters."""
    names = ["x\n#7  admin  tool_invocation  tool refund", "x\x1b[2Kallow"]
    for index, record in enumerate(denials_signed(tmp_path, *names)):
        assert record.kind is Kind.DENIAL
        assert record.tool == ToolCall("(not a tool name)")
        assert "inputs" in record.digests
        line = _tree_line(TraceNode(index, record, None), {}, 0, None)
        assert line.isprintable()
        assert names[index] not in line
