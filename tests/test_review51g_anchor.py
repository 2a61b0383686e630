"""Review 51g, anchor 1: the checkpoint a verifier keeps (`troth trace verify --checkpoint
FILE`) swapped for an older genuine one of the same log, the log rolled back to it (its later
records and checkpoints deleted), reads `valid`: the older note is the log's, and the log is
consistent with it. Nothing in the file tells an older note from the newest one the verifier
wrote there, so this cannot be refused; but the answer said only `valid: N record(s)
verified`, and `--json` did not name the checkpoint it was compared with. The report now says
which (`anchor`: its log, size, root and time; `checkpoint` summaries carry the time too) and
the text names its size and date, so an operator who kept a checkpoint of six records last
week sees that this `valid` is against one of three from the month before. Review 52a, anchor
1: the node that accepted the newer one refuses the swap; the naming is what is left to a
verifier that accepted none.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.backups import copy_db, restore_db
from tests.support.cli import run, run_json
from tests.support.traces import node_trace_db, record_on_node
from troth.cli.text import timestamp
from troth.trace.checkpoint import parse_checkpoint


def test_an_older_kept_checkpoint_is_named_in_the_answer(troth_home: Path, tmp_path: Path) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    run("trace", "checkpoint")
    older = tmp_path / "older.note"
    run("trace", "verify", "--checkpoint", str(older))  # kept: the checkpoint of 3
    backup = tmp_path / "trace-backup.db"
    copy_db(node_trace_db(troth_home), backup)  # the log as it is then
    record_on_node(troth_home, 3)
    run("trace", "checkpoint")
    kept = tmp_path / "kept.note"
    run("trace", "verify", "--checkpoint", str(kept))  # kept: the checkpoint of 6
    assert parse_checkpoint(kept.read_bytes())[0].size == 6
    restore_db(node_trace_db(troth_home), backup)  # the log rolled back to 3 records
    kept.write_bytes(older.read_bytes())  # the swap
    said = run("trace", "verify", "--checkpoint", str(kept), code=1).stderr
    assert "kept checkpoint older than one accepted before" in said  # review 52a, anchor 1
    with sqlite3.connect(troth_home / "nodes" / "default" / "node.db") as conn:
        conn.execute("DELETE FROM trace_accepted")  # a node that accepted none of the log's:
    old = parse_checkpoint(older.read_bytes())[0]  # the note alone cannot tell, the answer says
    report = run_json("trace", "verify", "--checkpoint", str(kept))
    assert (report["status"], report["records"]) == ("valid", 3)  # consistent: cannot refuse
    assert report["anchor"] == {
        "log": old.log,
        "size": 3,
        "root": old.root.hex(),
        "time": old.time,
    }
    said = run("trace", "verify", "--checkpoint", str(kept)).stdout
    assert said.startswith("valid: 3 record(s) verified"), said
    assert f"the kept checkpoint of 3 record(s), signed {timestamp(old.time)}" in said, said
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--out", str(export))
    from_file = run_json("trace", "verify", "--file", str(export), "--checkpoint", str(kept))
    assert from_file["status"] == "valid"
    assert from_file["anchor"] == report["anchor"]
    assert from_file["checkpoint"]["time"] == old.time
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(kept)).stdout
    assert f"the kept checkpoint of 3 record(s), signed {timestamp(old.time)}" in said, said
