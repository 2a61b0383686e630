"""Review 47o, bundles 1: a proof bundle and a JSONL export carried one signer history per
record, so an old record of an agent past 64 changes (signed under a history its log keeps
only as a window, `history_windows`) did not verify offline once the verifier's copy of the
agent had moved past that window ("nothing here shows it is an older prefix"), nor for a
verifier with no copy of the agent at all: `troth trace verify --node hub` passed, `troth
trace verify --file` of the hub's own export did not (docs/traces.md, "Signer histories",
named the limit reviews 47i and 47l left).

A bundle (version 2) now carries the log's windows that link the record's history to the
agent's newest history the log holds and back to its change 0 (`signer.windows`, the
history's place among them `signer.at`), checked as the collector checks the windows a batch
carries (each verified from a change the one before it holds, `check_windows`): the export
verifies on the hub, and with a fresh home (no copy of the agent) verified and unanchored,
never valid without a kept checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.nodes import MemNet, run_memnet
from tests.test_review47i_collector import _to_hub
from tests.test_review47l_windows import _rotate
from tests.test_trace_node import step
from troth.node.services.trace import TraceClient

ROUNDS = (20,) * 8  # 160 rotations, no record between: review 47l's set-up


def _hub_with_an_old_record(tmp_path: Path) -> None:
    """Agent `agent-a` records once (change 0), rotates 160 times without a record, records
    again (from a checkpoint past change 64), then rotates 30 more times: the hub's copy of it
    moves past the history of its newest record in the log too."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent-a", prepare=_to_hub)
        await agent.enroll(net.ticket(), "agent-a")
        client = agent.traces.recorder()
        assert isinstance(client, TraceClient)
        first = client.record(step(0))
        await client.flush(20)
        assert first.result() == 0
        for times in ROUNDS:
            await _rotate(net, agent, "agent-a", times)
        later = client.record(step(1))
        await client.flush(20)
        assert later.result() == 1
        await _rotate(net, agent, "agent-a", 30)

    run_memnet(test, tmp_path / "home", budget=180)
    run("trace", "checkpoint", "--node", "hub")
    run("trace", "verify", "--node", "hub")


@pytest.mark.xfail(strict=True, reason="review 47o, bundles 1: one history per bundle")
def test_the_export_and_an_old_records_proof_verify_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's JSONL export and the proof of the agent's record at change 0 verify with
    `troth trace verify --file` on the hub (valid against its kept checkpoint), and on a fresh
    home that holds no copy of the agent: verified, unanchored (not valid) without a kept
    checkpoint, valid with the hub's."""
    _hub_with_an_old_record(tmp_path)
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    assert len(export.read_text().splitlines()) == 2
    first = json.loads(export.read_text().splitlines()[0])["record"]["id"]
    bundle = tmp_path / "first.json"
    run("trace", "prove", first, "--out", str(bundle), "--node", "hub")
    kept = tmp_path / "kept.checkpoint"
    run("trace", "verify", "--node", "hub", "--checkpoint", str(kept))
    for path in (export, bundle):
        answer = run_json("trace", "verify", "--file", str(path), "--node", "hub")
        assert answer["verified"] is True
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "fresh"))
    run("node", "init", "verifier")
    for path in (export, bundle):
        answer = run_json("trace", "verify", "--file", str(path), "--node", "verifier")
        assert (answer["verified"], answer["valid"], answer["status"]) == (
            True,
            False,
            "unanchored",
        )
        anchored = run_json(
            "trace", "verify", "--file", str(path), "--node", "verifier", "--checkpoint", str(kept)
        )
        assert (anchored["valid"], anchored["status"]) == (True, "valid")
