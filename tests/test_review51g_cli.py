"""Review 51g, cli 1: `troth trace verify --checkpoint FILE` with no checkpoint kept at FILE
yet (a first run, or a mistyped path) said, after `unanchored: N record(s) verified`, `(no kept
checkpoint to compare with: pass --checkpoint FILE)`: the option was passed. It now says that
nothing was kept at FILE yet (and, for the node's log, that the newest checkpoint is kept there
now); without the option it still says to pass it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.cli import run
from tests.support.traces import record_on_node


def test_a_checkpoint_file_not_there_yet_is_not_told_to_be_passed(
    troth_home: Path, tmp_path: Path
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    kept = tmp_path / "kept.note"
    said = run("trace", "verify", "--checkpoint", str(kept)).stdout
    assert said.startswith("unanchored: 2 record(s) verified"), said
    assert "pass --checkpoint" not in said, said
    assert f"nothing kept at {kept} yet: the newest checkpoint is kept there now" in said, said
    assert kept.exists()
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--out", str(export))
    absent = tmp_path / "absent.note"
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(absent)).stdout
    # compared with the node's accepted checkpoint (review 59f, trace 1: not compared before)
    assert said.startswith("valid: 2 record(s) verified"), said
    assert "against the node's accepted checkpoint" in said, said
    assert not absent.exists()  # a file's verification keeps nothing
    said = run("trace", "verify").stdout  # against the node's accepted one (review 58c, trace 2)
    assert said.startswith("valid: 2 record(s) verified, against the node's accepted"), said
    with sqlite3.connect(troth_home / "nodes" / "default" / "node.db") as raw:
        raw.execute("DELETE FROM trace_accepted")  # nothing accepted
    said = run("trace", "verify").stdout
    assert "(no kept checkpoint to compare with: pass --checkpoint FILE)" in said, said
