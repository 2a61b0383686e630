"""Review 47l, windows 1: an agent past 64 changes that rotates 64 or more times without
sending a record to a log was refused there for good. The log holds the agent's history up to
its last record; the agent presents a suffix that does not reach back to it ("the stored copy
ends at change N": nothing shows the suffix descends from the log's copy), its client dropped
the batch, and every later batch too. Only a node's own identities had stored change rows to
fill the gap (`SignerBridge`, the log's node).

The client now asks the service where the log's copy of it ends (`trace.held`) when it presents
a checkpointed history, and sends with its batch the history windows its own node holds that
bridge the gap (at most MAX_TRACE_SUBMIT_WINDOWS); the collector verifies that they chain from
the log's copy to the presented history, change by change, and the log keeps them
(`history_windows`), as it does for its own identities (docs/traces.md, "Signer histories").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.nodes import MemNet, run_memnet
from tests.test_review47i_collector import _long_lived_agent, _to_hub, _verify_on
from tests.test_trace_node import step
from troth.identity import indexed_hashes
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import TraceClient

ROUNDS = (20,) * 8  # 160 rotations, no record between: the gap is 2 windows wide


@pytest.mark.xfail(
    strict=True,
    reason="review 47l, windows 1: a gap of 64+ silent rotations refused the agent for good",
)
def test_an_agent_back_after_160_silent_rotations_is_bridged_by_its_windows(
    tmp_path: Path,
) -> None:
    """Agent `agent-a` records once (change 0), rotates 160 times in announced rounds without
    a record, records again (its history from a change past 64): the record is appended, the log
    keeps the windows between, and the hub's log verifies (`troth trace verify`)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent = await net.node("agent-a", prepare=_to_hub)
        await agent.enroll(net.ticket(), "agent-a")
        client = agent.traces.recorder()
        assert isinstance(client, TraceClient)
        first = client.record(step(0))
        await client.flush(20)
        assert first.result() == 0
        for times in ROUNDS:
            await _rotate(net, agent, "agent-a", times)
        presented = agent.node.identities.get("agent-a", now=net.clock.now()).identity
        assert presented.first_index > 64  # no change in common with the log's copy (0)
        later = client.record(step(1))
        await client.flush(20)
        assert later.result() == 1
        who = net.identifier(agent)
        kept = await hub.worker.run(lambda: hub.traces.log().history(who))
        assert kept is not None
        assert indexed_hashes(kept)[0] == presented.first_index
        report = await hub.worker.run(_verify_on, hub)
        assert (report.size, report.agents) == (2, 1)

    run_memnet(test, tmp_path / "home", budget=180)
    run("trace", "verify", "--node", "hub")


async def _rotate(net: MemNet, agent: NodeRuntime, name: str, times: int) -> None:
    """`times` rotations of `agent`'s identity `name`, then announced to its authority (the
    hub), as review 47i's set-up does (`_long_lived_agent`)."""

    def rotate() -> None:
        for _ in range(times):
            net.clock.advance(10)  # the feeds stay fresh (FEED_STALENESS) with no record between
            agent.node.identities.rotate(name, now=net.clock.now())

    await agent.worker.run(rotate)
    (row,) = await agent.announce_rotations(name)
    assert row["announced"] is True, row.get("error")


_ = _long_lived_agent  # the set-up this one extends (review 47i, collector 1)
