"""Review 70h, attacks on several agents sharing one `TracerProvider` that did not work (they
pass): each docstring says what was tried."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review70h_otel import Agents, _call, _tool
from troth.clock import FixedClock
from troth.errors import ConfigError
from troth.trace import otel, otel_processor
from troth.trace.otel import SigningSampler, SigningSpanProcessor


def test_an_exception_inside_acting_leaves_no_agent_acting(tmp_path: Path) -> None:
    """A tool raising inside `acting(bob)`, to leave bob acting for the spans after it: the
    context variable is reset as `acting` is left, however."""
    agents = Agents(tmp_path)
    with pytest.raises(RuntimeError), otel.acting(agents.b):
        raise RuntimeError("the tool failed")
    _call(agents.tracer, "audit")
    assert agents.signed() == [(agents.alice.identity.identifier, "audit")]


def test_a_span_raising_inside_acting_is_still_the_acting_agents(tmp_path: Path) -> None:
    """A tool call whose span ends by an exception (the SDK ends it as it propagates, still
    inside `acting`): signed by the agent acting as it started, once."""
    agents = Agents(tmp_path)
    with (
        pytest.raises(RuntimeError),
        otel.acting(agents.b),
        agents.tracer.start_as_current_span("execute_tool x", attributes=_tool("x")),
    ):
        raise RuntimeError("the tool failed")
    assert agents.signed() == [(agents.bob.identity.identifier, "x")]


def test_a_second_processor_given_strict_false_is_refused_all_the_same(tmp_path: Path) -> None:
    """A second processor with `strict=False`, to have it sign quietly beside the first: the
    refusal is of the provider's setup, not a record the log refused, so it raises whatever
    `strict` says."""
    agents = Agents(tmp_path)
    other = open_log(tmp_path / "b.db", FixedClock(NOW))
    agents.provider.add_span_processor(
        SigningSpanProcessor(recorder(other, Held(), FixedClock(NOW)), strict=False)
    )
    with pytest.raises(ConfigError):
        _call(agents.tracer, "refund")
    assert (len(list(agents.log.stored())), len(list(other.stored()))) == (0, 0)


def test_the_spans_taken_are_not_kept_past_their_life(tmp_path: Path) -> None:
    """Many spans started and dropped unended, to grow the registry of spans taken (it keys
    them weakly): none is kept once dropped."""
    agents = Agents(tmp_path)
    before = len(otel_processor._CLAIMS)
    spans = [agents.tracer.start_span("chat model") for _ in range(50)]
    assert len(otel_processor._CLAIMS) == before + 50
    del spans
    gc.collect()
    assert len(otel_processor._CLAIMS) == before


def test_a_span_under_an_unsampled_parent_keeps_its_acting_agent(tmp_path: Path) -> None:
    """A caller's `traceparent` saying "not sampled", with an explicit context given to
    `start_span` (the processor is handed that context, which holds no agent): the agent acting
    is read from where the span starts, not from the context given."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    agents = Agents(tmp_path)
    remote = TraceContextTextMapPropagator().extract(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
    )
    with otel.acting(agents.b):
        span = agents.tracer.start_span("execute_tool x", context=remote, attributes=_tool("x"))
        span.end()
    assert agents.signed() == [(agents.bob.identity.identifier, "x")]


def test_the_same_processor_on_two_providers_signs_each_span_once(tmp_path: Path) -> None:
    """One processor added to two providers, to have a span refused or signed twice: each span
    is one provider's, handed to the processor once."""
    agents = Agents(tmp_path)
    second = TracerProvider(sampler=SigningSampler())
    second.add_span_processor(agents.processor)
    _call(agents.tracer, "a")
    _call(second.get_tracer("other"), "b")
    assert agents.signed() == [
        (agents.alice.identity.identifier, "a"),
        (agents.alice.identity.identifier, "b"),
    ]
