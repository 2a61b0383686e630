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


def other_logs_note(tmp_path: Path) -> Path:
    """A kept file holding a genuine checkpoint of another node's log (node `other`)."""
    run("node", "create", "other")
    run("trace", "checkpoint", "--node", "other")
    kept = tmp_path / "other.note"
    run("trace", "verify", "--node", "other", "--checkpoint", str(kept))
    return kept


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


def test_trace2_a_kept_file_of_another_log_does_not_hide_an_exports_rollback(
    tmp_path: Path,
) -> None:
    """review 59f, trace 2: as trace 1, with a kept file holding another node's genuine note
    (a verifier's file of another log, a path mixed up): the export read `unanchored ... (the
    kept checkpoint is another log's, or of another size: not compared)`, exit 0, where the
    node's log itself is refused with that file (tests/test_review59f_refuted.py). A kept note
    the export was not compared with anchors nothing: the node's accepted checkpoint is."""
    kept = other_logs_note(tmp_path)
    intact = rolled_back(tmp_path)
    export = tmp_path / "eval.jsonl"
    run("trace", "export", "--out", str(export))
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(kept), code=1).stderr
    assert "shorter than the anchored checkpoint (the export's checkpoint is of 1 records" in said
    out = run("trace", "verify", "--file", str(intact), "--checkpoint", str(kept)).stdout
    assert "against the node's accepted checkpoint of 2 record(s)" in out, out


def test_trace3_an_older_kept_note_does_not_hide_an_exports_rollback(tmp_path: Path) -> None:
    """review 59f, trace 3: the auditor's kept file holds the log's checkpoint of 1 record, the
    node accepted its checkpoint of 3 (the operator's verify); trace.db is put back to its copy
    of 2 records and exported. The export holds no proof against the kept size (1), so it read
    `unanchored ... (the kept checkpoint is another log's, or of another size: not compared)`,
    exit 0: the node's accepted checkpoint, which it is shorter than, was never compared
    with. (Review 52d's intact export in that place stays `unanchored`, exit 0.)"""
    run("identity", "create", "support")
    auditor = tmp_path / "auditor.note"
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(auditor))  # kept: 1 record
    trace_db = node_trace_db(troth_home())
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    shutil.copyfile(trace_db, tmp_path / "backup.db")  # 2 records
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "operator.note"))  # accepted: 3
    _deleted(trace_db)
    shutil.copyfile(tmp_path / "backup.db", trace_db)
    export = tmp_path / "eval.jsonl"
    run("trace", "export", "--out", str(export))
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(auditor), code=1)
    # review 63s, traces 1: the export's line 0 proves it grew from the kept note of 1; the
    # node accepted a larger checkpoint since, so it is compared with that (review 63y,
    # traces 1), which it is shorter than and not a prefix of in the node's log
    assert "anchored at 3" in said.stderr, said.stderr
