"""Review 59f (short adversarial review of the lead's late fixes), trace: `troth trace verify
--checkpoint FILE` compares the node's log with the node's accepted checkpoint where nothing is
kept at FILE yet (review 58w, cli 3); an export of that log (`--file`) was not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.traces import node_trace_db, record_on_node
from tests.test_review58h_trace import _deleted
from troth.node import troth_home


def rolled_back(tmp_path: Path) -> Path:
    """The default node accepted its log's checkpoint of 2 records; trace.db is then put back
    to a copy of 1 record and its checkpoint (a backup restored). An export of the log as it
    was, intact (2 records)."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    trace_db = node_trace_db(troth_home())
    backup = tmp_path / "backup.db"
    shutil.copyfile(trace_db, backup)
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "kept.note"))  # accepted: 2 records
    intact = tmp_path / "intact.jsonl"
    run("trace", "export", "--out", str(intact))
    _deleted(trace_db)
    shutil.copyfile(backup, trace_db)
    return intact


@pytest.mark.parametrize("kept", [False, True], ids=["no-checkpoint", "new-kept-file"])
def test_trace1_an_export_of_a_rolled_back_log_is_compared_with_the_accepted_one(
    tmp_path: Path, kept: bool
) -> None:
    """review 59f, trace 1: an export of the node's log rolled back below the checkpoint the
    node accepted of that log (made from the backup put back, or cut short by its sender),
    verified on that node with no --checkpoint or a new kept file, read `unanchored: 1
    record(s) verified`, exit 0: the node's accepted checkpoint, which refuses the log itself
    (review 58c trace 2, 58w cli 3), was never compared with. The intact export is `valid`
    against it."""
    intact = rolled_back(tmp_path)
    export = tmp_path / "eval.jsonl"
    run("trace", "export", "--out", str(export))
    given = ["--checkpoint", str(tmp_path / "new.note")] if kept else []
    said = run("trace", "verify", "--file", str(export), *given, code=1).stderr
    assert "shorter than the anchored checkpoint (the export's checkpoint is of 1 records" in said
    out = run("trace", "verify", "--file", str(intact), *given).stdout
    assert out.startswith("valid: 2 record(s)"), out
    assert "against the node's accepted checkpoint of 2 record(s)" in out
