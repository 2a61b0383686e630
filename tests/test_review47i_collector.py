"""Review 47i, collector 1: an identity past 64 changes could not submit trace records to a
node's `trace` service. Past MAX_IDENTITY_CHANGES a node presents its identity from a
checkpoint (the changes from index k on, attested by its authority's feed); the collector
verified the batch's signer history with `verify_history(history)` and no checkpoints, so
every batch of a long-lived agent was refused `signer identity invalid` ("... this verifier
takes no checkpoints"), while its channel, its credential and the service's decision point
admitted it (the batch reached the collector): the identifier is meant to outlive rotations.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.support.traces import hub_log_exports_verified
from tests.test_trace_node import send_to_hub, step
from troth.errors import TraceError
from troth.node import Node
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import TraceClient
from troth.trace import verify_log
from troth.trace.batcher import Queued
from troth.trace.export import verify_bundle
from troth.trace.verify import LogReport

ROUNDS = (30, 30, 10)  # 70 rotations: past MAX_IDENTITY_CHANGES (64), from a checkpoint


def _to_hub(node: Node) -> None:
    node.config = dataclasses.replace(node.config, traces=f"{HUB}/service/trace")


async def _rotate(net: MemNet, agent: NodeRuntime, name: str, times: int) -> None:
    """`times` rotations of `agent`'s identity `name`, then announced to its authority (the
    hub): a node rotates past 64 changes only once an authority's feed checkpoints it."""

    def rotate() -> None:
        for _ in range(times):
            net.clock.advance(60)
            agent.node.identities.rotate(name, now=net.clock.now())

    await agent.worker.run(rotate)
    (row,) = await agent.announce_rotations(name)
    assert row["announced"] is True, row


async def _long_lived_agent(net: MemNet) -> tuple[NodeRuntime, list[Queued]]:
    """Agent `agent-a` (a member of the hub, its records sent to the hub's trace service
    through its node's client): a record, then three rounds of rotations (70 in all, each
    round announced to its authority, so that past 64 changes its node presents its history
    from a checkpoint the hub's authority attests) each followed by a record."""
    agent = await net.node("agent-a", prepare=_to_hub)
    await agent.enroll(net.ticket(), "agent-a")
    client = agent.traces.recorder()
    assert isinstance(client, TraceClient)
    queued = [client.record(step(0))]
    await client.flush(20)
    for n, times in enumerate(ROUNDS, start=1):
        await _rotate(net, agent, "agent-a", times)
        queued.append(client.record(step(n)))
        await client.flush(20)
    presented = agent.node.identities.get("agent-a", now=net.clock.now()).identity
    assert presented.first_index > 0  # the last records' signer: a checkpointed history
    return agent, queued


def _verify_on(hub: NodeRuntime) -> LogReport:
    """The hub's log verified as `troth trace verify` does on the hub (its stored histories
    judge forks and checkpoints, its own rows retirements); run on its storage thread."""
    identities = hub.node.identities
    return verify_log(
        hub.traces.log(),
        known=identities.check_no_fork,
        checkpoints=identities.attested_by_store,
        rows=identities.window_around,
    )


@pytest.mark.xfail(strict=True, reason="review 47i, collector 1: a checkpointed signer refused")
def test_an_agent_past_64_changes_submits_records_through_the_trace_service(
    tmp_path: Path,
) -> None:
    """Every record of the long-lived agent is appended; the hub's log, its export and the
    last record's proof (with the agent's own rows) verify, `troth trace verify` and
    `--file` on the hub too. A verifier that knows nothing of the agent refuses the proof,
    naming the unattested checkpoint (never "valid" on the history's own word)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent, queued = await _long_lived_agent(net)
        assert [q.result() for q in queued] == [0, 1, 2, 3]
        report = await hub.worker.run(_verify_on, hub)
        assert (report.size, report.agents) == (4, 1)
        assert await hub.worker.run(hub_log_exports_verified, hub)
        text = await send_to_hub(agent, hub)("prove", [queued[-1].record])
        mine = agent.node.identities.attested_by_store  # the agent's node knows its own rows
        assert verify_bundle(text.encode(), checkpoints=mine).index == 3
        with pytest.raises(TraceError, match="checkpointed history not attested"):
            verify_bundle(text.encode())

    run_memnet(test, tmp_path / "home", budget=120)
    run("trace", "checkpoint", "--node", "hub")
    run("trace", "verify", "--node", "hub")
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    assert len(export.read_text().splitlines()) == 4
    run("trace", "verify", "--file", str(export), "--node", "hub")
