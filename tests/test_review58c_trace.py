"""Review 58c (signed traces, issue #13): findings, each first a strict xfail."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held, node_trace_db, open_log, record_on_node, tool_call
from troth.clock import FixedClock, SystemClock
from troth.errors import StorageError, TraceError
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log
from troth.trace.verify import verify_log


@pytest.fixture
def checkpointed(tmp_path: Path) -> Path:
    """A default node whose log holds 2 records under a checkpoint the node accepted (kept at
    the returned path)."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 2)
    run("trace", "checkpoint")
    kept = tmp_path / "kept.note"
    run("trace", "verify", "--checkpoint", str(kept))
    assert run_json("trace", "verify", "--checkpoint", str(kept))["status"] == "valid"
    return kept


def _deleted(path: Path) -> None:
    for name in ("", "-wal", "-shm"):
        Path(f"{path}{name}").unlink(missing_ok=True)


def _emptied(path: Path) -> None:
    _deleted(path)
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [_deleted, _emptied], ids=["deleted", "emptied"])
def test_trace1_a_lost_log_is_reported_not_made_again(
    checkpointed: Path, damage: object, tmp_path: Path
) -> None:
    """review 58c, trace 1: trace.db deleted or emptied (a disk's damage, or whoever wants the
    audit trail gone): `troth trace verify` made a new log under a new log identity and
    answered `unanchored: 0 record(s) verified`, exit 0; any later record went into it."""
    assert callable(damage)
    damage(node_trace_db(troth_home()))
    said = run("trace", "verify", code=4).stderr
    assert "trace log damaged" in said
    assert "holds no log" in said
    with pytest.raises(StorageError, match="trace log damaged"):
        record_on_node(troth_home(), 1)
    assert run("trace", "verify", "--checkpoint", str(checkpointed), code=4)


def test_trace1_another_log_in_its_place_is_reported(checkpointed: Path, tmp_path: Path) -> None:
    """review 58c, trace 1: another node's trace.db put in place of the node's own verified
    on this node as its log (`unanchored`), its records taken for the node's."""
    run("node", "create", "other")
    run("identity", "create", "bot", "--node", "other")
    clock = SystemClock()
    with open_node("other", home=troth_home()) as node, open_node_log(node, clock=clock):
        pass
    other = troth_home() / "nodes" / "other" / "trace.db"
    mine = node_trace_db(troth_home())
    _deleted(mine)
    shutil.copyfile(other, mine)
    said = run("trace", "verify", code=4).stderr
    assert "trace log damaged" in said
    assert "is the log of" in said


def test_trace1_a_log_made_before_the_record_is_recorded_when_opened() -> None:
    """A node whose log was bound before node.db recorded it (before review 58c) keeps it, and
    its loss is reported from then on."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    raw = sqlite3.connect(troth_home() / "nodes" / "default" / "node.db")
    raw.execute("DROP TABLE trace_log_identities")
    raw.commit()
    raw.close()
    assert run_json("trace", "verify")["records"] == 1
    _deleted(node_trace_db(troth_home()))
    assert "holds no log" in run("trace", "verify", code=4).stderr


def test_trace2_a_log_rolled_back_is_truncated_without_a_kept_file(tmp_path: Path) -> None:
    """review 58c, trace 2: the node accepted its log's checkpoint of 3 records; trace.db put
    back to its copy of 1 record and its checkpoint (a backup restored, or the rows after it
    deleted with the later checkpoints): `troth trace verify` answered `unanchored: 1
    record(s) verified (no kept checkpoint to compare with: pass --checkpoint FILE)`, exit 0,
    as of a log never verified."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    trace_db = node_trace_db(troth_home())
    backup = tmp_path / "backup.db"
    shutil.copyfile(trace_db, backup)
    record_on_node(troth_home(), 2)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "kept.note"))
    assert run_json("trace", "verify")["status"] == "valid"  # against the node's accepted one
    _deleted(trace_db)
    shutil.copyfile(backup, trace_db)
    said = run("trace", "verify", code=1).stderr
    assert "log is shorter than the anchored checkpoint (anchored at 3, the log has 1)" in said


def test_trace3_a_rotation_dated_before_a_record_the_log_holds_is_named(tmp_path: Path) -> None:
    """review 58c, trace 3: an agent (a member, or one whose clock was stepped back) signs a
    record dated 290 s ahead of the log (within its 300 s window), then rotates with a change
    dated before that record and signs its next record with the new key: the log admits both,
    and its verification names the first (`signed by a key after its retirement`), which is
    what a thief's record after the rotation looks like offline. Review 58c refused such a
    history at append; review 58r, trace 3, showed a thief holding the old key could then lock
    the agent out of the log for good, so the log admits it and verification tells."""
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    agent, ahead = Held(), FixedClock(NOW + 290)
    first = TraceRecorder(log, lambda now: agent.signer(now), clock=ahead).record(tool_call())
    agent.rotate(NOW + 10)  # its change dated before the record the log holds
    TraceRecorder(log, lambda now: agent.signer(now), clock=ahead).record(tool_call())
    log.checkpoint()
    with pytest.raises(TraceError) as named:
        verify_log(log)
    assert (named.value.index, named.value.record) == (first.index, first.record)
    assert "retire" in str(named.value)


def test_trace3_a_rotation_after_a_record_dated_ahead_leaves_the_nodes_verify_valid() -> None:
    """review 58c, trace 3, what is left: the node verifies its log with its own copies of its
    signers' histories (its change rows, its stored copies), so a record dated ahead of the
    log (within the window) and a rotation dated before that record, which the node learns
    of by any path (a local `troth identity rotate` after a clock stepped back; a member's
    handshake with its new history, dated as it likes), turn every `troth trace verify` of
    the node's log red at that record, though its key was current when it entered the log,
    and hide any later fault (the first bad record is named). Needs a decision: a grace of
    MAX_CLOCK_SKEW_SECONDS after a retirement in the rule, or the node refusing a change dated
    before its identity's last record in the log. Review 59b: the node dates its own rotation
    no earlier than that record (`troth.node.rotation`); a member's history stays as said."""
    run("identity", "create", "support")
    clock = SystemClock()
    ahead = FixedClock(clock.now() + 250)
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=ahead
        ).record(tool_call())
    assert run_json("trace", "verify")["records"] == 1
    run("identity", "rotate", "support")
    assert run_json("trace", "verify")["records"] == 1
