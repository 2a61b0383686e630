"""Review 58r: attacks on reviews 58c and 58h's trace changes that did not work, kept as tests
of the defences that stopped them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held, node_trace_db, open_log, record_on_node, tool_call
from troth.clock import FixedClock, SystemClock
from troth.errors import TraceError, TraceFailure
from troth.node import open_node, troth_home
from troth.storage import SqliteDatabase
from troth.trace import TraceRecorder, open_node_log
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.checkpoint import parse_checkpoint
from troth.trace.verify import verify_log


def _deleted(path: Path) -> None:
    for name in ("", "-wal", "-shm"):
        Path(f"{path}{name}").unlink(missing_ok=True)


def _accepted() -> tuple[int, bytes]:
    with open_node("default", home=troth_home()) as node:
        row = node.db.fetch_one("SELECT note FROM trace_accepted")
    assert row is not None
    note = parse_checkpoint(bytes(row[0]))[0]
    return note.size, note.root


@pytest.mark.parametrize("grown", [1, 2], ids=["same size", "grown past"])
def test_verify_does_not_move_the_accepted_checkpoint_onto_a_fork(
    tmp_path: Path, grown: int
) -> None:
    """A trace.db put back to its copy of 1 record (the node accepting 2 since, by `troth trace
    verify` with no --checkpoint), then grown on by the node itself (a fork its own log
    identity signs, of the accepted size or past it): verify with no --checkpoint refuses it
    and leaves the node's accepted checkpoint as it was."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "kept.note"))
    trace_db = node_trace_db(troth_home())
    shutil.copyfile(trace_db, tmp_path / "backup.db")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    assert run_json("trace", "verify")["records"] == 2
    before = _accepted()
    assert before[0] == 2
    _deleted(trace_db)
    shutil.copyfile(tmp_path / "backup.db", trace_db)
    record_on_node(troth_home(), grown)
    run("trace", "checkpoint")
    assert "another root" in run("trace", "verify", code=1).stderr
    assert _accepted() == before


def test_keep_after_another_verifier_moved_on_refuses_a_fork(tmp_path: Path) -> None:
    """`keep` taking a row moved on past the note compared with (review 58r, trace 2) does not
    take a fork: a log of one record grown two ways under one log identity, the row at one
    branch's checkpoint of 2; the other branch's, verified against the checkpoint of 1, is
    refused (ROLLED_BACK) and the row kept."""
    owner, agent, clock = Held(), Held(), FixedClock(NOW)
    first = open_log(tmp_path / "a.db", clock, owner)
    TraceRecorder(first, lambda now: agent.signer(now), clock=clock).record(tool_call())
    one = first.checkpoint()
    first.close()
    shutil.copyfile(tmp_path / "a.db", tmp_path / "b.db")
    logs = [open_log(tmp_path / name, clock, owner) for name in ("a.db", "b.db")]
    for log, name in zip(logs, ("one", "other"), strict=True):
        TraceRecorder(log, lambda now: agent.signer(now), clock=clock).record(tool_call(name))
        log.checkpoint()
    mine, fork = (verify_log(log, anchor=one.note) for log in logs)
    assert mine.newest is not None
    assert fork.newest is not None
    assert mine.anchor is not None
    assert (mine.newest.size, fork.newest.size) == (2, 2)
    assert mine.newest.root != fork.newest.root
    accepted = AcceptedCheckpoints(SqliteDatabase(tmp_path / "node.db"))
    accepted.keep(None, mine.anchor)
    accepted.keep(mine.anchor, mine.newest, proof=logs[0].consistency_proof)
    with pytest.raises(TraceError) as refused:
        accepted.keep(mine.anchor, fork.newest, proof=logs[1].consistency_proof)
    assert refused.value.reason is TraceFailure.ROLLED_BACK
    row = accepted.newest(mine.newest.origin)
    assert row is not None
    assert row.root == mine.newest.root
    for log in logs:
        log.close()


def test_another_agent_dating_ahead_does_not_block_a_rotation(tmp_path: Path) -> None:
    """An agent's rotation is judged against its own records only: another agent's record dated
    ahead of the log neither blocks it nor turns the log's verification red."""
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    agent, other, ahead = Held(), Held(), FixedClock(NOW + 290)
    TraceRecorder(log, lambda now: agent.signer(now), clock=FixedClock(NOW)).record(tool_call())
    TraceRecorder(log, lambda now: other.signer(now), clock=ahead).record(tool_call())
    agent.rotate(NOW + 10)
    TraceRecorder(log, lambda now: agent.signer(now), clock=ahead).record(tool_call())
    log.checkpoint()
    assert verify_log(log).size == 3


def test_declare_lost_is_refused_while_the_log_is_open_or_behind_a_symlink(
    tmp_path: Path,
) -> None:
    """`troth trace declare-lost` reads trace.db as the node opens it: refused while a process
    holds the node's log open, and when trace.db is a symlink to the node's log moved away or
    to another node's log (nothing declared: the log still records)."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=SystemClock()):
        assert "holds this node's log" in run("trace", "declare-lost", code=4).stderr
    trace_db = node_trace_db(troth_home())
    moved = tmp_path / "moved.db"
    shutil.move(trace_db, moved)
    os.symlink(moved, trace_db)
    assert "holds this node's log" in run("trace", "declare-lost", code=4).stderr
    run("node", "create", "other")
    with open_node("other", home=troth_home()) as node, open_node_log(node, clock=SystemClock()):
        pass
    trace_db.unlink()
    os.symlink(troth_home() / "nodes" / "other" / "trace.db", trace_db)
    assert "not this node's" in run("trace", "declare-lost", code=4).stderr
    trace_db.unlink()
    os.symlink(moved, trace_db)
    record_on_node(troth_home(), 1)
    assert run_json("trace", "verify")["records"] == 2


def test_the_lost_log_put_back_after_a_new_one_is_refused(tmp_path: Path) -> None:
    """Declared lost, a new log begun, then the old trace.db put back: not taken for the
    node's log (damage), so the two logs are never both the node's."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    trace_db = node_trace_db(troth_home())
    shutil.copyfile(trace_db, tmp_path / "old.db")
    _deleted(trace_db)
    run("trace", "declare-lost")
    record_on_node(troth_home(), 1)
    _deleted(trace_db)
    shutil.copyfile(tmp_path / "old.db", trace_db)
    assert "trace log damaged" in run("trace", "verify", code=4).stderr


def test_a_kept_file_of_the_lost_log_is_refused_and_kept(tmp_path: Path) -> None:
    """A verifier keeping the node's log's checkpoint in its own file: after `troth trace
    declare-lost` and a new log, its `troth trace verify --checkpoint FILE` is refused (exit 1:
    the kept checkpoint is another log's), not `unanchored`, exit 0, and its file, the one
    anchor it holds of the lost log, is left as it was, not replaced by the new log's."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 2)
    run("trace", "checkpoint")
    kept = tmp_path / "kept.note"
    run("trace", "verify", "--checkpoint", str(kept))
    before = kept.read_bytes()
    _deleted(node_trace_db(troth_home()))
    run("trace", "declare-lost")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    assert "is not the log" in run("trace", "verify", "--checkpoint", str(kept), code=1).stderr
    assert kept.read_bytes() == before
