"""The sampler of a signing agent's `TracerProvider` (needs `troth[otel]`; docs/traces.md,
"The pieces"): `SigningSpanProcessor` signs a span when it ends, and the SDK hands a
processor only the spans its sampler records. Under the SDK's default sampler
(`ParentBased(ALWAYS_ON)`) a tool call under a remote parent whose W3C `traceparent` says "not
sampled" (flags `00`, which any caller of an instrumented agent chooses), or under a ratio
sampler an operator sets (`OTEL_TRACES_SAMPLER`), was no span at all to the processor: the
tool ran and no record was signed (review 57h, otel 1). `SigningSampler` keeps those spans
recording.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from troth.trace.otel_processor import mark, signed_at_start

__all__ = ["SigningSampler"]


class SigningSampler(Sampler):
    """`inner`'s decision (the app's own sampler; default `ParentBased(ALWAYS_ON)`, the SDK's
    when `OTEL_TRACES_SAMPLER` is unset: that variable is not read here), but a GenAI span it
    drops that `SigningSpanProcessor` signs (execute_tool, invoke_agent) is recorded all the
    same: RECORD_ONLY, so its sampled flag, and so what exporters send and the trace context
    downstream, stay `inner`'s. Every span it records gets `inner`'s trace state marked with
    the agent acting where the span starts (`otel_processor.mark`: the SDK samples in that
    thread, where a `ConcurrentMultiSpanProcessor` runs `on_start` in another; review 70j).
    Use: `TracerProvider(sampler=SigningSampler(app_sampler))`: the provider's own sampler, as
    a mark is honoured only for a span whose tracer's sampler made it (review 70p, otel3 2)."""

    def __init__(self, inner: Sampler | None = None) -> None:
        self.inner = ParentBased(ALWAYS_ON) if inner is None else inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        decided = self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if decided.decision is not Decision.DROP:
            marked = mark(self, decided.trace_state, trace_id, parent_context)
            return SamplingResult(decided.decision, decided.attributes, marked)
        if not signed_at_start(name, attributes):
            return decided
        # a dropped span's result carries no attributes: the span starts with the given ones
        marked = mark(self, decided.trace_state, trace_id, parent_context)
        return SamplingResult(Decision.RECORD_ONLY, attributes, marked)

    def get_description(self) -> str:
        return f"SigningSampler{{{self.inner.get_description()}}}"
