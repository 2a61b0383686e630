"""Review 58h (adversarial review of review 58c's trace changes): findings, each first a strict
xfail."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.cli import run, run_json
from tests.support.traces import node_trace_db, record_on_node
from tests.test_review45f_delegate import enrolled_with_helper
from troth.identity import Identifier
from troth.node import troth_home


def _deleted(path: Path) -> None:
    for name in ("", "-wal", "-shm"):
        Path(f"{path}{name}").unlink(missing_ok=True)


def test_trace1_a_log_verified_without_a_kept_file_is_not_rolled_back_below_it(
    tmp_path: Path,
) -> None:
    """review 58h, trace 1: the node accepted its log's checkpoint of 1 record (a kept file,
    once); `troth trace verify` with no --checkpoint then answered `valid: 3 record(s)`, yet
    left the node's accepted checkpoint at 1, so trace.db put back to its copy of 2 records
    and their checkpoint (a backup restored) read `valid: 2 record(s)` too, the third record
    gone unseen. A verification against the node's accepted checkpoint now moves it on to the
    newest checkpoint it verified (onto a log consistent with it only, as a kept file's)."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "kept.note"))  # accepted: 1 record
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    trace_db = node_trace_db(troth_home())
    backup = tmp_path / "backup.db"
    shutil.copyfile(trace_db, backup)  # 2 records and their checkpoint
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    verified = run_json("trace", "verify")
    assert (verified["status"], verified["records"]) == ("valid", 3)
    _deleted(trace_db)
    shutil.copyfile(backup, trace_db)
    said = run("trace", "verify", code=1).stderr
    assert "log is shorter than the anchored checkpoint (anchored at 3, the log has 2)" in said


def _delegate(to: Identifier, out: Path, code: int = 0) -> str:
    return str(
        run(
            "credential", "delegate", "--as", "agent", "--to", str(to), "--attr",
            "team.name=x", "--ttl", "30m", "--purpose", "help", "--out", str(out),
            "--node", "agent", code=code,
        ).stderr
    )  # fmt: skip


def test_trace2_a_node_whose_log_is_lost_without_a_backup_can_start_a_new_one(
    tmp_path: Path,
) -> None:
    """review 58h, trace 2: since review 58c, trace 1, a node whose trace.db is lost (a disk's
    damage, a deletion) is `trace log damaged` until the file is restored from a backup; a
    node with no backup of it could never record again, so never delegate again (a delegation
    is recorded before its chain is handed out: docs/traces.md, "Wiring"), nor record a gate's
    decision, with no command to get out (only SQL in node.db). `troth trace declare-lost`
    records the loss (the node's log identities so far named lost, in node.db), after which
    a new log is made; `troth trace verify` names the lost log from then on."""
    helper = enrolled_with_helper()
    out = tmp_path / "helper.chain"
    _delegate(helper, out)
    trace_db = troth_home() / "nodes" / "agent" / "trace.db"
    _deleted(trace_db)
    assert "trace log damaged" in _delegate(helper, out, code=4)
    said = run_json("trace", "declare-lost", "--node", "agent")
    assert len(said["lost"]) == 1
    _delegate(helper, out)
    verified = run_json("trace", "verify", "--node", "agent")
    assert verified["records"] == 1
    assert [lost["log"] for lost in verified["lost_logs"]] == said["lost"]
    # declared once: the log is here now, nothing to declare
    run("trace", "declare-lost", "--node", "agent", code=4)
