"""Review 70j: attacks on review 70h's one `SigningSpanProcessor` for several agents.

otel 1: the processor kept what it read of a span as it started (its attributes, the agent
acting) by the span's trace and span ids, which a span does not own: a tracer's id generator is
a public attribute (`tracer.id_generator`), and a span's trace id is its parent's, so code that
can see another agent's open span (its current span when it is called by that agent) started a
span of the same ids. Ended first, with nothing read at its start, its tool call was signed by
the other agent's key (with that agent's start attributes under its own); started with
attributes, it replaced the other agent's entry, and the other agent's tool call was signed by
the processor's default recorder. Now every span the processor is handed has its own entry, a
second open span of the same ids is refused as it starts (ConfigError, before its tool runs),
and an entry is forgotten only by the span it is of.

otel 2: a `SigningSpanProcessor` added to a provider while a span is open was never handed that
span's start (so never refused as the second), and signed it when it ended as its own agent's:
an agent's long `invoke_agent` span, open as a second agent's processor was added, was signed
once by each, one of them the wrong key. A GenAI span a processor was not handed as it started
is now refused as it ends (ConfigError, whatever `strict` says): the processor cannot tell whose
it is.

otel 3: `acting` left out of order (two agents' blocks entered and left by callbacks, an
`ExitStack` unwound by hand, interleaved generators) restored, as the second was left, the
agent the first had replaced: after both blocks were left an agent still acted, and every span
started after them in that thread or task was signed by its key. Leaving one block now removes
that block's agent wherever it stands; the innermost block still open acts.

otel 4: a span started where no agent acts (a tool of bob's run in a plain thread or an
executor, as tools are, by bob's own code) was signed by the processor's default recorder: one
agent's tool call as another's step, and no way to set a provider up otherwise. A processor made
without a default, `SigningSpanProcessor(None)` (the host of several agents), refuses such a
GenAI span as it starts (ConfigError, before its tool runs; as it ends, for one named a GenAI
operation only after its start).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from tests.test_review70h_otel import Agents, _call, _records_of, _tool
from troth.errors import ConfigError
from troth.identity import Identifier
from troth.trace import otel
from troth.trace.log import TraceLog
from troth.trace.otel import SigningSampler, SigningSpanProcessor
from troth.trace.signing import open_envelope


class _Repeats(RandomIdGenerator):
    """Span ids chosen by whoever holds the tracer (a public attribute of it)."""

    def __init__(self, span_id: int) -> None:
        self.span_id = span_id

    def generate_span_id(self) -> int:
        return self.span_id


def _open_bobs_refund(agents: Agents) -> trace.Span:
    with otel.acting(agents.b):
        return agents.tracer.start_span("execute_tool refund", attributes=_tool("refund"))


def _twin_tracer(agents: Agents, of: trace.Span) -> tuple[trace.Tracer, object]:
    """A tracer of the same provider whose spans take `of`'s ids, and a context under `of`."""
    twin = agents.provider.get_tracer("instrumentation")
    twin.id_generator = _Repeats(of.get_span_context().span_id)  # type: ignore[attr-defined]
    return twin, trace.set_span_in_context(of)


def test_otel1_a_span_of_another_open_spans_ids_is_not_signed_by_its_agent(
    tmp_path: Path,
) -> None:
    """70j otel 1: a span given bob's open span's ids, nothing read at its start, ended first:
    its tool call was signed by bob's key."""
    agents = Agents(tmp_path)
    bobs = _open_bobs_refund(agents)
    twin, under = _twin_tracer(agents, bobs)
    with pytest.raises(ConfigError, match="ids"):
        evil = twin.start_span("execute_tool wire", context=under)  # type: ignore[arg-type]
        evil.set_attributes(_tool("wire"))
        evil.end()
    bobs.end()
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]


def test_otel1_a_span_of_another_open_spans_ids_does_not_take_its_entry(tmp_path: Path) -> None:
    """70j otel 1: a span given bob's open span's ids, started with attributes: bob's entry
    replaced, bob's refund signed by the processor's default recorder (alice)."""
    agents = Agents(tmp_path)
    bobs = _open_bobs_refund(agents)
    twin, under = _twin_tracer(agents, bobs)
    with pytest.raises(ConfigError, match="ids"):
        twin.start_span(
            "execute_tool wire",
            context=under,  # type: ignore[arg-type]
            attributes=_tool("wire"),
        ).end()
    bobs.end()
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]


def test_otel1_a_span_dropped_unended_does_not_forget_a_later_spans_entry(
    tmp_path: Path,
) -> None:
    """70j otel 1: a span ended, then a span of the same ids (an id generator that repeats)
    started under bob: the first span's collection forgot bob's entry (by ids), and bob's
    refund was signed by alice."""
    import gc

    agents = Agents(tmp_path)
    provider = TracerProvider(sampler=SigningSampler(), id_generator=_Repeats(7))
    provider.add_span_processor(agents.processor)
    tracer = provider.get_tracer("repeats")
    first = tracer.start_span("chat model", attributes={"gen_ai.conversation.id": "c1"})
    first.end()
    with otel.acting(agents.b):
        bobs = tracer.start_span(
            "execute_tool refund",
            context=trace.set_span_in_context(first),
            attributes=_tool("refund"),
        )
    del first
    gc.collect()
    bobs.end()
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]


def test_otel2_a_processor_added_while_a_span_is_open_does_not_sign_it(tmp_path: Path) -> None:
    """70j otel 2: bob's invoke_agent span open as a second agent's processor is added: each
    processor signed it as it ended, the second as its own agent's."""
    agents = Agents(tmp_path)
    with otel.acting(agents.b):
        session = agents.tracer.start_span(
            "invoke_agent bob", attributes={"gen_ai.operation.name": "invoke_agent"}
        )
    (tmp_path / "carol").mkdir()
    carols = Agents(tmp_path / "carol")
    agents.provider.add_span_processor(carols.processor)
    with pytest.raises(ConfigError, match="not handed"):
        session.end()
    assert _signers(agents.log) == [agents.bob.identity.identifier]
    assert _records_of(carols.log) == 0
    with pytest.raises(ConfigError, match="two SigningSpanProcessors"):
        _call(agents.tracer, "later")  # the second is refused as the next span starts


def _signers(log: TraceLog) -> list[Identifier]:
    return [open_envelope(entry.envelope)[0].agent for entry in log.stored()]


def test_otel2_a_lone_processor_refuses_a_span_opened_before_it_was_added(
    tmp_path: Path,
) -> None:
    """70j otel 2: a provider's only processor added while a tool call's span was open: it was
    never handed its start (the agent acting, its attributes as it started) and signed it as
    its own recorder's; refused, whatever `strict`."""
    agents = Agents(tmp_path)
    bare = TracerProvider(sampler=SigningSampler())
    with otel.acting(agents.b):
        span = bare.get_tracer("x").start_span("execute_tool refund", attributes=_tool("refund"))
    bare.add_span_processor(SigningSpanProcessor(agents.a, strict=False))
    with pytest.raises(ConfigError, match="not handed"):
        span.end()
    assert _records_of(agents.log) == 0


def test_otel3_acting_left_out_of_order_leaves_no_agent_acting(tmp_path: Path) -> None:
    """70j otel 3: alice's block entered, bob's, alice's left, bob's left: bob's leaving
    restored alice, who acted after both."""
    agents = Agents(tmp_path)
    alices, bobs = otel.acting(agents.a), otel.acting(agents.b)
    alices.__enter__()
    bobs.__enter__()
    alices.__exit__(None, None, None)
    _call(agents.tracer, "bob-still")  # bob's block is still open: bob acts
    bobs.__exit__(None, None, None)
    _call(agents.tracer, "after")  # none open: the processor's own (alice, as default)
    (tmp_path / "carol").mkdir()
    carols = Agents(tmp_path / "carol")
    carols.processor.recorder = agents.b  # the default here is bob: alice must not act
    _call(carols.tracer, "after-elsewhere")
    assert agents.signed() == [
        (agents.bob.identity.identifier, "bob-still"),
        (agents.alice.identity.identifier, "after"),
        (agents.bob.identity.identifier, "after-elsewhere"),
    ]


def _in_a_thread(work: Callable[[], None]) -> list[str]:
    """`work` run in a plain thread (no agent acting there): what became of it."""
    outcome: list[str] = []

    def run() -> None:
        try:
            work()
            outcome.append("ran")
        except ConfigError:
            outcome.append("refused")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=15)
    return outcome


def test_otel4_a_span_no_agent_acts_for_is_refused_without_a_default(tmp_path: Path) -> None:
    """70j otel 4: bob's tool run in a plain thread: signed by the default, another agent."""
    agents = Agents(tmp_path)
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(None))
    tracer = provider.get_tracer("agents")
    with otel.acting(agents.b):
        _call(tracer, "refund")
        assert _in_a_thread(lambda: _call(tracer, "wire")) == ["refused"]

        def named_late() -> None:
            with tracer.start_as_current_span("lookup") as span:
                span.set_attributes(_tool("lookup"))

        assert _in_a_thread(named_late) == ["refused"]
        assert _in_a_thread(lambda: tracer.start_span("chat model").end()) == ["ran"]
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]
