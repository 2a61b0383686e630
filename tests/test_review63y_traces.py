"""Review 63y: the fixes of review 63s traces 1/2, attacked (each test failed on the code
before its fix).

traces 1 (medium): an honest export made before the node's accepted checkpoint, verified
  against an auditor's kept note older than both, was refused as a rollback. The auditor
  kept a checkpoint of 2 records; the log grew to 3 and was exported; it grew to 4, and the
  operator's verify moved the node's accepted checkpoint there. `troth trace verify --file
  export --checkpoint auditor.note` (the export's line 1 proves its checkpoint of 3 grew
  from the kept 2: VALID, since 63s traces 1) then read the export again against the
  accepted checkpoint of 4, which it is shorter than (TRUNCATED), and
  `AcceptedCheckpoints.anchored` refused the kept note as older than the accepted one:
  ROLLED_BACK, exit 1, the alarm of a rollback for an intact log. Before 63s the export read
  `unanchored` against the kept note and, the node's log proving it a prefix of the
  accepted checkpoint, `unanchored`, exit 0 (review 59k, trace 1).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run
from tests.support.traces import record_on_node


def test_an_older_export_grown_from_an_older_kept_note_is_no_rollback(
    troth_home: Path, tmp_path: Path
) -> None:
    """traces 1."""
    run("identity", "create", "support")
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    auditor = tmp_path / "auditor.note"
    run("trace", "verify", "--checkpoint", str(auditor))  # kept: 2
    record_on_node(troth_home, 1)
    run("trace", "checkpoint")
    export = tmp_path / "support.jsonl"
    run("trace", "export", "--out", str(export))  # 3 records
    record_on_node(troth_home, 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "operator.note"))  # accepted: 4
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(auditor))
    assert said.stdout.startswith("unanchored: 3 record(s) verified"), said.stdout
