"""Review 58h (adversarial review of review 58c's trace changes): findings, each first a strict
xfail."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.cli import run, run_json
from tests.support.traces import node_trace_db, record_on_node
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
