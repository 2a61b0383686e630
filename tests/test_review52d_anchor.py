"""Review 52d, anchor 1 (found, not fixed): the node's accepted row (`trace_accepted`, review
52a) is one per log, shared by every `troth trace verify --checkpoint FILE` of the node. A
second verifier keeping its own file moves the row on; the first verifier's file, genuine and
merely older, the log intact, is then refused as "kept checkpoint older than one accepted
before", the alarm of a log rolled back (exit 1): a false alarm an operator cannot tell from
the attack. The refusal should come from the log being inconsistent with the accepted
checkpoint (the row taken as an anchor too), not from the kept file being older than it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.backups import copy_db, restore_db
from tests.support.cli import run
from tests.support.traces import node_trace_db, record_on_node
from tests.test_review52a_anchor import _newer_and_smaller
from troth.errors import TraceError, TraceFailure
from troth.storage.sqlite import SqliteDatabase
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.checkpoint import Checkpoint


def test_two_verifiers_files_of_one_node_do_not_read_as_a_rollback(
    troth_home: Path, tmp_path: Path
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    auditor = tmp_path / "auditor.note"
    run("trace", "verify", "--checkpoint", str(auditor))  # the checkpoint of 2
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    older = auditor.read_bytes()
    operator = tmp_path / "operator.note"
    run("trace", "verify", "--checkpoint", str(operator))  # the row: the checkpoint of 4
    said = run("trace", "verify", "--checkpoint", str(auditor))  # the log intact: valid
    assert said.stdout.startswith("valid: 4 record(s) verified"), said.stdout
    assert auditor.read_bytes() == operator.read_bytes()  # moved on to the accepted one
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--out", str(export))
    auditor.write_bytes(older)
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(auditor))
    # exit 0; review 63s, traces 1: the export's line 1 proves its checkpoint grew from the
    # kept one (it read `unanchored`), so it is judged against the accepted one, as the log is
    assert said.stdout.startswith("valid: 4 record(s) verified"), said.stdout


def test_an_older_kept_file_and_a_log_rolled_back_are_still_refused(
    troth_home: Path, tmp_path: Path
) -> None:
    """The row verified against, not the kept file: a log rolled back below it is refused."""
    run("identity", "create", "support")
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    auditor = tmp_path / "auditor.note"
    run("trace", "verify", "--checkpoint", str(auditor))
    backup = tmp_path / "trace-backup.db"
    copy_db(node_trace_db(troth_home), backup)
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "operator.note"))
    restore_db(node_trace_db(troth_home), backup)
    said = run("trace", "verify", "--checkpoint", str(auditor), code=1)
    assert "kept checkpoint older than one accepted before" in said.stdout + said.stderr


@dataclasses.dataclass(frozen=True)
class _Report:
    anchor: Checkpoint | None
    checkpoint: Checkpoint | None = None  # what it verified: not past the accepted one


def test_a_reverification_that_compares_nothing_still_refuses(tmp_path: Path) -> None:
    """`anchored`: the input verified again against the accepted note, but not compared with
    it (an export of another size): the older kept checkpoint is refused as before."""
    newer, smaller = _newer_and_smaller(tmp_path)
    db = SqliteDatabase(tmp_path / "node.db")
    accepted = AcceptedCheckpoints(db)
    accepted.keep(None, newer)
    asked: list[bytes] = []

    def again(note: bytes) -> _Report:
        asked.append(note)
        return _Report(None)

    with pytest.raises(TraceError) as caught:
        accepted.anchored(_Report(smaller), again)
    assert caught.value.reason is TraceFailure.ROLLED_BACK
    assert asked == [newer.note]
    assert accepted.anchored(_Report(smaller), lambda note: _Report(newer)).anchor == newer
    assert accepted.anchored(_Report(newer), again).anchor == newer  # not older: as it is
    assert len(asked) == 1
    db.close()
