"""Review 47i, collector 1: an identity past 64 changes could not submit trace records to a
node's `trace` service. Past MAX_IDENTITY_CHANGES a node presents its identity from a
checkpoint (the changes from index k on, attested by its authority's feed); the collector
verified the batch's signer history with `verify_history(history)` and no checkpoints, so
every batch of a long-lived agent was refused `signer identity invalid` ("... this verifier
takes no checkpoints"), while its channel, its credential and the service's decision point
admitted it (the batch reached the collector): the identifier is meant to outlive rotations.

The collector now takes a checkpointed history as the node's channels do
(`NodeTrust.checkpoints`: the node's stored copy of the identity holds that change, or a fresh
feed it holds names it), never on the history's own word.

2. With 1 fixed: the log keeps the agent's newest history, from its checkpoint, and `troth
   trace verify` on the node attested that checkpoint by the node's stored copy of the agent
   only. Once the agent rotated on (its announcement, or a channel, moved the node's copy past
   the change the log's copy starts at) the node refused its own log at the agent's first
   record, "checkpointed history not attested": records the node took stopped verifying. The
   log keeps the older histories a newer one dropped (`history_windows`): one that verifies
   (from change 0, or from a change an older one holds) ties the checkpoint to the identifier,
   as a stored copy does.

Both were strict xfails until `TraceCollector` verified the signer with the node's
checkpoints (1) and `LogVerifier` took the log's own windows as anchors (2).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.support.traces import NOW, Held, hub_log_exports_verified, open_log
from tests.test_attacks_review11 import _rotate_long
from tests.test_trace_node import send_to_hub, step
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.identity import Checkpoint, Checkpoints, Signer, indexed_hashes
from troth.node import Node
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import TraceClient
from troth.trace import verify_log
from troth.trace.batcher import Queued, TraceBatcher
from troth.trace.checkpoint import AnchorStatus
from troth.trace.collect import TraceCollector
from troth.trace.export import verify_bundle
from troth.trace.submit import Submission
from troth.trace.verify import LogReport

AT = NOW + 100 * 60  # after the rotations of `_long_lived`
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


def test_an_agent_past_64_changes_submits_records_through_the_trace_service(
    tmp_path: Path,
) -> None:
    """Every record of the long-lived agent is appended; the hub's log, its export and the
    last record's proof (with the agent's own rows) verify, `troth trace verify` and
    `--file` on the hub too. A verifier that knows nothing of the agent verifies the proof by
    the windows it carries back to change 0 (review 47o, bundles 1), unanchored; without them
    it refuses it, naming the unattested checkpoint (never on the history's own word)."""

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
        bundle = json.loads(text)  # it carries the log's windows back to change 0 (review
        # 47o, bundles 1): a verifier that knows nothing of the agent verifies it, unanchored
        assert bundle["version"] == 2
        assert bundle["signer"]["at"] == len(bundle["signer"]["windows"])
        assert verify_bundle(bundle).status is AnchorStatus.UNANCHORED
        del bundle["signer"]["windows"], bundle["signer"]["at"]
        bundle["version"] = 1  # without them, never on the history's own word
        with pytest.raises(TraceError, match="checkpointed history not attested"):
            verify_bundle(bundle)

    run_memnet(test, tmp_path / "home", budget=120)
    run("trace", "checkpoint", "--node", "hub")
    run("trace", "verify", "--node", "hub")
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    assert len(export.read_text().splitlines()) == 4
    run("trace", "verify", "--file", str(export), "--node", "hub")


def test_the_nodes_log_verifies_after_the_agent_rotates_on(tmp_path: Path) -> None:
    """The long-lived agent rotates 30 more times and announces it: the hub's stored copy of
    it now starts past the change the log's copy of it starts at. The hub's log still
    verifies (`troth trace verify` on the hub), anchored by the windows the log kept."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent, queued = await _long_lived_agent(net)
        assert [q.result() for q in queued] == [0, 1, 2, 3]
        await _rotate(net, agent, "agent-a", 30)
        who = net.identifier(agent)
        kept = await hub.worker.run(lambda: hub.traces.log().history(who))
        assert kept is not None
        first, hashes = indexed_hashes(kept)  # the log's copy: from change 30
        assert first == 30
        digest = who.digest
        attested = await hub.worker.run(
            hub.node.identities.attested_by_store, Checkpoint(digest, digest, 30), hashes[0]
        )
        assert not attested  # the hub's stored copy moved past it
        report = await hub.worker.run(_verify_on, hub)
        assert (report.size, report.agents) == (4, 1)

    run_memnet(test, tmp_path / "home", budget=120)
    run("trace", "verify", "--node", "hub")


def _long_lived() -> tuple[Held, Signer]:
    agent = Held()
    _rotate_long(agent, 70, NOW + 60)
    assert agent.identity.first_index > 0
    return agent, agent.signer(AT)


def _batch(collector: TraceCollector, signer: Signer, at: int = AT) -> Submission:
    batcher = TraceBatcher(lambda now: signer)
    batcher.set_head(collector.head(signer.identity.identifier).head)
    batcher.add(step(0), now=at)
    batch = batcher.next_batch(at)
    assert batch is not None
    return batch.submission


def _long_collector(
    path: Path, checkpoints: Checkpoints | None, clock: FixedClock | None = None
) -> TraceCollector:
    log = open_log(path, clock or FixedClock(AT))
    return TraceCollector(
        log,
        verifier=lambda: None,
        feeds=dict,
        observe=lambda identity: None,
        vouched=lambda identifier: frozenset(),
        checkpoints=None if checkpoints is None else (lambda now: checkpoints),
    )


def test_a_checkpointed_signer_the_node_cannot_attest_is_refused(tmp_path: Path) -> None:
    """The history's own word is not enough: a checkpoint nothing the node holds attests (no
    stored copy holds the change, no fresh feed names it) refuses the batch, with the reason:
    for now (`not accepted yet`: its feed copy may name it once fresh, review 48n); a
    collector given no checkpoints at all (a caller that takes full histories only) for
    good."""
    _agent, signer = _long_lived()
    nothing: Checkpoints = lambda _c, _h: False  # noqa: E731
    for name, checkpoints, reason in (
        ("none.db", None, TraceFailure.SIGNER_INVALID),
        ("nothing.db", nothing, TraceFailure.NOT_YET),
    ):
        collector = _long_collector(tmp_path / name, checkpoints)
        submission = _batch(collector, signer)
        (result,) = collector.submit(submission, submitter=None, now=AT).results
        assert result.reason is reason
        assert "checkpointed history not attested" in result.detail
        collector.log.close()


def test_a_checkpointed_signer_the_node_attests_is_appended(tmp_path: Path) -> None:
    """The same history, its checkpoint attested by the node (here: the change it names is
    the one asked about, as a stored copy holding it answers) is appended."""
    agent, signer = _long_lived()
    first = agent.identity.changes[0]
    asked: list[Checkpoint] = []

    def attests(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        asked.append(checkpoint)
        return checkpoint.index == first.index and change_hash == first.change_hash

    collector = _long_collector(tmp_path / "trace.db", attests)
    submission = _batch(collector, signer)
    (result,) = collector.submit(submission, submitter=None, now=AT).results
    assert result.delivered, result.detail
    assert [c.index for c in asked] == [first.index]
    collector.log.close()


def test_a_checkpointed_signer_that_skips_past_the_logs_copy_is_refused(tmp_path: Path) -> None:
    """A signer whose last record in the log was signed at change 0, back after 70 rotations
    with a history from change 62 (the node attests it): the log cannot tie the new history
    to the one its records were verified under (no change in common, no rows of a remote
    identity to bridge them), so the batch is refused with the reason, never appended
    without the changes between (its older records' keys would have no retirement time)."""
    agent = Held()
    clock = FixedClock(NOW + 30)
    collector = _long_collector(tmp_path / "trace.db", lambda _c, _h: True, clock)
    early = _batch(collector, agent.signer(NOW + 30), NOW + 30)
    (result,) = collector.submit(early, submitter=None, now=NOW + 30).results
    assert result.delivered, result.detail
    _rotate_long(agent, 70, NOW + 60)
    clock.advance(AT - clock.now())
    late = _batch(collector, agent.signer(AT))
    (result,) = collector.submit(late, submitter=None, now=AT).results
    assert result.reason is TraceFailure.SIGNER_INVALID
    assert "the stored copy ends at change 0" in result.detail
    collector.log.close()
