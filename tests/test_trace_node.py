"""The trace service on a node, over secure channels: a member's records sent through its
node's client (node.json `traces`) land in the hub's log, verified and in order; a stranger is
refused by the decision point; a member cannot submit another identity's records; proofs are
the member's own; a node's gate decisions go where its node.json says."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, make_world
from tests.support.nodes import HUB, MemNet, run_memnet
from troth import limits
from troth.clock import FixedClock
from troth.errors import Denied, RemoteError
from troth.gates import DecisionPoint, Tool, ToolGate
from troth.node import Node
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.trace import TraceClient
from troth.routing import parse_route
from troth.trace import Kind, RecordContent, ToolCall, TraceRecorder, verify_log
from troth.trace.batcher import Batch, TraceBatcher
from troth.trace.export import verify_bundle
from troth.trace.signing import open_envelope
from troth.trace.submit import Receipts

TRACE = service_address("trace")


def step(n: int) -> RecordContent:
    return RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("refund"), values={"args": {"n": n}})


def send_to_hub(runtime: NodeRuntime, hub: NodeRuntime) -> Callable[[str, Any], Awaitable[Any]]:
    async def send(method: str, arguments: Any) -> Any:
        assert hub.identifier is not None
        pinned = frozenset({hub.identifier})
        end = await runtime.channel_to(parse_route(HUB), expect=hub.identifier, also_trust=pinned)
        return await call(runtime.router, (end.enc, TRACE), method, arguments)

    return send


def signed_batch(runtime: NodeRuntime, name: str, now: int) -> Batch:
    """One record signed by local identity `name` of `runtime`'s node, as its first."""
    identities = runtime.node.identities
    batcher = TraceBatcher(lambda at: identities.signer(name, now=at))
    batcher.set_head(None)
    batcher.add(step(0), now=now)
    batch = batcher.next_batch(now)
    assert batch is not None
    return batch


def to_hub(node: Node) -> None:
    node.config = dataclasses.replace(node.config, traces=f"{HUB}/service/trace")


def test_a_members_records_reach_the_hubs_log(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent = await net.node("agent-a", prepare=to_hub)
        await agent.enroll(net.ticket(), "agent-a")
        client = agent.traces.recorder()
        assert isinstance(client, TraceClient)
        queued = [client.record(step(n)) for n in range(40)]
        await client.flush(20)
        assert [q.result() for q in queued] == list(range(40))
        assert client.batcher.batches <= 2
        log = await hub.worker.run(hub.traces.log)
        report = await hub.worker.run(verify_log, log)
        assert (report.size, report.agents) == (40, 1)
        first = open_envelope(next(iter(log.stored())).envelope)[0]
        assert first.agent == agent.identifier
        assert hub.status()["services"]["trace"] == {"appended": 40, "already": 0, "refused": 0}
        text = await send_to_hub(agent, hub)("prove", [queued[3].record])
        proved = verify_bundle(text.encode())
        assert (proved.index, proved.record.agent) == (3, agent.identifier)

    run_memnet(test, tmp_path / "home")


def test_a_stranger_is_refused_and_a_member_cannot_submit_anothers_records(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("agent-a")
        b = await net.member("agent-b")
        stranger = await net.node("stranger")
        batch = signed_batch(stranger, "stranger", net.clock.now())
        with pytest.raises(Denied) as denied:
            await send_to_hub(stranger, hub)("submit", batch.submission.to_cbor())
        assert "holds no credential" in str(denied.value)
        # b signs; a submits it as its own
        batch_b = signed_batch(b, "agent-b", net.clock.now())
        answer = await send_to_hub(a, hub)("submit", batch_b.submission.to_cbor())
        receipts = Receipts.from_cbor(answer, expected=1)
        assert receipts.results[0].reason is not None
        assert "submits only the records it signs" in receipts.results[0].detail
        with pytest.raises(RemoteError, match="not a submission"):
            await send_to_hub(a, hub)("submit", ["nonsense"])
        # b's own record: a may not have its proof
        answer = await send_to_hub(b, hub)("submit", batch_b.submission.to_cbor())
        (result,) = Receipts.from_cbor(answer, expected=1).results
        assert result.delivered
        record = batch_b.items[0].record
        with pytest.raises(RemoteError, match="no record"):
            await send_to_hub(a, hub)("prove", [record])
        assert verify_bundle((await send_to_hub(b, hub)("prove", [record])).encode()).index == 0

    run_memnet(test, tmp_path / "home")


SMALL, BIG = {"amount": 20}, {"amount": 5000}  # the world's bundle caps refunds


def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on {order_id}"


def test_a_nodes_gate_records_go_to_its_log_or_to_the_service_node_json_names(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        reporting = await net.node("agent-b", prepare=to_hub)
        assert isinstance(reporting.traces.decision_recorder().sink, TraceClient)
        local = await net.member("agent-a")
        recorder = local.traces.decision_recorder()
        assert isinstance(recorder.sink, TraceRecorder)
        world = make_world()
        point = DecisionPoint(world.store(world.bundle()), world.held_feed, recorder=recorder)
        gate = ToolGate(point, [Tool.from_function(refund)], clock=FixedClock(T + 10))
        caller = world.credential(world.support_chain, world.support)
        allowed = await local.worker.run(gate.invoke, caller, "refund", {"order_id": "o1"} | SMALL)
        denied = await local.worker.run(gate.invoke, caller, "refund", {"order_id": "o2"} | BIG)
        assert (allowed.allowed, denied.allowed) == (True, False)
        log = await local.worker.run(local.traces.log)
        made = [open_envelope(entry.envelope)[0] for entry in log.stored()]
        assert [(r.kind, r.agent) for r in made] == [
            (Kind.TOOL_INVOCATION, local.identifier),
            (Kind.DENIAL, local.identifier),
        ]
        # the last decision the storage thread's context recorded (the gate ran there)
        assert await local.worker.run(lambda: recorder.last) == made[-1].id
        assert (await local.worker.run(verify_log, log)).size == 2

    run_memnet(test, tmp_path / "home")


def big_batch(runtime: NodeRuntime, name: str, now: int, size: int) -> Batch:
    """One record of `size` bytes of arguments, signed by `name` as its first."""
    identities = runtime.node.identities
    batcher = TraceBatcher(lambda at: identities.signer(name, now=at))
    batcher.set_head(None)
    content = RecordContent(
        Kind.TOOL_INVOCATION, tool=ToolCall("upload"), values={"args": {"blob": "x" * size}}
    )
    batcher.add(content, now=now)
    batch = batcher.next_batch(now)
    assert batch is not None
    return batch


def test_one_member_flooding_the_trace_service_is_held_to_its_byte_rate(
    tmp_path: Path,
) -> None:
    """A member replays a big submission over and over: past its burst it is refused as busy
    (its client sends again later) while another member's records still go in; time refills."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("agent-a")
        b = await net.member("agent-b")
        flood = big_batch(a, "agent-a", net.clock.now(), 200_000).submission.to_cbor()
        send_a = send_to_hub(a, hub)
        sent = 0
        with pytest.raises(RemoteError, match="busy"):
            for _ in range(1 + limits.TRACE_SUBMIT_BURST_BYTES // 200_000):
                await send_a("submit", flood)
                sent += 1
        assert sent >= limits.TRACE_SUBMIT_BURST_BYTES // 250_000  # the burst was let through
        honest = signed_batch(b, "agent-b", net.clock.now()).submission.to_cbor()
        answer = await send_to_hub(b, hub)("submit", honest)
        (result,) = Receipts.from_cbor(answer, expected=1).results
        assert result.delivered
        net.clock.advance(1)  # one second refills one second's worth, not the flood's
        await send_a("submit", flood)
        with pytest.raises(RemoteError, match="busy"):
            for _ in range(10):
                await send_a("submit", flood)

    run_memnet(test, tmp_path / "home")
