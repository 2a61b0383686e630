"""Review 59m (short adversarial review of review 59k's `_prefix_in_log`, trace_cmds): an
export shorter than the node's accepted checkpoint of its log asks the node's own log for a
consistency proof.

1. When the node's trace.db was not there (moved aside to a backup or another disk, not declared
   lost), `troth trace verify --file OLD_EXPORT` opened the node's log to ask it, which made an
   empty trace.db (its schema) in its place: a verify wrote the node's directory, and the
   file an operator moves back must now replace it. The refusal was right (the node's log
   stays refused as "made there", as before). Now a log not there is not opened: the export
   is refused as shorter, nothing made.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run
from tests.support.traces import node_trace_db, record_on_node
from troth.node import troth_home


def _older_export_then_accepted(tmp_path: Path) -> Path:
    """An export of 1 record; the node's log grown to 2 and accepted since."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    old = tmp_path / "old.jsonl"
    run("trace", "export", "--out", str(old))
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "ops.note"))  # accepted: 2 records
    return old


def test_trace1_verifying_an_export_makes_no_trace_db_in_the_moved_logs_place(
    tmp_path: Path,
) -> None:
    old = _older_export_then_accepted(tmp_path)
    db = node_trace_db(troth_home())
    db.rename(tmp_path / "trace.db.moved")  # moved aside (a backup, another disk), not lost
    said = run("trace", "verify", "--file", str(old), code=1).stderr
    assert "shorter than the anchored checkpoint" in said, said
    assert not db.exists()
