"""Review 70p (otel3): attacks on the one `SigningSpanProcessor` of a provider and
`SigningSampler`'s mark that did not work (they pass): each docstring says what was tried."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ConcurrentMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.test_review70h_otel import ROUNDS, Agents, _tool, each_agent_in_a_thread
from tests.test_review70p_otel3 import alices_tool, bobs_unread_span
from troth.errors import ConfigError
from troth.trace import otel
from troth.trace.otel import SigningSampler, SigningSpanProcessor


class _Together(Sampler):
    """ALWAYS_ON, each call waiting for the other thread's: two spans sampled at once."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        self.barrier.wait(timeout=5)
        return ALWAYS_ON.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "together"


def test_sibling_spans_sampled_at_once_in_two_threads_are_each_their_own_agents(
    tmp_path: Path,
) -> None:
    """Two threads, alice and bob acting, each starting a tool span under ONE parent (same
    trace, same parent id: what a mark is matched by), sampled at the same moment, under a
    provider whose worker threads run `on_start`: each span is its own thread's agent's."""
    agents = Agents(tmp_path)
    provider = TracerProvider(
        sampler=SigningSampler(_Together()),
        active_span_processor=ConcurrentMultiSpanProcessor(2),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SigningSpanProcessor(None))
    agents.tracer = provider.get_tracer("siblings")
    host = TracerProvider().get_tracer("host")  # the parent: another provider's, unsigned
    parent = trace.set_span_in_context(host.start_span("invoke_agent"))

    def work(prefix: str) -> None:
        for n in range(ROUNDS):
            _call_under(agents.tracer, parent, f"{prefix}{n}")

    try:
        each_agent_in_a_thread(agents, work)
    finally:
        provider.shutdown()


def _call_under(tracer: Tracer, context: Context, name: str) -> None:
    tracer.start_span(f"execute_tool {name}", context, attributes=_tool(name)).end()


def _remote(tracestate: str) -> Context:
    return TraceContextTextMapPropagator().extract(
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": tracestate,
        }
    )


def test_an_incoming_tracestate_cannot_name_the_signer(tmp_path: Path) -> None:
    """A caller's `tracestate` header (any entries it likes: troth's names, an agent's id)
    to choose the agent signing a tool call under it: a header is text, a mark an object the
    sampler makes; under a processor with no default the span no agent acts for is refused,
    and where alice acts it is alice's."""
    agents = Agents(tmp_path)
    bob = agents.bob.identity.identifier
    header = f"troth=acting,troth_agent={str(bob).replace(':', '_')[:200]},vendor=x"
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(None))
    with pytest.raises(ConfigError, match="no agent acts"):
        _call_under(provider.get_tracer("x"), _remote(header), "x")
    with otel.acting(agents.a):
        _call_under(agents.tracer, _remote(header), "x")
    assert agents.signed() == [(agents.alice.identity.identifier, "x")]


def test_a_full_incoming_tracestate_is_sent_on_whole(tmp_path: Path) -> None:
    """A caller's `tracestate` of the W3C maximum, 32 entries, to have the sampler's mark take
    an entry's place (or the header's length past 512) and push a vendor's entry out of what is
    propagated: the mark is no entry, the header sent on is the one received."""
    agents = Agents(tmp_path)
    header = ",".join(f"vendor{n}=v{n:02d}" for n in range(32))
    with otel.acting(agents.b):
        span = agents.tracer.start_span("execute_tool x", _remote(header), attributes=_tool("x"))
        child = agents.tracer.start_span("chat model", trace.set_span_in_context(span))
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, trace.set_span_in_context(child))
    child.end()
    span.end()
    assert carrier["tracestate"] == header
    assert agents.signed() == [(agents.bob.identity.identifier, "x")]


def test_a_refusal_in_a_worker_thread_stops_the_tool(tmp_path: Path) -> None:
    """`ConcurrentMultiSpanProcessor` runs `on_start` in its worker threads, to have the
    processor's refusal raised there and lost (the tool run unrecorded): the SDK waits for
    each worker's result and raises its error from `start_span`, before the tool runs."""
    provider = TracerProvider(
        sampler=SigningSampler(),
        active_span_processor=ConcurrentMultiSpanProcessor(2),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SigningSpanProcessor(None))
    ran = []
    try:
        with (
            pytest.raises(ConfigError, match="no agent acts"),
            provider.get_tracer("x").start_as_current_span("execute_tool x", attributes=_tool("x")),
        ):
            ran.append("x")
    finally:
        provider.shutdown()
    assert ran == []


def test_strict_false_does_not_quiet_a_refusal(tmp_path: Path) -> None:
    """`strict=False` (losses counted and warned of) to let a span no agent acts for run
    unrecorded: a refusal is no loss of a record, it raises whatever `strict` says."""
    provider = TracerProvider(sampler=SigningSampler())
    processor = SigningSpanProcessor(None, strict=False)
    provider.add_span_processor(processor)
    with pytest.raises(ConfigError, match="no agent acts"):
        provider.get_tracer("x").start_span("execute_tool x", attributes=_tool("x"))
    assert processor.failures == 0


def test_a_sampler_shared_with_the_marking_provider_makes_a_span_a_mark_of_its_own(
    tmp_path: Path,
) -> None:
    """Review 70p otel3 2's fix honours a mark for a span its tracer's sampler made it for:
    one `SigningSampler` shared by the provider that marked bob's span (no processor read the
    mark) and the signing one, alice's tool call under a parent carrying bob's mark, from a
    tracer of the signing provider and from one whose sampler she set to that very sampler: the
    sampler makes each span a mark of its own, with the agent acting where it starts (none)."""
    for n, own_tracer in enumerate((False, True)):
        (tmp_path / str(n)).mkdir()
        agents = Agents(tmp_path / str(n))
        shared = SigningSampler()
        forged = bobs_unread_span(agents, shared)
        signing = TracerProvider(sampler=shared)
        signing.add_span_processor(SigningSpanProcessor(agents.a))
        tracer = signing.get_tracer("alice")
        if own_tracer:
            tracer = agents.provider.get_tracer("alice")
            tracer.sampler = shared  # type: ignore[attr-defined]
        assert alices_tool(agents, tracer, forged) == "alice"
