"""Review 55b, accepted 1: the node's accepted checkpoint of its log (review 52a, anchor 1:
the guard against a kept file swapped back and the log rolled back to match) moved to any
newer checkpoint a verifier accepted, whether or not the log was consistent with the
accepted one. A log restored from a backup (rolled back) that then grew on (a fork of what
was accepted), verified once with a fresh kept file (a new auditor: `unanchored`), or with
the fork's own newest note put in a kept file, moved the node's accepted checkpoint onto the
fork: from then on the rollback guard vouched for the fork, and a kept file swapped for an
older genuine note (consistent with the fork's prefix) read `valid`. The accepted checkpoint
now moves only to a checkpoint the log proves consistent with it (an RFC 9162 consistency
proof from the log, checked against both roots); otherwise the verification is refused
(ROLLED_BACK) and nothing is kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.backups import copy_db, restore_db
from tests.support.cli import run
from tests.support.traces import node_trace_db, record_on_node

_REFUSED = "not consistent with the checkpoint of 6 records accepted before"
_FORKED = "checkpoint not consistent with the anchored one (the log's first 6 records have another"


def _forked(troth_home: Path, tmp_path: Path) -> Path:
    """A node whose log had 3 records (kept in `older.note`), then 6 (accepted), then was
    rolled back to the 3 and grew to 7 others: the path of the older note."""
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    run("trace", "checkpoint")
    older = tmp_path / "older.note"
    run("trace", "verify", "--checkpoint", str(older))
    backup = tmp_path / "trace-backup.db"
    copy_db(node_trace_db(troth_home), backup)
    record_on_node(troth_home, 3)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "auditor.note"))  # accepted: 6
    restore_db(node_trace_db(troth_home), backup)  # rolled back to 3 records
    record_on_node(troth_home, 4)  # and grown on: 7 records, not the 6 accepted
    run("trace", "checkpoint")
    return older


def test_a_fresh_kept_file_does_not_move_the_accepted_checkpoint_onto_a_fork(
    troth_home: Path, tmp_path: Path
) -> None:
    older = _forked(troth_home, tmp_path)
    fresh = tmp_path / "fresh.note"
    said = run("trace", "verify", "--checkpoint", str(fresh), code=1)
    # compared with the node's accepted checkpoint from the start (review 58w, cli 3)
    assert _FORKED in said.stdout + said.stderr
    assert not fresh.exists()  # a refusal writes nothing
    kept = tmp_path / "kept.note"  # the rollback guard still stands
    kept.write_bytes(older.read_bytes())
    said = run("trace", "verify", "--checkpoint", str(kept), code=1)
    assert "kept checkpoint older than one accepted before" in said.stdout + said.stderr


def test_the_forks_own_note_in_a_kept_file_does_not_move_it_either(
    troth_home: Path, tmp_path: Path
) -> None:
    older = _forked(troth_home, tmp_path)
    with sqlite3.connect(node_trace_db(troth_home)) as conn:
        (note,) = conn.execute("SELECT note FROM checkpoints WHERE size = 7").fetchone()
    planted = tmp_path / "planted.note"
    planted.write_bytes(bytes(note))
    said = run("trace", "verify", "--checkpoint", str(planted), code=1)
    assert _REFUSED in said.stdout + said.stderr
    assert planted.read_bytes() == bytes(note)
    kept = tmp_path / "kept.note"
    kept.write_bytes(older.read_bytes())
    said = run("trace", "verify", "--checkpoint", str(kept), code=1)
    assert "kept checkpoint older than one accepted before" in said.stdout + said.stderr
