"""Review 70p (otel3): a third look at the one `SigningSpanProcessor` of a provider and
`SigningSampler`'s mark (reviews 70h, 70j).

otel3 1: the processor's refusals (a GenAI span no agent acts for, one it was not handed as it
started) and, strict, a record the log refused were only raised: from `span.start()` or
`span.end()` to whoever called it. Agent frameworks run a tool inside a handler that turns its
exception into a message for the model (so the agent carries on): a tool call that ran, refused
at its end, left no record and no word anywhere (the warning was `strict=False`'s alone). Each is
now an error on the `troth.trace.otel` logger, naming the span, as it is raised.

otel3 2: `SigningSampler`'s mark (the agent acting where a span starts, for a processor called
in a worker thread) was honoured by any span of its trace and parent that read it first. A span
started under bob on a provider with no signing processor (its mark never read), seen by code
where no agent acts (the span handed on as a parent, a link, a message's context), made that
code's tool call bob's: under a context whose parent carries the mark (the SDK's default sampler
gives a child its parent's trace state), or from a tracer whose sampler (a public attribute)
returns it. A mark is now honoured only for a span whose tracer's sampler made it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, Tracer, TraceState

from tests.test_review70h_otel import Agents, _tool
from troth.trace import otel
from troth.trace.otel import SigningSampler, SigningSpanProcessor

# -- otel3 1: a refusal raised into a framework's tool handler ---------------------------


def _framework_runs(tracer: Tracer, given: dict[str, str], later: dict[str, str]) -> list[str]:
    """A tool run as agent frameworks run one, its exception an answer to the model (the
    agent carries on): the span started with `given`, `later` set as the tool runs. The
    tools that ran."""
    ran: list[str] = []
    try:
        with tracer.start_as_current_span("refund", attributes=given) as span:
            ran.append("refund")
            span.set_attributes(later)
    except Exception as exc:
        ran.append(f"the model is told: {exc}")
    return ran


def _errors_said(
    caplog: pytest.LogCaptureFixture, tracer: Tracer, given: dict[str, str], later: dict[str, str]
) -> list[str]:
    """The tools that ran, each error said on the `troth.trace.otel` logger checked to name
    the span, once."""
    with caplog.at_level(logging.WARNING, logger="troth.trace.otel"):
        ran = _framework_runs(tracer, given, later)
    said = [
        r.getMessage()
        for r in caplog.records
        if r.name == "troth.trace.otel" and r.levelno >= logging.ERROR
    ]
    assert len(said) == 1
    assert "'refund'" in said[0]
    assert ran[-1].startswith("the model is told")
    return ran[:-1]


def _no_default() -> Tracer:
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(None))
    return provider.get_tracer("framework")


def test_otel3_1_a_strict_failure_caught_by_the_framework_is_an_error_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """70p otel3 1: strict, a record the log refuses raised from `span.end()` into the
    framework's handler, and nothing else said the tool call ran unrecorded."""
    agents = Agents(tmp_path)
    refused = _tool("refund", **{"troth.decision": "\x00"})
    assert _errors_said(caplog, agents.tracer, refused, {}) == ["refund"]
    assert agents.signed() == []


def test_otel3_1_a_span_refused_as_it_ends_is_an_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """70p otel3 1: a span named an execute_tool only as its tool ran, where no agent acts,
    under a processor with no default: refused as it ends, the tool having run."""
    assert _errors_said(caplog, _no_default(), {}, _tool("refund")) == ["refund"]


def test_otel3_1_a_span_refused_as_it_starts_is_an_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """70p otel3 1: a GenAI span no agent acts for, refused as it starts (its tool not run):
    the framework told the model the tool failed, and no one else was told."""
    assert _errors_said(caplog, _no_default(), _tool("refund"), {}) == []


# -- otel3 2: an unread mark taken by another span -----------------------------------------


def bobs_unread_span(agents: Agents, sampler: SigningSampler | None = None) -> SpanContext:
    """Bob's tool span (under his agent span) on a provider that marks (with `sampler`) and
    does not sign, its mark never read; as a context of his parent span's ids carrying his
    span's mark."""
    marking = TracerProvider(sampler=sampler or SigningSampler())
    tracer = marking.get_tracer("elsewhere")
    with otel.acting(agents.b):
        parent = tracer.start_span("invoke_agent bob")
        tool = tracer.start_span("execute_tool lookup", trace.set_span_in_context(parent))
    ids, state = parent.get_span_context(), tool.get_span_context().trace_state
    return SpanContext(ids.trace_id, ids.span_id, False, ids.trace_flags, state)


def alices_tool(agents: Agents, tracer: Tracer, parent: SpanContext) -> str:
    """Alice's code, where no agent acts, starts a tool call under `parent`: who signed it."""
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    span = tracer.start_span("execute_tool transfer", context)
    span.set_attributes(_tool("transfer"))
    span.end()
    ((signer, tool),) = agents.signed()
    assert tool == "transfer"
    return "bob" if signer == agents.bob.identity.identifier else "alice"


def test_otel3_2_a_parent_carrying_an_unread_mark_does_not_choose_the_signer(
    tmp_path: Path,
) -> None:
    """70p otel3 2: under a parent of bob's span's trace and parent ids carrying its trace
    state, on a provider whose sampler (the SDK's default) gives a child its parent's trace
    state: alice's tool call was signed by bob's key."""
    agents = Agents(tmp_path)
    forged = bobs_unread_span(agents)
    plain = TracerProvider()
    plain.add_span_processor(SigningSpanProcessor(agents.a))
    assert alices_tool(agents, plain.get_tracer("alice"), forged) == "alice"


class _Hands(Sampler):
    """A sampler set on a tracer (a public attribute) giving every span one trace state."""

    def __init__(self, state: TraceState) -> None:
        self.state = state

    def should_sample(self, *args: object, **kwargs: object) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE, None, self.state)

    def get_description(self) -> str:
        return "hands"


def test_otel3_2_a_tracer_whose_sampler_hands_an_unread_mark_does_not_choose_the_signer(
    tmp_path: Path,
) -> None:
    """70p otel3 2: alice's own tracer of the shared provider, its sampler set to one that
    gives her span bob's unread mark, under a parent of bob's span's ids: signed by bob."""
    agents = Agents(tmp_path)
    forged = bobs_unread_span(agents)
    assert forged.trace_state is not None
    tracer = agents.provider.get_tracer("alice")
    tracer.sampler = _Hands(forged.trace_state)  # type: ignore[attr-defined]
    bare = SpanContext(forged.trace_id, forged.span_id, False, forged.trace_flags)
    assert alices_tool(agents, tracer, bare) == "alice"
