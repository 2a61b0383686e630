"""Review 37b, traces: re-review of record ids per agent (schema 4), `Links.parent_agent`
and record version 2 with version 1 links resolved earlier-first.

1. A version 1 link took the signer's own record under the id wherever it was in the log,
   even after the link. Ids are per agent now, so the signer of an old resolution (or of
   any version 1 record it submits today) can later sign a record of its own under the id
   the link names: the link then named that later record, not the escalation (or step)
   before it that the log admitted it against. `verify_log` and `verify_export` turned an
   honest log red (LINK_INVALID: the parent is not an escalation), and `troth trace show`
   and the OTel export re-hung the signed old record under one made afterwards: a member
   rewrote what its own past record meant. The signer's own record now comes first only
   among the records before the link (as the other agents' do: docs/formats.md, "Trace
   records", the version rule); a forward link (no record before it under the id) still
   takes the signer's own record after it first.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import troth
from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from tests.test_review36e_trace import _escalation, _export, _resolution
from tests.test_review36g_trace import _old_log, _step, shown_as_written
from troth.clock import FixedClock
from troth.errors import NotFound, TraceError, TraceFailure
from troth.identity import Identifier
from troth.storage import SqliteDatabase
from troth.trace import verify_log
from troth.trace.export import prove, verify_bundle, verify_export
from troth.trace.outbox import TraceOutbox
from troth.trace.record import Kind
from troth.trace.signing import RecordContent, sign_record
from troth.trace.view import trace_tree


def test_the_signers_later_record_under_the_id_leaves_its_old_link_as_written(
    tmp_path: Path,
) -> None:
    """Trace 1: the human whose old resolution (version 1) answers an agent's escalation
    signs a record of its own under the escalation's id afterwards (the log admits it: ids
    are per agent). The resolution still answers the escalation: `verify_log` and
    `verify_export` verify the log, `trace show` and OTel keep it under the escalation. Was a
    strict xfail until the signer's own record came first only among the records before the
    link (`Holding.own` is its index; `parent_record`)."""
    log, asked, answer, human = _old_log(tmp_path)
    content = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=asked.record.id)
    mine = sign_record(human.signer(NOW), content, seq=1, prev=answer.hash, time=NOW)
    assert log.append(mine).index == 2
    assert verify_log(log).size == 3
    assert verify_export(_export(log)).records == 3
    shown_as_written(log)


def test_a_forward_link_still_takes_the_signers_own_record_after_it(tmp_path: Path) -> None:
    """A forward version 1 link (no record before it under the id) whose signer appends the
    record afterwards names it, whoever else holds the id after the link: the old rule for a
    step appended before its own parent."""
    log, _asked, answer, human = _old_log(tmp_path)
    other = Held()
    wanted = "0190f0a0b0c07d00a000000000000001"
    step = _step(human, wanted, seq=1, prev=answer.hash)
    assert log.append(step).index == 2
    squat = RecordContent(Kind.TOOL_INVOCATION, values={"result": "s"}, id=wanted)
    log.append(sign_record(other.signer(NOW), squat, seq=0, prev=None, time=NOW))
    content = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=wanted)
    mine = sign_record(human.signer(NOW), content, seq=2, prev=step.hash, time=NOW)
    assert log.append(mine).index == 4
    assert verify_log(log).size == 5
    assert verify_export(_export(log)).records == 5
    roots = trace_tree(log)
    assert [(root.index, [c.index for c in root.children]) for root in roots] == [
        (0, [1]),
        (3, []),
        (4, [2]),
    ]


_ROWS = 600  # more than one chunk of the migration's copy (500 rows)
_KILL_IN_MIGRATION = """
import os, signal, sys
import troth.trace.store as store
seen = [0]
original = store.envelope_agent
def envelope_agent(envelope):
    seen[0] += 1
    if seen[0] == int(sys.argv[2]):  # past the first chunk of rows copied
        os.kill(os.getpid(), signal.SIGKILL)
    return original(envelope)
store.envelope_agent = envelope_agent
store.open_trace_store(sys.argv[1])
"""


def test_a_migration_killed_midway_leaves_schema_3_and_is_redone(tmp_path: Path) -> None:
    """Attack 1 (nothing found): the schema 3 -> 4 migration SIGKILLed after copying more
    than one chunk of rows leaves the log at schema 3 with every record (one transaction:
    no half-migrated log), and the next open migrates it whole, verifying."""
    clock = FixedClock(NOW)
    owner, a = Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    rec = recorder(log, a, clock)
    ids = [rec.record(tool_call()).record for _ in range(_ROWS)]
    log.close()
    raw = db(log)
    raw.executescript(
        "BEGIN; CREATE TABLE old (idx INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, "
        "leaf BLOB NOT NULL, envelope BLOB NOT NULL, disclosures BLOB); "
        "INSERT INTO old SELECT idx, record_id, leaf, envelope, disclosures FROM leaves; "
        "DROP TABLE leaves; ALTER TABLE old RENAME TO leaves; PRAGMA user_version = 3; COMMIT;"
    )
    raw.close()
    path = str(tmp_path / "trace.db")
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_IN_MIGRATION, path, str(_ROWS - 10)],
        env={**os.environ, "PYTHONPATH": str(Path(troth.__file__).parent.parent)},
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
    columns = [row[1] for row in raw.execute("PRAGMA table_info(leaves)")]
    assert columns == ["idx", "record_id", "leaf", "envelope", "disclosures"]
    assert raw.execute("SELECT count(*) FROM leaves").fetchone()[0] == _ROWS
    raw.close()
    reopened = open_log(tmp_path / "trace.db", clock, owner)
    assert reopened.find(ids[-1], a.identifier).index == _ROWS - 1
    assert verify_log(reopened).size == _ROWS


def _set_aside(outbox: TraceOutbox, agent: Identifier) -> None:
    """`agent`'s first queued record set aside, as a refusal for good sets it aside."""
    (row,) = outbox.store.first(agent.digest, 1)
    with outbox.store.transaction():
        assert outbox.store.set_aside(
            agent.digest, row.pos, row.hash, reason="refused", detail="for good", now=NOW
        )


def test_a_record_set_aside_is_never_replaced_by_another_agents_under_its_id(
    tmp_path: Path,
) -> None:
    """Trace 2: two local identities' outboxes in one node database (the tables hold every
    agent's records); B makes a record under the id of A's record set aside (ids may be the
    caller's: `RecordContent.id`). B's record is refused (REPLAYED, naming the outbox), and
    A's record set aside stays listed and counted: setting B's aside would have replaced A's
    (the table is keyed by record id alone), losing it while its counters still said one.
    Was a strict xfail until `OutboxStore.insert` refused an id set aside (ids are unique in
    the outbox, queued and set aside)."""
    db = SqliteDatabase(tmp_path / "node.db")
    a, b = Held(), Held()
    first = TraceOutbox(db, a.identifier, lambda now: a.signer(now))
    second = TraceOutbox(db, b.identifier, lambda now: b.signer(now))
    mine = first.add(RecordContent(Kind.TOOL_INVOCATION, values={"result": "a"}), now=NOW)
    _set_aside(first, a.identifier)
    squat = RecordContent(Kind.TOOL_INVOCATION, values={"result": "b"}, id=mine.record)
    with pytest.raises(TraceError) as refused:
        second.add(squat, now=NOW)
    assert refused.value.reason is TraceFailure.REPLAYED
    assert "set aside" in refused.value.detail
    assert [(r.record, r.agent) for r in first.store.refused()] == [
        (mine.record, a.identifier.digest)
    ]
    counted = {agent: rows for agent, _q, _qb, rows, _rb in first.store.counts()}
    assert counted == {a.identifier.digest: 1}
    first.close()
    second.close()
    db.close()


def test_a_version_1_resolution_by_another_than_the_one_asked_is_refused(
    tmp_path: Path,
) -> None:
    """Attack 3 (nothing found): a member signs a version 1 resolution today (decoders read
    version 1 for old clients) of an agent's escalation asking another human, named by id
    alone: the link is resolved (the one record under the id) and the escalation's `to`
    checked all the same, refused naming both; the human asked still resolves it."""
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    agent, human, member = Held(), Held(), Held()
    asked = _escalation(agent, human.identifier)
    log.append(asked)
    with pytest.raises(TraceError) as refused:
        log.append(_resolution(member, asked))
    assert refused.value.reason is TraceFailure.LINK_INVALID
    assert refused.value.detail == (
        f"escalated to {human.identifier}, resolved by {member.identifier}"
    )
    assert log.append(_resolution(human, asked)).index == 1
    assert verify_log(log).size == 2


def test_redact_and_prove_name_the_agents_record_or_pick_none(tmp_path: Path) -> None:
    """Attack 4 (nothing found): with two agents' records under one id, redacting or proving
    it without naming the agent is refused (`name the agent`, nothing redacted); naming one
    redacts that agent's value only and proves that agent's record."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a, m = Held(), Held()
    first = recorder(log, a, clock).record(tool_call(result="a's"))
    squat = RecordContent(Kind.TOOL_INVOCATION, values={"result": "m's"}, id=first.record)
    recorder(log, m, clock).record(squat)
    with pytest.raises(NotFound, match="name the agent"):
        log.redact(first.record, "result")
    with pytest.raises(NotFound, match="name the agent"):
        prove(log, first.record)
    assert set(log.disclosures(first.record, a.identifier)) == {"result"}
    assert log.redact(first.record, "result", agent=m.identifier)
    assert log.disclosures(first.record, m.identifier) == {}
    assert log.disclosures(first.record, a.identifier)["result"].value == b'"a\'s"'
    bundle = prove(log, first.record, a.identifier)
    assert verify_bundle(bundle).index == 0
    assert verify_log(log).size == 2
