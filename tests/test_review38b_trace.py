"""Review 38b, traces: adversarial re-review of record ids per agent, `links.parent_agent`
and version 1 links resolved earlier-first (docs/formats.md, "Trace records": the version
rule).

1. An export of some of a log's lines (`troth trace export --agent`, or lines an auditor
   was handed) was verified as if it held every record: a version 1 link whose earlier
   record under its id the export left out was read as a forward link and took the signer's
   own later record (or another agent's) under the id. The human whose old resolution
   answers an agent's escalation signs a record of its own under the escalation's id
   afterwards (as in review 37b, trace 1): `verify_log` of the log stays green, but the
   human's own export (`troth trace export --agent HUMAN`) is reported broken
   (LINK_INVALID: the parent is no escalation), and an export of two agents' lines
   resolved the link to a third agent's record the log never linked it to.
2. `troth trace show` drew the tree by recursion, one Python frame per level (and each
   record's JSON rebuilt its whole subtree): an agent whose every record names the one
   before as parent (a long-running agent; a member through the trace service) made a tree
   as deep as its records, and past about a thousand `trace show` failed (RecursionError),
   its text indented with the square of their number.
3. A member's `prove` of a record no checkpoint covered made the node sign one, whenever
   asked: a member proving each record it submits made a checkpoint per record, every one
   kept in the log and verified (a signature each) by every `troth trace verify`.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held
from tests.test_review27t_collect import NOW as SERVED
from tests.test_review27t_collect import _batch, _collector
from tests.test_review36e_trace import _export
from tests.test_review36g_trace import _old_log
from troth import limits
from troth.clock import SystemClock
from troth.errors import TraceError, TraceFailure
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log, verify_log
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.log import TraceLog
from troth.trace.record import Kind, Links
from troth.trace.signing import RecordContent, open_envelope, sign_record


def _export_of(log: TraceLog, agent: Held) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out, agent=agent.identifier)
    return [line.encode() for line in out.getvalue().splitlines()]


def test_an_agents_export_keeps_its_old_links_meaning(tmp_path: Path) -> None:
    """Trace 1: the human's old resolution (version 1, index 1) answers the agent's
    escalation (index 0); the human then signs a record of its own under the escalation's
    id (index 2). The log verifies (review 37b, trace 1); the human's own export, which
    leaves the agent's escalation out, verifies too: a link whose record before it may be
    among the lines left out is not read against the records after it. Was a strict xfail
    until `verify_export` resolved a version 1 link only when the lines present settle it
    (`_settled`)."""
    log, asked, answer, human = _old_log(tmp_path)
    content = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=asked.record.id)
    mine = sign_record(human.signer(NOW), content, seq=1, prev=answer.hash, time=NOW)
    assert log.append(mine).index == 2
    assert verify_log(log).size == 3
    assert verify_export(_export(log)).records == 3
    lines = _export_of(log, human)
    assert len(lines) == 2
    assert verify_export(lines).records == 2


def test_an_export_of_some_agents_keeps_an_old_links_meaning(tmp_path: Path) -> None:
    """Trace 1: a third identity signs a step of its own under the escalation's id after the
    old resolution (index 2): an export of the human's and that identity's lines (the
    agent's escalation left out) verifies; the link is not read against the later step. Was
    a strict xfail until `verify_export` resolved a version 1 link only when the lines
    present settle it."""
    log, asked, _answer, human = _old_log(tmp_path)
    third = Held()
    content = RecordContent(Kind.TOOL_INVOCATION, values={"result": "s"}, id=asked.record.id)
    assert (
        log.append(sign_record(third.signer(NOW), content, seq=0, prev=None, time=NOW)).index == 2
    )
    assert verify_log(log).size == 3
    lines = _export_of(log, human) + _export_of(log, third)
    assert verify_export(lines).records == 2


def _deep_chain(steps: int) -> list[str]:
    """A default node's log holding `steps` records of one identity, each the child of the
    one before (a member's records through the trace service would do as well)."""
    run("identity", "create", "deep")
    clock = SystemClock()
    ids: list[str] = []
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(log, lambda now: node.identities.signer("deep", now=now), clock=clock)
        for _ in range(steps):
            links = Links(parent=ids[-1] if ids else None)
            step = RecordContent(Kind.TOOL_INVOCATION, values={"result": "ok"}, links=links)
            ids.append(agent.record(step).record)
    return ids


def test_show_draws_a_deep_chain_of_records() -> None:
    """View 2: an agent whose records each name the one before as parent (a long-running
    agent's steps; a member's records through the trace service) makes a tree as deep as
    its records. `troth trace show` draws it, text and --json, MAX_TRACE_SHOW_DEPTH levels at
    a time: the records below are trees of their own naming the record they are below. Was
    a strict xfail until the tree was drawn without recursion, in pieces (`pieces`)."""
    ids = _deep_chain(1500)
    per = limits.MAX_TRACE_SHOW_DEPTH + 1  # records a piece of the chain holds
    text = run("trace", "show").stdout.splitlines()
    assert len(text) == 1500
    assert max(len(line) - len(line.lstrip()) for line in text) == 2 * (per - 1)
    assert text[per - 1].endswith("(1 below, drawn apart)")
    assert text[per].startswith(f"#{per} ")
    assert text[per].endswith(f"(below #{per - 1})")
    tree = run_json("trace", "show")
    assert len(tree) == -(-1500 // per)
    chain: list[str] = []
    for piece, node in enumerate(tree):
        assert node.get("below") == (piece * per - 1 if piece else None)
        while True:
            chain.append(node["id"])
            if not node["children"]:
                break
            (node,) = node["children"]
        assert node.get("continued") == (1 if piece < len(tree) - 1 else None)
    assert chain == ids


def test_a_members_proves_sign_a_checkpoint_at_most_every_interval(tmp_path: Path) -> None:
    """Trace 3: a member submits a record and asks for its proof, 20 times in one second.
    The node signs one checkpoint for them (the first proof); the next proofs of records it
    does not cover are refused `over a limit` until TRACE_MEMBER_CHECKPOINT_SECONDS have
    passed, then a new checkpoint is signed. A local caller's proof is not held back. Was a
    strict xfail until a member's proof signed a checkpoint only when the newest is old
    enough (`TraceCollector.prove(now=)`)."""
    world, log, collector = _collector(tmp_path)
    member = world.support

    def submitted() -> str:
        submission = _batch(collector, member.signer, RecordContent(Kind.TOOL_INVOCATION))
        (result,) = collector.submit(submission, submitter=None, now=SERVED).results
        assert result.delivered, result.detail
        return open_envelope(submission.records[0].envelope)[0].id

    first = collector.prove(submitted(), requester=member.identifier, now=SERVED)
    assert verify_bundle(first).index == 0
    for _ in range(19):
        record = submitted()
        with pytest.raises(TraceError) as refused:
            collector.prove(record, requester=member.identifier, now=SERVED)
        assert refused.value.reason is TraceFailure.OVER_LIMIT
        assert "TRACE_MEMBER_CHECKPOINT_SECONDS" in refused.value.detail
    assert len(log.checkpoints()) == 1
    later = SERVED + limits.TRACE_MEMBER_CHECKPOINT_SECONDS
    proved = collector.prove(record, requester=member.identifier, now=later)
    assert verify_bundle(proved).index == 19
    assert len(log.checkpoints()) == 2
    local = submitted()
    assert verify_bundle(collector.prove(local, requester=None, now=later)).index == 20
