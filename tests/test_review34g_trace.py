"""Review 34g, traces: exports and the per-agent chain.

1. `verify_export` checks each agent's chain between consecutive records present by filing
   every line under (agent, seq): a second record at a seq already seen replaced the first,
   so two records an agent signed at one seq (a fork of its chain: two versions of one step,
   "refund 20" and "refund 5000") verified as one export, where `verify_log` refuses the same
   log (`seq N after seq N`). Whoever holds the log's key (an operator colluding with the
   agent, a log re-signed after an edit) wrote both into one checkpointed tree.
2. `prove` (the trace service's `prove`, a member's request for a proof of one of its own
   records; `troth trace prove`) read every signer's history, every history window and every
   key attestation the log keeps, and decoded each attestation, to bundle one record: a member
   with one record in the log made the node's storage thread do work in proportion to every
   other agent the log ever took, per request, with no bound on how often it asks. The work is
   measured as SQLite virtual-machine steps (deterministic, not a timing).
3. `verify_export` checked, between an agent's consecutive records present, only that the
   later names the earlier's hash, not what `verify_log` checks along the chain too: its time
   does not go back and its key is not of an older change of the agent's history than the
   earlier's. Each line verifies alone by the record's own time, so a thief of a rotated-out
   key signs a record dated before the rotation (its key valid then) chained after one the
   agent signed with its new key: a record provably signed after its key retired. The log
   refuses it at append; a log re-signed with it (a stolen log key, a colluding operator)
   made an export that verified.
4. Likewise for decisions: `verify_export` never checked a resolution against the escalation
   it resolves, where `verify_log` (and the log, at append) refuses a resolution signed by
   another identity than the one the escalation asked. A re-signed log put a third party's
   "approved" under an escalation addressed to a human, and its export verified.
5. (Fixed in review 36a: ids are unique per agent, links name the agent.) Record ids were
   one namespace for the whole log, chosen by each signer (`RecordContent.id`, or random):
   an agent that learns another's record id before that record is in the log (a parent link
   handed to it in a multi-agent flow while the other's records wait in an outbox for the
   trace service) signs a record of its own under that id and submits it first. The other
   agent's record is then refused (`record already in the log`, other bytes: set aside by
   its outbox, so lost from the log), and every link to that id resolves to the squatter's
   record.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog, verify_log
from troth.trace.export import export_jsonl, prove, verify_bundle, verify_export
from troth.trace.record import Decision, Kind, Links
from troth.trace.signing import RecordContent, VerifiedRecord, sign_record


def _forked_log(tmp_path: Path) -> TraceLog:
    """A log holding two records of one agent at seq 1, both naming its seq 0 (the agents
    row put back between them, as a log's operator can)."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    rec = recorder(log, agent, clock)
    rec.record(tool_call(args={"amount": 20}))
    raw = db(log)
    head = raw.execute("SELECT * FROM agents").fetchall()
    rec.record(tool_call(args={"amount": 20}, result="refunded 20"))
    log.close()
    raw.execute("DELETE FROM agents")
    raw.executemany("INSERT INTO agents VALUES (?, ?, ?, ?, ?)", head)
    raw.close()
    forked = open_log(tmp_path / "trace.db", clock, owner)
    recorder(forked, agent, clock).record(tool_call(args={"amount": 5000}, result="refunded 5000"))
    return forked


def test_an_export_with_two_records_at_one_seq_is_refused(tmp_path: Path) -> None:
    """Trace 1: an export holding two records of one agent at one seq is refused as a broken
    chain, as the log itself is (was a strict xfail until `verify_export` refused a seq seen
    twice)."""
    log = _forked_log(tmp_path)
    with pytest.raises(TraceError) as whole:
        verify_log(log)
    assert whole.value.reason is TraceFailure.CHAIN_BROKEN
    out = io.StringIO()
    export_jsonl(log, out)
    lines = [line.encode() for line in out.getvalue().splitlines()]
    assert len(lines) == 3
    with pytest.raises(TraceError) as caught:
        verify_export(lines)
    assert caught.value.reason is TraceFailure.CHAIN_BROKEN
    assert "seq 1" in caught.value.detail


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


def test_an_export_with_a_record_signed_by_a_key_retired_before_it_is_refused(
    tmp_path: Path,
) -> None:
    """Trace 3: seq 0 by the agent's first key, seq 1 by its key after a rotation, seq 2 by
    the first key again, dated before the rotation and chained after seq 1 (inserted in the
    log by its operator): the export is refused as `verify_log` refuses the log (was a strict
    xfail until `verify_export` checked times and key changes between consecutive records)."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    rec = recorder(log, agent, clock)
    old = agent.signer(NOW)
    rec.record(tool_call())
    agent.rotate(NOW + 100)
    clock.advance(110)
    rec.renew()
    rec.record(tool_call())
    head = log.head(agent.identifier)
    assert head is not None
    stolen = sign_record(old, tool_call(args={"amount": 5000}), seq=2, prev=head[1], time=NOW + 90)
    log.close()
    _insert(log, 2, stolen)
    forged = open_log(tmp_path / "trace.db", clock, owner)
    with pytest.raises(TraceError) as whole:
        verify_log(forged)
    assert whole.value.reason is TraceFailure.TIME_REVERSED
    lines = _export(forged)
    assert len(lines) == 3
    for line in lines:
        verify_bundle(line)  # each alone: the stolen key was valid at the time it claims
    with pytest.raises(TraceError) as caught:
        verify_export(lines)
    assert caught.value.reason in (TraceFailure.TIME_REVERSED, TraceFailure.KEY_RETIRED)
    assert caught.value.index == 2


def test_leaving_a_line_out_does_not_hide_a_record_dated_back(tmp_path: Path) -> None:
    """Trace 3, with the record between them left out of the export (an export may hold any
    subset of the lines): seq 1 by the new key and seq 3 by the rotated-out one, dated before
    seq 1, still make the export refused: times and key changes never go back along an
    agent's chain, whatever lies between (was a strict xfail until `verify_export` compared
    each record with the agent's record present before it, not only with seq - 1)."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    rec = recorder(log, agent, clock)
    old = agent.signer(NOW)
    rec.record(tool_call())
    agent.rotate(NOW + 100)
    clock.advance(110)
    rec.renew()
    rec.record(tool_call())
    rec.record(tool_call())
    head = log.head(agent.identifier)
    assert head is not None
    stolen = sign_record(old, tool_call(args={"amount": 5000}), seq=3, prev=head[1], time=NOW + 90)
    log.close()
    _insert(log, 3, stolen)
    lines = _export(open_log(tmp_path / "trace.db", clock, owner))
    del lines[2]  # seq 2, which seq 3 names
    with pytest.raises(TraceError) as caught:
        verify_export(lines)
    assert caught.value.reason in (TraceFailure.TIME_REVERSED, TraceFailure.KEY_RETIRED)


def _insert(log: TraceLog, index: int, record: VerifiedRecord) -> None:
    """Write `record` at `index` of the (closed) log's file, as its operator can."""
    raw = db(log)
    raw.execute(
        "INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?)",
        (
            index,
            record.record.id,
            record.leaf,
            record.envelope,
            record.stored_disclosures,
            record.record.agent.digest,
        ),
    )
    raw.execute("UPDATE meta SET value = ? WHERE name = 'size'", (index + 1,))
    signer = record.signer
    raw.execute(
        "INSERT OR IGNORE INTO histories VALUES (?, ?, ?, ?)",
        (
            signer.identifier.digest,
            signer.history,
            signer.change_count,
            signer.current_change_hash,
        ),
    )
    raw.execute(
        "INSERT OR IGNORE INTO attestations VALUES (?, ?, ?)",
        (record.epoch.keyid, signer.identifier.digest, record.attestation),
    )
    raw.close()


def test_an_export_with_a_resolution_by_someone_not_asked_is_refused(tmp_path: Path) -> None:
    """Trace 4: an agent escalates to a human; a third party's resolution of it (inserted in
    the log by its operator) makes the export refused, as `verify_log` refuses the log (was a
    strict xfail until `verify_export` checked each resolution against its escalation)."""
    clock, owner = FixedClock(NOW), Held()
    agent, human, other = Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 5000?")
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "nothing", "reasoning": "approved"},
        decision=Decision("approved"),
        links=Links(parent=asked.record, parent_agent=agent.identifier),
    )
    forged = sign_record(other.signer(NOW), content, seq=0, prev=None, time=NOW)
    log.close()
    _insert(log, 1, forged)
    resigned = open_log(tmp_path / "trace.db", clock, owner)
    with pytest.raises(TraceError) as whole:
        verify_log(resigned)
    assert whole.value.reason is TraceFailure.LINK_INVALID
    lines = _export(resigned)
    with pytest.raises(TraceError) as caught:
        verify_export(lines)
    assert caught.value.reason is TraceFailure.LINK_INVALID
    assert (caught.value.index, caught.value.record) == (1, forged.record.id)


def _prove_steps(log: TraceLog, record_id: str) -> int:
    """The SQLite virtual-machine steps `prove(log, record_id)` takes (it checks the bundle)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn = log.store.connection()
    conn.set_progress_handler(count, 1)
    try:
        bundle = prove(log, record_id)
    finally:
        conn.set_progress_handler(None, 1)
    assert verify_bundle(bundle).record.id == record_id
    return steps


def _log_of(path: Path, others: list[Held]) -> tuple[TraceLog, str]:
    """A log of one record of a member, then 40 records by `others` in turn, checkpointed;
    the member's record id (index 0: the same proof in every such log)."""
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    mine = recorder(log, Held(), clock).record(tool_call()).record
    recorders = [recorder(log, other, clock) for other in others]
    for n in range(40):
        recorders[n % len(recorders)].record(tool_call())
    log.checkpoint()
    return log, mine


def test_proving_one_record_does_not_read_every_other_agents_rows(tmp_path: Path) -> None:
    """Trace 2: proving a member's record in a log of 41 records takes the same work whether
    the 40 others are one agent's or 40 agents' (before: 3 times the steps). Was a strict
    xfail until the bundler read only the rows of the record's signer, key and log (and the
    log's store indexed the attestations by identity)."""
    few, mine = _log_of(tmp_path / "few.db", [Held()])
    alone = _prove_steps(few, mine)
    many, theirs = _log_of(tmp_path / "many.db", [Held() for _ in range(40)])
    crowded = _prove_steps(many, theirs)
    assert crowded <= alone * 1.1, f"{crowded} steps with 40 other agents, {alone} with one"


def test_a_record_id_taken_by_another_agent_first_does_not_keep_a_record_out(
    tmp_path: Path,
) -> None:
    """Trace 5: agent A's record (signed, waiting to be sent) is appended though agent M,
    who learned its id, appended a record of its own under that id first. Was a strict xfail
    until record ids became unique per agent (the log files a record under (id, agent), a
    link to another agent's record names it: `links.parent_agent`; review 36a, trace)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    mine = sign_record(Held().signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    squatter = recorder(log, Held(), clock)
    squatted = RecordContent(Kind.TOOL_INVOCATION, values={"result": "squatted"}, id=mine.record.id)
    squatter.record(squatted)
    assert log.append(mine).index == 1
