"""Review 70j, attacks on one `SigningSpanProcessor` for several agents (review 70h) and on
this review's fixes that did not work (they pass): each docstring says what was tried."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import (
    TracerProvider,
    _Span,  # the span class a tracer makes (not made by hand)
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.test_review70h_otel import (
    Agents,
    _call,
    _run,
    _tool,
    _work,
    concurrent,
    each_agent_in_a_thread,
)
from troth.errors import ConfigError
from troth.trace import otel, otel_processor
from troth.trace.otel import SigningSampler, SigningSpanProcessor
from troth.trace.recorder import TraceRecorder


def test_a_span_ended_in_another_thread_is_the_agent_acting_as_it_started(tmp_path: Path) -> None:
    """A span started under bob, ended in a thread where alice acts: bob's, once."""
    agents = Agents(tmp_path)
    with otel.acting(agents.b):
        span = agents.tracer.start_span("execute_tool refund", attributes=_tool("refund"))

    def end() -> None:
        with otel.acting(agents.a):
            span.end()

    _run([threading.Thread(target=end)])
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]


def test_on_start_called_by_hand_on_an_open_span_changes_nothing(tmp_path: Path) -> None:
    """Code holding the processor handing it bob's open span again, or a span it made itself
    of bob's span's ids, to make the processor take a second processor's part or bob's entry:
    each is refused to the caller, and bob's span is bob's, once."""
    agents = Agents(tmp_path)
    with otel.acting(agents.b):
        bobs = agents.tracer.start_span("execute_tool refund", attributes=_tool("refund"))
    assert isinstance(bobs, SdkSpan)
    with pytest.raises(ConfigError, match="two SigningSpanProcessors"):
        agents.processor.on_start(bobs)
    crafted = _Span("execute_tool wire", context=bobs.get_span_context(), attributes=_tool("w"))
    with pytest.raises(ConfigError, match="ids"):
        agents.processor.on_start(crafted)
    bobs.end()
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]


def test_the_agents_acting_cleared_through_the_contextvars_api_get_no_default_signer(
    tmp_path: Path,
) -> None:
    """Bob's code finding the context variable through `contextvars.copy_context()` (it is
    reachable: any context lists its variables) and clearing it, to have its tool call signed
    by another agent: what it gets is a span no agent acts for, refused by a processor without
    a default (review 70j, otel 4), and the host's block, as it is left, says its agent was
    removed; setting another agent takes that agent's recorder object, which code in the
    process can reach anyway (docs/traces.md: the host's word, not a sandbox)."""
    agents = Agents(tmp_path)
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(None))
    with pytest.raises(ConfigError, match="not open here"), otel.acting(agents.b):
        (var,) = [var for var in contextvars.copy_context() if var.name == "troth_acting"]
        var.set(())
        with pytest.raises(ConfigError, match="no agent acts"):
            _call(provider.get_tracer("x"), "wire")
    assert agents.signed() == []


def test_spans_dropped_unended_leave_nothing_behind(tmp_path: Path) -> None:
    """Thousands of spans started under an agent and dropped unended, to grow what the
    processor keeps per open span: none is kept once they are collected, nor are ended ones."""
    agents = Agents(tmp_path)
    gc.collect()  # earlier tests' spans
    claims = len(otel_processor._CLAIMS)
    with otel.acting(agents.b):
        spans = [agents.tracer.start_span("chat model") for _ in range(5000)]
    assert len(agents.processor._started) == 5000
    del spans
    gc.collect()
    assert (len(agents.processor._started), len(otel_processor._CLAIMS)) == (0, claims)
    _call(agents.tracer, "x")
    assert len(agents.processor._started) == 0


def test_a_task_keeps_the_agent_it_started_under_when_the_host_changes_agent(
    tmp_path: Path,
) -> None:
    """A task started under bob, the host then leaving bob and entering alice, to have the
    task's later spans signed by alice: the task keeps the blocks its context was made with."""
    agents = Agents(tmp_path)

    async def host() -> None:
        ready = asyncio.Event()

        async def bobs() -> None:
            await ready.wait()
            _call(agents.tracer, "refund")

        with otel.acting(agents.b):
            task = asyncio.create_task(bobs())
        with otel.acting(agents.a):
            ready.set()
            await task
            _call(agents.tracer, "lookup")

    asyncio.run(host())
    assert agents.signed() == [
        (agents.bob.identity.identifier, "refund"),
        (agents.alice.identity.identifier, "lookup"),
    ]


def test_acting_left_in_another_thread_is_refused(tmp_path: Path) -> None:
    """`acting` entered in one thread and left in another, to remove the agent there and
    leave it acting where it was entered: refused as it is left."""
    agents = Agents(tmp_path)
    errors: list[Exception] = []

    def host() -> None:  # in a context of its own: the block is never left in it
        block = otel.acting(agents.b)
        block.__enter__()

        def leave() -> None:
            try:
                block.__exit__(None, None, None)
            except ConfigError as exc:
                errors.append(exc)

        _run([threading.Thread(target=leave)])
        _call(agents.tracer, "refund")  # still bob's here

    contextvars.copy_context().run(host)
    assert len(errors) == 1
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]


def test_threads_interleaved_under_a_concurrent_span_processor(tmp_path: Path) -> None:
    """Two threads, each its agent acting, under `ConcurrentMultiSpanProcessor` (whose workers
    run `on_start`), their spans started and ended in turn, to have a worker read the other
    thread's agent: each span is its own thread's agent's (the sampler's mark)."""
    agents = Agents(tmp_path)
    provider = concurrent(agents)
    agents.tracer = provider.get_tracer("concurrent")
    barrier = threading.Barrier(2)
    try:
        each_agent_in_a_thread(agents, lambda prefix: _work(agents, barrier, prefix))
    finally:
        provider.shutdown()


def test_a_child_given_its_parents_mark_is_not_taken_for_its_parent(tmp_path: Path) -> None:
    """A span started under bob on a provider with `SigningSampler` and no signing processor
    (its mark never read), its child started where no agent acts on a provider whose sampler
    does not mark (the SDK's default gives a child its parent's trace state): the child is not
    bob's."""
    agents = Agents(tmp_path)
    marking = TracerProvider(sampler=SigningSampler())
    with otel.acting(agents.b):
        parent = marking.get_tracer("x").start_span("invoke_agent bob")
    plain = TracerProvider()
    plain.add_span_processor(agents.processor)
    context = trace.set_span_in_context(parent)
    plain.get_tracer("y").start_span("execute_tool x", context, attributes=_tool("x")).end()
    assert agents.signed() == [(agents.alice.identity.identifier, "x")]


def test_the_trace_state_sent_on_is_the_inner_samplers(tmp_path: Path) -> None:
    """The sampler's mark on a span's trace state, to see it change what is propagated (the
    `tracestate` header): the same entries, as the inner sampler gave them."""
    agents = Agents(tmp_path)
    propagator = TraceContextTextMapPropagator()
    remote = propagator.extract(
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "vendor=one,other=two",
        }
    )
    with otel.acting(agents.b):
        span = agents.tracer.start_span("execute_tool x", remote, attributes=_tool("x"))
    carrier: dict[str, str] = {}
    propagator.inject(carrier, trace.set_span_in_context(span))
    span.end()
    assert carrier["tracestate"] == "vendor=one,other=two"
    assert agents.signed() == [(agents.bob.identity.identifier, "x")]


def test_the_mark_is_no_way_to_the_agents_recorder(tmp_path: Path) -> None:
    """Code under bob's span (a sub-agent bob calls) reading the span's trace state, which
    `SigningSampler` marks with the agent acting, to reach bob's recorder: the processor took
    it as the span started, and the mark holds it no longer."""
    agents = Agents(tmp_path)
    with otel.acting(agents.b):
        span = agents.tracer.start_span("invoke_agent bob")
    state = span.get_span_context().trace_state
    assert not [value for value in vars(state).values() if isinstance(value, TraceRecorder)]
    span.end()
