"""Review 58r (adversarial review of reviews 58c and 58h's trace changes): findings, each first
a strict xfail."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held, node_trace_db, open_log, record_on_node, tool_call
from troth.clock import FixedClock
from troth.errors import StorageError, TraceError
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.checkpoint import parse_checkpoint


def _deleted(path: Path) -> None:
    for name in ("", "-wal", "-shm"):
        Path(f"{path}{name}").unlink(missing_ok=True)


def test_trace1_a_log_declared_lost_then_restored_is_refused(tmp_path: Path) -> None:
    """review 58r, trace 1: `troth trace declare-lost`, then the old trace.db put back (a
    backup found, or kept aside by whoever declared it lost) before the next record: the node
    took it back as its log while node.db still named it lost (`valid: 1 record(s) verified;
    this node's earlier log X was declared lost`, of the log it verified), and as node.db made
    no log it did not declare lost, review 58c's guard was off for good: trace.db deleted again
    made a new log, silently, with no declare-lost. A log declared lost is now refused as
    damage ('declared lost': move it aside), as another log's file is."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    trace_db = node_trace_db(troth_home())
    backup = tmp_path / "backup.db"
    shutil.copyfile(trace_db, backup)
    _deleted(trace_db)
    run("trace", "declare-lost")
    _deleted(trace_db)  # (declare-lost opened an empty one)
    shutil.copyfile(backup, trace_db)
    said = run("trace", "verify", code=4).stderr
    assert "declared lost" in said
    with pytest.raises(StorageError, match="declared lost"):
        record_on_node(troth_home(), 1)
    _deleted(trace_db)  # moved aside: the new log is made
    record_on_node(troth_home(), 1)
    assert run_json("trace", "verify")["records"] == 1


def _two_checkpoints() -> None:
    """The default node's log: checkpoints of 1 and 2 records, the node accepting the first."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(troth_home() / "kept.note"))
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")


@pytest.mark.parametrize("kept", [False, True], ids=["node's", "kept file"])
def test_trace2_two_verifies_racing_do_not_read_as_a_rollback(
    monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    """review 58r, trace 2: two `troth trace verify` with no --checkpoint at once (an operator's
    and a scheduled one), both against the node's accepted checkpoint of 1 record, both seeing
    the log's newest of 2: the first to finish moves the accepted checkpoint on to 2 (review
    58h, trace 1), and the other's `keep` then checked the note it was compared with (1) again
    inside its transaction, older than the row now: exit 1, `kept checkpoint older than one
    accepted before` (ROLLED_BACK), for an intact log that only grew. So did a verifier with
    a kept file of 1 record. `keep` now takes the row moved on past the note compared with when
    the log is consistent with it too (the log's consistency proof between the two)."""
    _two_checkpoints()
    from troth.node import trace_checks  # the CLI's library call (review 60g)

    class Raced(AcceptedCheckpoints):
        def anchored(self, report: Any, again: Any) -> Any:
            report = super().anchored(report, again)
            with open_node("default", home=troth_home()) as node:  # the other verifier's keep
                AcceptedCheckpoints(node.db).keep(report.anchor, report.newest)
            return report

    monkeypatch.setattr(trace_checks, "AcceptedCheckpoints", Raced)
    file = ("--checkpoint", str(troth_home() / "kept.note")) if kept else ()
    verified = run_json("trace", "verify", *file)
    assert (verified["status"], verified["records"]) == ("valid", 2)
    with open_node("default", home=troth_home()) as node:
        row = node.db.fetch_one("SELECT note FROM trace_accepted")
    assert row is not None
    assert parse_checkpoint(bytes(row[0]))[0].size == 2


@pytest.mark.parametrize("ahead", [290, 0], ids=["dated ahead", "after the rotation"])
def test_trace3_a_thief_with_the_retired_key_does_not_lock_the_agent_out(
    tmp_path: Path, ahead: int
) -> None:
    """review 58r, trace 3: a thief holding an agent's signing key appends a record with it
    before the agent's rotation reaches the log: dated ahead of the log (within
    MAX_CLOCK_SKEW_SECONDS) before the rotation, or simply signed after it (the log has not
    seen the rotation yet). The rotation is then dated before that record, and review 58c's
    check (troth.trace.retiring) refused every record of the agent's from then on, however
    late (its change stays dated before the thief's record), while the log, never given the
    rotation, went on admitting the thief's records under the retired key: rotating a stolen
    key out locked the agent out of the log and left it to the thief. Before review 58c the
    log took the rotation, and verify named the thief's record (signed by a key after its
    retirement): so it does again (the refusal is gone)."""
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    agent = Held()
    stolen = agent.signer(NOW)
    TraceRecorder(log, lambda now: stolen, clock=FixedClock(NOW)).record(tool_call())
    agent.rotate(NOW + 10)  # the agent rotates the stolen key out
    thief = FixedClock(NOW + 20 + ahead)
    log.clock = FixedClock(NOW + 20)
    TraceRecorder(log, lambda now: stolen, clock=thief).record(tool_call())
    later = FixedClock(NOW + 3600)
    log.clock = later
    TraceRecorder(log, lambda now: agent.signer(now), clock=later).record(tool_call())
    with pytest.raises(TraceError):  # the retired key, after the agent's rotation is in
        TraceRecorder(log, lambda now: stolen, clock=later).record(tool_call())


def test_trace4_a_log_holding_records_is_not_declared_lost() -> None:
    """review 58r, trace 4: trace.db holding the node's records and checkpoints, only its
    `meta` row `log_identity` gone (a damaged page, a stray DELETE), is `trace log damaged:
    ... holds no log`, and `troth trace declare-lost` took it for a lost file: the records,
    there all along, were named lost, and the next opening bound a new log identity into that
    same file over the old log's records and checkpoints: every `troth trace verify` of the
    node's log failed from then on (`checkpoint invalid`, `no change history for the signer`)
    and each new record went into that mixed log. A trace.db holding records is not a lost
    log: declare-lost refuses it, and no new log is made over them."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 2)
    run("trace", "checkpoint")
    raw = sqlite3.connect(node_trace_db(troth_home()))
    raw.execute("DELETE FROM meta WHERE name = 'log_identity'")
    raw.commit()
    raw.close()
    said = run("trace", "declare-lost", code=4).stderr
    assert "holds records" in said
    assert "trace log damaged" in run("trace", "verify", code=4).stderr
