"""Review 70h: several agents in one process, one OpenTelemetry `TracerProvider`.

otel 1: several agents share one provider (the global one), each with its own
`SigningSpanProcessor`: every processor signed every span, so agent A's key signed agent B's
tool call as A's own step, and each span was recorded once per agent (review 69q, otel 2, a
strict xfail until now); a processor added twice signed each span twice. The span's own
attributes cannot say whose it is (`gen_ai.agent.id` is set by instrumentation an agent
controls: review 57h). Now the host program names the agent acting, `with acting(recorder):`
around its work, a context variable read as a span starts (so asyncio tasks inherit it, a thread
when the host copies its context or enters `acting` in it), and ONE processor per provider signs
each span with the recorder acting as it started, else its own. A second SigningSpanProcessor
handed a span another already took (the SDK hands every processor of a provider the same span
object; it names them only in private attributes) raises ConfigError as the span starts: before
the tool runs, and before any record.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ConcurrentMultiSpanProcessor, TracerProvider
from opentelemetry.trace import Tracer

from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.errors import ArgumentError, ConfigError
from troth.identity import Identifier
from troth.trace import otel
from troth.trace.log import TraceLog
from troth.trace.otel import SigningSampler, SigningSpanProcessor
from troth.trace.recorder import TraceRecorder
from troth.trace.signing import open_envelope
from troth.trace.verify import verify_log

ROUNDS = 6


def _tool(name: str, **extra: str) -> dict[str, str]:
    return {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, **extra}


class Agents:
    """Alice (the processor's default) and Bob, signing into one log, one provider."""

    def __init__(self, tmp_path: Path) -> None:
        clock = FixedClock(NOW)
        self.alice, self.bob = Held(), Held()
        self.log = open_log(tmp_path / "trace.db", clock)
        self.a = recorder(self.log, self.alice, clock)
        self.b = recorder(self.log, self.bob, clock)
        self.provider = TracerProvider(sampler=SigningSampler())
        self.processor = SigningSpanProcessor(self.a)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("agents")

    def signed(self) -> list[tuple[Identifier, str]]:
        """(signer, tool) of every record, in the log's order."""
        out = []
        for entry in self.log.stored():
            record = open_envelope(entry.envelope)[0]
            assert record.tool is not None
            out.append((record.agent, record.tool.name))
        return out

    def of(self, held: Held) -> list[str]:
        return sorted(tool for agent, tool in self.signed() if agent == held.identity.identifier)


def _call(tracer: Tracer, name: str, attributes: dict[str, str] | None = None) -> None:
    with tracer.start_as_current_span(f"execute_tool {name}", attributes=attributes or _tool(name)):
        pass


def _records_of(log: TraceLog) -> int:
    return sum(1 for _ in log.stored())


# -- the attack: two processors on one provider -------------------------------------------


def test_otel1_a_second_signing_processor_on_a_provider_is_refused(tmp_path: Path) -> None:
    """Two agents' processors on one provider: each signed every span as its own agent's."""
    agents = Agents(tmp_path)
    bobs_log = open_log(tmp_path / "b.db", FixedClock(NOW))
    agents.provider.add_span_processor(
        SigningSpanProcessor(recorder(bobs_log, agents.bob, FixedClock(NOW)))
    )
    bobs = _tool("refund", **{"gen_ai.agent.id": str(agents.bob.identity.identifier)})
    ran = []
    with (
        pytest.raises(ConfigError, match="two SigningSpanProcessors"),
        agents.tracer.start_as_current_span("execute_tool refund", attributes=bobs),
    ):
        ran.append(1)  # the tool never runs under a mis-signing setup
    assert ran == []
    assert (_records_of(agents.log), _records_of(bobs_log)) == (0, 0)


def test_otel1_a_signing_processor_added_twice_is_refused(tmp_path: Path) -> None:
    """The same processor added twice signed each span twice."""
    agents = Agents(tmp_path)
    agents.provider.add_span_processor(agents.processor)
    with pytest.raises(ConfigError, match="added twice"):
        _call(agents.tracer, "refund")
    assert _records_of(agents.log) == 0


def test_otel1_one_processor_on_each_of_two_providers_is_no_conflict(tmp_path: Path) -> None:
    """Two providers, each its own processor: each span is one provider's, signed once."""
    agents = Agents(tmp_path)
    other = TracerProvider(sampler=SigningSampler())
    other.add_span_processor(SigningSpanProcessor(agents.b))
    _call(agents.tracer, "lookup")
    _call(other.get_tracer("bob"), "refund")
    assert agents.signed() == [
        (agents.alice.identity.identifier, "lookup"),
        (agents.bob.identity.identifier, "refund"),
    ]


# -- the host names the agent acting ------------------------------------------------------


def test_otel1_the_acting_agent_signs_and_the_default_outside(tmp_path: Path) -> None:
    agents = Agents(tmp_path)
    with otel.acting(agents.b):
        _call(agents.tracer, "refund")
        with otel.acting(agents.a):  # nested: the innermost acts
            _call(agents.tracer, "lookup")
        _call(agents.tracer, "notify")
    _call(agents.tracer, "audit")  # no agent acting: the processor's own
    assert agents.signed() == [
        (agents.bob.identity.identifier, "refund"),
        (agents.alice.identity.identifier, "lookup"),
        (agents.bob.identity.identifier, "notify"),
        (agents.alice.identity.identifier, "audit"),
    ]
    agents.log.checkpoint()
    assert verify_log(agents.log).size == 4  # each signed by its own key, verifiably


def test_otel1_a_span_claiming_the_other_agent_is_signed_by_the_acting_one(
    tmp_path: Path,
) -> None:
    agents = Agents(tmp_path)
    claims_bob = _tool("refund", **{"gen_ai.agent.id": str(agents.bob.identity.identifier)})
    claims_alice = _tool("wire", **{"gen_ai.agent.id": str(agents.alice.identity.identifier)})
    with otel.acting(agents.a):
        _call(agents.tracer, "refund", claims_bob)
    with otel.acting(agents.b):
        _call(agents.tracer, "wire", claims_alice)
    assert agents.signed() == [
        (agents.alice.identity.identifier, "refund"),
        (agents.bob.identity.identifier, "wire"),
    ]


def test_otel1_the_agent_is_the_one_acting_as_the_span_starts_not_as_it_ends(
    tmp_path: Path,
) -> None:
    agents = Agents(tmp_path)
    with otel.acting(agents.b):
        span = agents.tracer.start_span("execute_tool refund", attributes=_tool("refund"))
    with otel.acting(agents.a):
        span.end()
    late = agents.tracer.start_span("execute_tool late")  # operation named after the start
    with otel.acting(agents.b):
        late.set_attributes(_tool("late"))
        late.end()
    assert agents.signed() == [
        (agents.bob.identity.identifier, "refund"),
        (agents.alice.identity.identifier, "late"),
    ]


def _each_once_by_its_own(agents: Agents) -> None:
    """Each agent's tools (a0.., b0..) signed by it alone, each once."""
    assert agents.of(agents.alice) == sorted(f"a{n}" for n in range(ROUNDS))
    assert agents.of(agents.bob) == sorted(f"b{n}" for n in range(ROUNDS))
    assert len(agents.signed()) == 2 * ROUNDS


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)


def _work(agents: Agents, barrier: threading.Barrier | None, prefix: str) -> None:
    for n in range(ROUNDS):
        if barrier is not None:
            barrier.wait(timeout=5)  # the two threads' spans open and end in turn
        _call(agents.tracer, f"{prefix}{n}")


def each_agent_in_a_thread(agents: Agents, work: Callable[[str], None]) -> None:
    """Alice's `work` ("a") and bob's ("b"), each in a thread of its own within `acting`:
    each agent's tools signed by it alone, each once."""

    def agent(rec: TraceRecorder, prefix: str) -> None:
        with otel.acting(rec):
            work(prefix)

    _run(
        [
            threading.Thread(target=agent, args=(agents.a, "a")),
            threading.Thread(target=agent, args=(agents.b, "b")),
        ]
    )
    _each_once_by_its_own(agents)


def test_otel1_interleaved_threads_each_entering_acting(tmp_path: Path) -> None:
    agents = Agents(tmp_path)
    barrier = threading.Barrier(2)
    each_agent_in_a_thread(agents, lambda prefix: _work(agents, barrier, prefix))


def test_otel1_a_thread_run_in_a_copied_context_keeps_the_acting_agent(tmp_path: Path) -> None:
    agents = Agents(tmp_path)
    barrier = threading.Barrier(2)
    threads = []
    for rec, prefix in ((agents.a, "a"), (agents.b, "b")):
        with otel.acting(rec):
            context = contextvars.copy_context()  # the host copies the context it starts in
        threads.append(threading.Thread(target=context.run, args=(_work, agents, barrier, prefix)))
    _run(threads)
    _each_once_by_its_own(agents)


def test_otel1_a_plain_thread_does_not_inherit_the_acting_agent(tmp_path: Path) -> None:
    """As documented: `threading.Thread` starts in an empty context, so its spans are the
    processor's default recorder's unless the host copies its context or enters `acting`."""
    agents = Agents(tmp_path)
    with otel.acting(agents.b):
        thread = threading.Thread(target=_call, args=(agents.tracer, "refund"))
        thread.start()
        thread.join(timeout=15)
    assert agents.signed() == [(agents.alice.identity.identifier, "refund")]


def test_otel1_interleaved_asyncio_tasks_inherit_the_acting_agent(tmp_path: Path) -> None:
    agents = Agents(tmp_path)

    async def work(prefix: str) -> None:
        for n in range(ROUNDS):
            name = f"{prefix}{n}"
            span = agents.tracer.start_span(f"execute_tool {name}", attributes=_tool(name))
            await asyncio.sleep(0)  # the other task's span starts and ends meanwhile
            span.end()

    async def host() -> None:
        tasks = []
        for rec, prefix in ((agents.a, "a"), (agents.b, "b")):
            with otel.acting(rec):
                tasks.append(asyncio.create_task(work(prefix)))  # copies the context
        await asyncio.gather(*tasks)
        with otel.acting(agents.b):  # asyncio.to_thread copies it too
            await asyncio.to_thread(_call, agents.tracer, "b-thread")

    asyncio.run(host())
    assert agents.of(agents.alice) == sorted(f"a{n}" for n in range(ROUNDS))
    assert agents.of(agents.bob) == sorted([f"b{n}" for n in range(ROUNDS)] + ["b-thread"])
    assert len(agents.signed()) == 2 * ROUNDS + 1


def test_otel1_acting_takes_a_recorder() -> None:
    with pytest.raises(ArgumentError), otel.acting("alice"):  # type: ignore[arg-type]
        pass


# otel 2: a provider made with the SDK's `ConcurrentMultiSpanProcessor` (an opt-in
# `active_span_processor`) calls its processors' `on_start` from its own worker threads, which
# run in no context the host set: the agent acting was not seen there, and the processor's
# default signed the span (a strict xfail until review 70j: `SigningSampler`, which the SDK
# calls in the thread starting the span, marks the span's trace state with the agent acting).


def concurrent(agents: Agents) -> TracerProvider:
    """A provider calling its processors from the SDK's worker threads, with a processor of
    alice's as default (shut it down: its threads)."""
    provider = TracerProvider(
        sampler=SigningSampler(),
        active_span_processor=ConcurrentMultiSpanProcessor(2),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SigningSpanProcessor(agents.a))
    return provider


def test_otel2_the_acting_agent_signs_under_a_concurrent_span_processor(tmp_path: Path) -> None:
    agents = Agents(tmp_path)
    provider = concurrent(agents)
    try:
        with otel.acting(agents.b):
            _call(provider.get_tracer("agents"), "refund")
    finally:
        provider.shutdown()  # its worker threads
    assert agents.signed() == [(agents.bob.identity.identifier, "refund")]
