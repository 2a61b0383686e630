"""Review 59k (short adversarial review of review 59f's trace CLI change): `troth trace verify
--file EXPORT` with no kept note it was compared with is verified again against the node's
accepted checkpoint of the export's log (`_against_accepted`, review 59f trace 1-3).

- trace 1: an honest export made earlier (the log intact, grown since, and a later verify of
  the log moved the node's accepted checkpoint past it), verified on the node with no
  --checkpoint, read `log is shorter than the anchored checkpoint`, exit 1: a tamper alarm on
  an untouched file (before review 59f, `unanchored`, exit 0). An export is a snapshot of the
  log when it was made; the node's own log proves whether it is a prefix of what the node
  accepted. Only one that it does not prove so (a log rolled back, review 59f's case) is
  refused now.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.support.cli import run
from tests.support.traces import record_on_node
from tests.test_review59m_trace import _older_export_then_accepted
from troth.cli.main import cli
from troth.node import troth_home


def test_trace1_an_honest_older_export_is_no_rollback(tmp_path: Path) -> None:
    """review 59k, trace 1: an export of 1 record made earlier; the intact log grew to 2 and
    the operator's verify accepted them. The old export read as a rollback, exit 1."""
    old = _older_export_then_accepted(tmp_path)
    said = run("trace", "verify", "--file", str(old))
    assert said.stdout.startswith("unanchored: 1 record(s)"), said.stdout
    assert (
        "by the node's log a prefix of, the node's accepted checkpoint of 2 record" in said.stderr
    )


def test_trace2_stdin_not_compared_is_said_in_json(tmp_path: Path) -> None:
    """review 59k, trace 2: an export piped in (`--file -`, read once) is not compared with the
    node's accepted checkpoint of its log; that was said as a note on stderr, which --json
    drops: the JSON result a script reads said nothing of the comparison skipped (an export
    rolled back below the accepted checkpoint, piped in, read `unanchored` as if the node had
    accepted nothing). Now a warning, in the result's `warnings`."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "ops.note"))  # accepted: 1 record
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--out", str(export))
    args = ["trace", "verify", "--file", "-", "--json"]
    result = CliRunner().invoke(cli, args, input=export.read_bytes(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    assert said["status"] == "unanchored"
    assert any("stdin is read once" in w for w in said.get("warnings", [])), said
