"""Review 54c, crash safety ("nothing lost on a crash"): the state-changing operations whose
crash points no test killed a process at, each killed (TROTH_CRASH_AT, a real `troth` process)
at every step between its writes, then retried.

Crash 1: `troth trace resolve` killed after the resolution's commit (`trace.append.after-commit`)
left the decision in the log, and the same command again was refused (`record already in the
log`, exit 1): the human who retried it learned neither that the decision stood nor its record.
A resolution's id comes from its escalation (review 53l), as a revocation's from its feed entry
(review 46c), so the redo now finds the resolver's answer and answers its receipt when it is the
same outcome; another outcome is still refused (one answer per escalation), naming the one
recorded.

Crash 2: a node's trace log is bound to its log identity (an unnamed local identity that signs
its checkpoints) at its first opening: the identity was created and committed in node.db, then
bound in trace.db. A process killed in between (`identity.create.after-commit`, the first `troth
trace checkpoint` or any command that opens the log) left an identity no log names, listed by
`troth identity list`, its keys in the vault, one more at each such crash. The identity is now
reserved in trace.db before node.db commits it, and the next opening binds the reserved one when
node.db holds it (troth.trace.log_identity).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import troth
from tests.support.cli import run_json, troth_process
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock, SystemClock
from troth.errors import TraceError, TraceFailure
from troth.node import open_node
from troth.trace import TraceRecorder, open_node_log

RESOLVE = ("--considered", "x", "--reasoning", "y", "--json")


def test_a_resolution_again_with_the_same_outcome_answers_the_recorded_one(
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 5000?")
    answering = recorder(log, human, clock)
    first = answering.resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="", reasoning="ok"
    )
    again = answering.resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="", reasoning="ok"
    )
    assert (again.index, again.record, again.hash, again.leaf) == (
        first.index,
        first.record,
        first.hash,
        first.leaf,
    )
    assert log.size() == 2  # nothing appended by the redo
    with pytest.raises(TraceError) as refused:  # another answer: still one per escalation
        answering.resolve(
            asked.record, of=agent.identifier, outcome="refused", considered="", reasoning="no"
        )
    assert refused.value.reason is TraceFailure.REPLAYED
    assert "approved" in str(refused.value)
    assert first.record in str(refused.value)
    log.close()


def test_a_resolution_killed_after_its_commit_is_answered_by_the_same_command() -> None:
    run_json("identity", "create", "support")
    alice = run_json("identity", "create", "alice")["identifier"]
    clock = SystemClock()
    with open_node("default") as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        step = agent.record(tool_call())
        asked = agent.escalate(
            troth.Identifier.parse(alice), question="refund?", parent=step.record
        )
    args = ("trace", "resolve", asked.record, "--as", "alice", "--outcome", "approved")
    troth_process(*args, *RESOLVE, crash="trace.append.before-commit")
    assert run_json("trace", "verify")["records"] == 2  # rolled back: nothing of it
    troth_process(*args, *RESOLVE, crash="trace.append.after-commit")
    redo = json.loads(troth_process(*args, *RESOLVE).stdout)
    assert redo["resolves"] == asked.record
    assert run_json("trace", "verify")["records"] == 3  # the one resolution, not two
    other = ("trace", "resolve", asked.record, "--as", "alice", "--outcome", "refused")
    refused = json.loads(troth_process(*other, *RESOLVE, code=1).stdout)
    assert refused["reason"] == "record already in the log"
    assert "approved" in refused["detail"]


def unnamed(node_name: str) -> list[str]:
    return [
        row["identifier"]
        for row in run_json("identity", "list", "--node", node_name)
        if row["name"] is None
    ]


def test_a_log_opened_first_and_killed_leaves_no_identity_it_does_not_name(
    troth_home: Path,
) -> None:
    """Killed inside the identity's transaction (`identity.create.after-commit`, joined to the
    reservation's), after the reservation (`trace.log-identity.after-reserve`: node.db rolled
    back) or after node.db's commit (`trace.log-identity.before-bind`): the next opening
    leaves one unnamed identity, the log's (the reserved one, when node.db held it)."""
    for number, point in enumerate(
        (
            "identity.create.after-commit",
            "trace.log-identity.after-reserve",
            "trace.log-identity.before-bind",
        )
    ):
        name = f"x{number}"
        troth_process("node", "create", name)
        checkpoint = ("trace", "checkpoint", "--node", name)
        troth_process(*checkpoint, crash=point)
        left = unnamed(name)
        assert len(left) == (1 if point == "trace.log-identity.before-bind" else 0)
        troth_process(*checkpoint)
        with open_node(name) as node, open_node_log(node, clock=SystemClock()) as log:
            bound = str(log.log_identity)
        assert unnamed(name) == [bound]
        assert left in ([], [bound])
