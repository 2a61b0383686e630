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
it enters `acting` itself (a processor made without a default recorder, `recorder` None,
refuses such a span: review 70j, otel 4). `SigningSampler`, which the SDK calls in the thread
starting a span, marks its trace state with the agent acting there (`mark`), so a provider whose
processors run in worker threads (`ConcurrentMultiSpanProcessor`) signs with it all the same.
Never the span's attributes: `gen_ai.agent.id` is set by instrumentation an agent controls, and
choosing the signer by it would let a span name the key that signs it, or keep a tool call out
of every log (review 57h).

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
from opentelemetry.trace import TraceState, get_current_span

from troth import limits
from troth.errors import ArgumentError, ConfigError, TrothError
from troth.trace.otel_content import span_content
from troth.trace.otel_names import EXECUTE_TOOL, GEN_AI_OPERATION_NAME, INVOKE_AGENT, READ
from troth.trace.recorder import TraceRecorder

__all__ = ["SigningSpanProcessor", "acting"]

_SIGNED: Final = (EXECUTE_TOOL, INVOKE_AGENT)
"""The GenAI operations `SigningSpanProcessor` signs."""

_LOG: Final = logging.getLogger("troth.trace.otel")


class _Block:
    """One `acting` block: its agent, removed from the agents acting when the block is left."""

    __slots__ = ("recorder",)

    def __init__(self, recorder: TraceRecorder) -> None:
        self.recorder = recorder


_ACTING: Final[ContextVar[tuple[_Block, ...]]] = ContextVar("troth_acting", default=())
"""The `acting` blocks open here, innermost last (review 70j, otel 3: by block, not a token)."""
_CLAIMS: Final[weakref.WeakKeyDictionary[Span, SpanProcessor]] = weakref.WeakKeyDictionary()
"""The SigningSpanProcessor each live span was handed to (`_claim`)."""
_CLAIMS_LOCK: Final = threading.Lock()


@contextmanager
def acting(recorder: TraceRecorder) -> Iterator[TraceRecorder]:
    """Within it (this thread or task, and the tasks it starts), the spans started are
    `recorder`'s: a `SigningSpanProcessor` on any provider signs them with it, not with its
    own default (review 70h, otel 1). Nested, the innermost block still open acts; leaving a
    block removes its agent wherever it stands, so blocks left out of order (callbacks, an
    `ExitStack` unwound by hand) leave no agent acting once all are left (review 70j, otel 3:
    the second left restored the agent the first had replaced). ConfigError when left where
    it is not open: in another thread or task than it was entered in (its agent there is not
    removed), or the context variable was set over it."""
    if not isinstance(recorder, TraceRecorder):
        raise ArgumentError("acting", "recorder", "a TraceRecorder", type(recorder).__name__)
    block = _Block(recorder)
    _ACTING.set((*_ACTING.get(), block))
    try:
        yield recorder
    finally:
        blocks = _ACTING.get()
        if block not in blocks:
            raise ConfigError(
                "troth.trace.otel.acting was left where it is not open here: in another thread "
                "or task than it was entered in, or the agents acting were replaced in it"
            )
        _ACTING.set(tuple(open_ for open_ in blocks if open_ is not block))


def acting_now() -> TraceRecorder | None:
    """The agent acting here (`acting`): the innermost block open, None when none is."""
    blocks = _ACTING.get()
    return blocks[-1].recorder if blocks else None


def signed_at_start(name: str, attributes: Mapping[str, Any] | None) -> bool:
    """Whether a span about to start is one `SigningSpanProcessor` signs: its operation given
    at start (the conventions ask for it then, for samplers), else its name's first word (the
    conventions name it `{operation} {target}`; an operation set later still needs the span
    recording)."""
    given = None if attributes is None else attributes.get(GEN_AI_OPERATION_NAME)
    if given is not None:  # compared, not hashed: a list given is no error (and not signed)
        return any(given == operation for operation in _SIGNED)
    return name.split(" ", 1)[0] in _SIGNED


class _Marked(TraceState):
    """A span's trace state as `SigningSampler` returns it, made in the thread that starts the
    span (the SDK samples there, before the span exists, and gives the span that very
    object): the inner sampler's entries (what propagates is unchanged) and the agent acting
    there. A provider made with `ConcurrentMultiSpanProcessor` hands `on_start` the span in a
    worker thread, where no agent acts: the mark says who did (review 70j, closing 70h otel 2).
    Read once, by the span it was made for: its trace and parent, and made by the sampler of
    the span's tracer. A child span given its parent's trace state by a sampler that does not
    mark is not taken for its parent (review 70j); nor is a span given a mark no processor read
    (its span on a provider that does not sign), under a parent of the same ids carrying it or
    from a tracer whose sampler (a public attribute) hands it on (review 70p, otel3 2: it was
    signed by the mark's agent). The SDK names a span's sampler only in a private attribute
    (`_sampler`): without it no mark is honoured, and the agent is the one acting where
    `on_start` runs (the thread starting the span, unless the provider calls its processors
    in worker threads)."""

    def __init__(
        self,
        entries: TraceState | None,
        agent: TraceRecorder | None,
        made: tuple[object, int, int | None],
    ) -> None:
        super().__init__(None if entries is None else list(entries.items()))
        self._agent = agent
        self._by, self._trace, self._parent = made
        self._read = False
        self._lock = threading.Lock()

    def take(self, span: Span) -> tuple[bool, TraceRecorder | None]:
        """Whether the mark is `span`'s (made as it started by its tracer's sampler, not read
        before), and its agent, forgotten by the mark as it is read: a span's trace state is
        seen by any code under the span, and is no way to the agent's recorder."""
        parent = None if span.parent is None else span.parent.span_id
        made = (getattr(span, "_sampler", None), span.context.trace_id, parent)
        with self._lock:  # the sampler itself (`is`), not one that says it is equal
            ours = (
                not self._read and made[0] is self._by and made[1:] == (self._trace, self._parent)
            )
            agent = self._agent if ours else None
            if ours:
                self._read, self._agent = True, None
        return ours, agent


def mark(
    sampler: object, entries: TraceState | None, trace_id: int, parent_context: Context | None
) -> TraceState:
    """The trace state `sampler` (a `SigningSampler`) gives a span it records (`_Marked`):
    `entries`, and the agent acting where the span is starting (this thread or task)."""
    parent = get_current_span(parent_context).get_span_context()
    made = (sampler, trace_id, parent.span_id if parent.is_valid else None)
    return _Marked(entries, acting_now(), made)


def _agent(span: Span) -> TraceRecorder | None:
    """The agent acting where `span` started: its mark's when it has one of its own (on_start
    may run in another thread), else the one acting here."""
    state = span.context.trace_state
    if isinstance(state, _Marked):
        ours, agent = state.take(span)
        if ours:
            return agent
    return acting_now()


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
        raise _said(
            span,
            _AT_START,
            ConfigError(
                "a TracerProvider has two SigningSpanProcessors (or one added twice): each "
                "would sign every span as its own agent's; give the provider one and name the "
                "agent whose work a span is with `troth.trace.otel.acting(recorder)`"
            ),
        )


_AT_START: Final = "refused as it starts, its tool not to run"
_AT_END: Final = "refused as it ends, no record of it"
_LOST: Final = "not signed, no record of it"


def _said(span: ReadableSpan, what: str, exc: Exception, level: int = logging.ERROR) -> Exception:
    """`exc`, said on the `troth.trace.otel` logger too, naming the span (its name cut to
    OTEL_SHOWN_NAME characters: a tool's name may be any text, review 69x, wave4c 3), its
    trace and span ids, and `what` became of it. An error raised from `span.start()` or
    `span.end()` reaches only their caller, and agent frameworks run a tool in a handler that
    turns its exception into an answer to the model: a tool call refused or not signed, the
    tool having run, was said nowhere (review 70p, otel3 1; review 69q, otel 3: under
    `strict=False` a loss is a warning)."""
    name, shown, context = span.name, limits.OTEL_SHOWN_NAME, span.context
    _LOG.log(
        level,
        "span %r%s (trace %s, span %s) %s: %s",
        name[:shown],
        f" (of {len(name)} characters)" if len(name) > shown else "",
        "-" if context is None else f"{context.trace_id:032x}",
        "-" if context is None else f"{context.span_id:016x}",
        what,
        exc,
    )
    return exc


def _no_agent(name: str) -> ConfigError:
    return ConfigError(
        f"span {name[: limits.OTEL_SHOWN_NAME]!r} started where no agent acts, and the "
        "SigningSpanProcessor has no default recorder: start it within "
        "`troth.trace.otel.acting(recorder)` (a thread: copy the context it is started in)"
    )


class SigningSpanProcessor(SpanProcessor):
    """Signs every GenAI span (execute_tool, invoke_agent) as a record when it ends: every one
    its provider's sampler records, so give the provider `SigningSampler` (review 57h, otel 1:
    under the SDK's default, a tool call under an unsampled remote parent was never signed).
    Add it before the provider's other processors: the SDK stops at the first that raises, and
    one that exports as a span ends holds the signing until it returns (review 66j, otel 1).

    `strict` (default): a record the log refuses raises from `span.end()`, as an agent that
    cannot keep its audit trail should stop; otherwise the failure is counted in `failures`
    and warned of on the `troth.trace.otel` logger (review 69q, otel 3). Every error it raises
    (a strict failure, a refusal) is an error on that logger as well (review 70p, otel3 1: an
    agent framework's tool handler kept it from anyone but the model).

    One per provider, whatever the agents: a span is signed by the recorder the host program
    made acting (`acting`) where the span started, else by `recorder`, never by what the span's
    attributes say (`gen_ai.agent.id` is the instrumentation's word: review 57h). A second
    SigningSpanProcessor on the provider raises ConfigError as the first span starts (review
    70h, otel 1: every processor signed every span, one agent's key another's step, each span
    once per agent). `recorder` None (a host of several agents): no default, and a GenAI span
    started where no agent acts (a plain thread, an executor task: any agent's own code can
    start one there) is refused, ConfigError as it starts (as it ends, when it is named a GenAI
    operation only after its start), not signed by an agent whose work it need not be (review
    70j, otel 4)."""

    def __init__(self, recorder: TraceRecorder | None, *, strict: bool = True) -> None:
        if recorder is not None and not isinstance(recorder, TraceRecorder):
            given = type(recorder).__name__
            expected = "a TraceRecorder or None"
            raise ArgumentError("SigningSpanProcessor", "recorder", expected, given)
        self.recorder = recorder
        self.strict = strict
        self.failures = 0
        self.recorded = 0
        self._started: dict[tuple[int, int], _Started] = {}
        """Each span handed to `on_start` and not yet ended, by its trace and span ids."""
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """The agent acting as the span starts (`acting`, in the thread or task that starts
        it), and what of the span's attributes at its start the processor reads (`READ`),
        kept until it ends (or is dropped unended) for `on_end` (review 57h, otel 3).
        ConfigError when another SigningSpanProcessor (or this one again) was given the span:
        two on one provider (`_claim`); or when a span of its trace and span ids is open: ids
        are no span's own (a tracer's id generator is a public attribute of it), and the
        second span took the first one's agent (review 70j, otel 1)."""
        _claim(span, self)
        given = span.attributes or {}
        started = _Started({key: given[key] for key in READ if key in given}, _agent(span))
        if started.agent is None and self.recorder is None and signed_at_start(span.name, given):
            raise _said(span, _AT_START, _no_agent(span.name))
        key = (span.context.trace_id, span.context.span_id)
        with self._lock:
            taken = key in self._started
            if not taken:
                self._started[key] = started
        if taken:
            repeated = ConfigError(
                f"a span started with the trace and span ids of a span still open (trace "
                f"{key[0]:032x}, span {key[1]:016x}): its tracer's id generator repeats ids"
            )
            raise _said(span, _AT_START, repeated)
        weakref.finalize(span, self._forget, key, started)

    def _forget(self, key: tuple[int, int], started: _Started) -> None:
        """A span dropped unended: its entry, not a later span's of the same ids."""
        with self._lock:
            if self._started.get(key) is started:
                del self._started[key]

    def on_end(self, span: ReadableSpan) -> None:
        """The span signed as a record (`span_content`) when it is a GenAI span, read from its
        attributes as it ends over those it started with: the SDK drops a span's oldest
        attributes past its limit (128), and a span given an attribute per tool argument lost
        its operation (no record) or its `troth.decision` (a denial signed as an allowed call;
        review 57h, otel 3). A value set later and then dropped reads as it started.
        ConfigError (whatever `strict`) for a GenAI span this processor was not handed as it
        started (added to the provider while it was open): whose it is is unknown, and a second
        processor added so signed it as its own agent's (review 70j, otel 2)."""
        attributes: Mapping[str, Any] = span.attributes or {}
        context = span.context
        with self._lock:
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
        if operation not in _SIGNED:
            return
        if started is None:
            unseen = ConfigError(
                f"span {span.name[: limits.OTEL_SHOWN_NAME]!r} was not handed to this "
                "SigningSpanProcessor as it started (added to the provider while the span was "
                "open): whose work it is is unknown; add the processor before spans start"
            )
            raise _said(span, _AT_END, unseen)
        if signer is None:
            raise _said(span, _AT_END, _no_agent(span.name))
        try:
            signer.record(span_content(span, attributes, operation))
            self.recorded += 1
        except (TrothError, ValueError) as exc:
            self.failures += 1
            # a loss said where an operator looks, not only counted (review 69q, otel 3),
            # raised too when strict: not only to a caller that may keep it from anyone
            _said(span, _LOST, exc, logging.ERROR if self.strict else logging.WARNING)
            if self.strict:
                raise

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every record is durable when on_end returns
