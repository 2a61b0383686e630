"""Review 58w (short review of this session's CLI commands as a security engineer uses them):
findings, each first a strict xfail."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from tests.support.cli import run, run_json
from tests.support.traces import node_trace_db, record_on_node
from tests.test_review58h_trace import _deleted
from troth.node import troth_home


def _lost_on(node: str) -> str:
    """A node `node` whose trace.db is deleted: the error its `troth trace verify` says."""
    run("node", "create", node)
    run("trace", "checkpoint", "--node", node)  # its log made
    _deleted(troth_home() / "nodes" / node / "trace.db")
    return str(run_json("trace", "verify", "--node", node, code=4)["message"])


def test_cli1_the_next_step_of_a_lost_log_names_the_node_it_is_on() -> None:
    """review 58w, cli 1: a node other than the default one (`--node agent`) whose trace.db is
    gone is `trace log damaged: ... (with none, `troth trace declare-lost`)`: that command, run
    as shown, acts on the default node (`$TROTH_NODE` or 'default'), not the damaged one: here
    it declares nothing (default made no log) and the damaged node stays unable to record."""
    said = _lost_on("agent")
    step = said.split("with none, `", 1)[1].split("`", 1)[0]
    assert "--node agent" in step, said
    run_json(*shlex.split(step)[1:])
    assert run_json("trace", "verify", "--node", "agent")["lost_logs"]


def test_cli2_declare_lost_run_again_does_not_deny_the_log_it_declared_lost() -> None:
    """review 58w, cli 2: `troth trace declare-lost` run a second time (its first run's answer
    lost to a closed terminal, an interrupted ssh) answers `this node made no trace log to
    declare lost`, exit 4: false (it made one, and declared it lost), and it reads as though
    the first run had not been needed or had not happened. It should say the log is already
    declared lost (and when)."""
    _lost_on("agent")
    first = run_json("trace", "declare-lost", "--node", "agent")["lost"]
    said = run_json("trace", "declare-lost", "--node", "agent", code=4)["message"]
    assert "made no trace log" not in said
    assert first[0] in said


def test_cli3_a_fresh_kept_file_does_not_hide_a_rollback_the_node_knows(tmp_path: Path) -> None:
    """review 58w, cli 3: the node accepted its log's checkpoint of 2 records; trace.db put
    back to a copy of 1 record (a backup restored) is `log is shorter than the anchored
    checkpoint`, exit 1, by `troth trace verify`, but `troth trace verify --checkpoint FILE`
    with nothing at FILE yet (a new verifier's first run, the docs' example; a mistyped path)
    answered `unanchored: 1 record(s) verified`, exit 0: a kept file given weakened the check
    that none given makes. With no checkpoint kept at FILE, the node's accepted one is
    compared with, as with no --checkpoint."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    trace_db = node_trace_db(troth_home())
    backup = tmp_path / "backup.db"
    shutil.copyfile(trace_db, backup)  # 1 record and its checkpoint
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "kept.note"))  # accepted: 2 records
    _deleted(trace_db)
    shutil.copyfile(backup, trace_db)
    said = run("trace", "verify", "--checkpoint", str(tmp_path / "new.note"), code=1).stderr
    assert "log is shorter than the anchored checkpoint (anchored at 2, the log has 1)" in said
    assert not (tmp_path / "new.note").exists()
