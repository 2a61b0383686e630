"""In: `SigningSpanProcessor(recorder)` added to a `TracerProvider` turns every GenAI span an
agent framework already emits (`execute_tool`, `invoke_agent`) into a signed record when the
span ends (docs/traces.md, "The pieces"), under `SigningSampler` (`troth.trace.otel_sampler`):
a span the sampler drops never ends at a processor (review 57h, otel 1).

Several agents in one process share one provider (the global one) and one processor: the host
program names the agent whose work a span is, `with acting(recorder):` around that agent's
work, and the span is signed by that agent's recorder (review 70h, otel 1). The agent acting is
a context variable read as the span starts: an asyncio task started inside `acting` inherits it
(a task copies the context it is made in), and so does a function run by `asyncio.to_thread`
or `contextvars.copy_context().run`; a `threading.Thread` or a `ThreadPoolExecutor` task
(`loop.run_in_executor`) does not, and its spans are the processor's default recorder's unless
it enters `acting` itself. Never the span's attributes: `gen_ai.agent.id` is set by
instrumentation an agent controls, and choosing the signer by it would let a span name the key
that signs it, or keep a tool call out of every log (review 57h).

Two SigningSpanProcessors on one provider signed every span twice, each as its own agent's: the
SDK names a provider's processors only in private attributes, but it hands every processor of
a provider the same span object as the span starts, so the second processor to be handed a
span another already took raises ConfigError there, before any tool of the span ran and before
any record (`_claim`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, NamedTuple

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from troth import limits
from troth.errors import ArgumentError, ConfigError, TrothError
from troth.trace.otel_content import span_content
from troth.trace.otel_names import EXECUTE_TOOL, GEN_AI_OPERATION_NAME, INVOKE_AGENT, READ
from troth.trace.recorder import TraceRecorder

__all__ = ["SigningSpanProcessor", "acting"]

_LOG: Final = logging.getLogger("troth.trace.otel")
_ACTING: Final[ContextVar[TraceRecorder | None]] = ContextVar("troth_acting", default=None)
_CLAIMS: Final[weakref.WeakKeyDictionary[Span, SpanProcessor]] = weakref.WeakKeyDictionary()
"""The SigningSpanProcessor each live span was handed to (`_claim`)."""
_CLAIMS_LOCK: Final = threading.Lock()


@contextmanager
def acting(recorder: TraceRecorder) -> Iterator[TraceRecorder]:
    """Within it (this thread or task, and the tasks it starts), the spans started are
    `recorder`'s: a `SigningSpanProcessor` on any provider signs them with it, not with its
    own default (review 70h, otel 1). Nested, the innermost acts; on leaving, the one before."""
    if not isinstance(recorder, TraceRecorder):
        raise ArgumentError("acting", "recorder", "a TraceRecorder", type(recorder).__name__)
    token = _ACTING.set(recorder)
    try:
        yield recorder
    finally:
        _ACTING.reset(token)


class _Started(NamedTuple):
    """What `on_start` keeps of a span for `on_end`: the attributes it reads as they started,
    and the recorder acting as it started (None: none, the processor's own)."""

    attributes: Mapping[str, Any]
    agent: TraceRecorder | None


def _claim(span: Span, processor: SpanProcessor) -> None:
    """Take `span` for `processor`, ConfigError when a SigningSpanProcessor (`processor`
    itself, added twice) already took it: every processor of a provider is handed the same span
    object as it starts, and no span of another provider (review 70h, otel 1). Kept while the
    span lives (weakly): its processors are all handed it before it is returned."""
    with _CLAIMS_LOCK:
        taken = span in _CLAIMS
        if not taken:
            _CLAIMS[span] = processor
    if taken:
        raise ConfigError(
            "a TracerProvider has two SigningSpanProcessors (or one added twice): each would "
            "sign every span as its own agent's; give the provider one and name the agent "
            "whose work a span is with `troth.trace.otel.acting(recorder)`"
        )


class SigningSpanProcessor(SpanProcessor):
    """Signs every GenAI span (execute_tool, invoke_agent) as a record when it ends: every one
    its provider's sampler records, so give the provider `SigningSampler` (review 57h, otel 1:
    under the SDK's default, a tool call under an unsampled remote parent was never signed).
    Add it before the provider's other processors: the SDK stops at the first that raises, and
    one that exports as a span ends holds the signing until it returns (review 66j, otel 1).

    `strict` (default): a record the log refuses raises from `span.end()`, as an agent that
    cannot keep its audit trail should stop; otherwise the failure is counted in `failures`
    and warned of on the `troth.trace.otel` logger (review 69q, otel 3).

    One per provider, whatever the agents: a span is signed by the recorder the host program
    made acting (`acting`) where the span started, else by `recorder`, never by what the span's
    attributes say (`gen_ai.agent.id` is the instrumentation's word: review 57h). A second
    SigningSpanProcessor on the provider raises ConfigError as the first span starts (review
    70h, otel 1: every processor signed every span, one agent's key another's step, each span
    once per agent)."""

    def __init__(self, recorder: TraceRecorder, *, strict: bool = True) -> None:
        self.recorder = recorder
        self.strict = strict
        self.failures = 0
        self.recorded = 0
        self._started: dict[tuple[int, int], _Started] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """The agent acting as the span starts (`acting`, in the thread or task that starts
        it), and what of the span's attributes at its start the processor reads (`READ`),
        kept until it ends (or is dropped unended) for `on_end` (review 57h, otel 3).
        ConfigError when another SigningSpanProcessor (or this one again) was given the span:
        two on one provider (`_claim`)."""
        _claim(span, self)
        agent = _ACTING.get()
        given = span.attributes or {}
        kept = {key: given[key] for key in READ if key in given}
        if kept or agent is not None:
            key = (span.context.trace_id, span.context.span_id)
            self._started[key] = _Started(kept, agent)
            weakref.finalize(span, self._started.pop, key, None)

    def on_end(self, span: ReadableSpan) -> None:
        """The span signed as a record (`span_content`) when it is a GenAI span, read from its
        attributes as it ends over those it started with: the SDK drops a span's oldest
        attributes past its limit (128), and a span given an attribute per tool argument lost
        its operation (no record) or its `troth.decision` (a denial signed as an allowed call;
        review 57h, otel 3). A value set later and then dropped reads as it started."""
        attributes: Mapping[str, Any] = span.attributes or {}
        context = span.context
        started = (
            None
            if context is None
            else self._started.pop((context.trace_id, context.span_id), None)
        )
        signer = self.recorder
        if started is not None:
            attributes = {**started.attributes, **attributes}
            signer = signer if started.agent is None else started.agent
        operation = attributes.get(GEN_AI_OPERATION_NAME)
        if operation not in (EXECUTE_TOOL, INVOKE_AGENT):
            return
        try:
            signer.record(span_content(span, attributes, operation))
            self.recorded += 1
        except (TrothError, ValueError) as exc:
            self.failures += 1
            if self.strict:
                raise
            # a loss said where an operator looks, not only counted (review 69q, otel 3)
            name = span.name  # cut: a tool's name may be any text (review 69x, wave4c 3)
            shown = limits.OTEL_SHOWN_NAME
            _LOG.warning(
                "span %r%s (trace %s, span %s) not signed, no record of it: %s",
                name[:shown],
                f" (of {len(name)} characters)" if len(name) > shown else "",
                "-" if context is None else f"{context.trace_id:032x}",
                "-" if context is None else f"{context.span_id:016x}",
                exc,
            )

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every record is durable when on_end returns
