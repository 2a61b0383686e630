"""`troth trace`: show, verify (exit 1 naming the first bad record), prove, export, checkpoint,
redact, each with --json and the house exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import tool_call
from troth.cli.text import timestamp
from troth.clock import SystemClock
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


@pytest.fixture
def records() -> list[str]:
    """A default node whose log holds a support agent's steps and a human's decision."""
    run("identity", "create", "support")
    run("identity", "create", "alice")
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        human = TraceRecorder(
            log, lambda now: node.identities.signer("alice", now=now), clock=clock
        )
        first = agent.record(tool_call())
        asked = agent.escalate(human.agent, question="refund 5000?", parent=first.record)
        answer = human.resolve(
            asked.record, of=agent.agent, outcome="approved", considered="x", reasoning="y"
        )
    run("trace", "checkpoint")
    return [first.record, asked.record, answer.record]


def _db() -> sqlite3.Connection:
    return sqlite3.connect(troth_home() / "nodes" / "default" / "trace.db", isolation_level=None)


def test_show_is_a_tree_with_names(records: list[str]) -> None:
    tree = run_json("trace", "show")
    assert len(tree) == 1
    root = tree[0]
    assert (root["agent"], root["kind"], root["tool"], root["decision"]) == (
        "support",
        "tool_invocation",
        "refund",
        "allow",
    )
    escalation = root["children"][0]
    assert (escalation["kind"], escalation["escalated_to"]) == ("escalation", "alice")
    assert escalation["children"][0]["agent"] == "alice"
    text = run("trace", "show").stdout
    assert "support  tool_invocation  tool refund  allow by [refund] rev 7" in text
    assert run_json("trace", "show", "--agent", "alice")[0]["id"] == records[0]


def test_verify_unanchored_then_anchored(records: list[str], tmp_path: Path) -> None:
    assert run_json("trace", "verify")["status"] == "unanchored"
    said = run("trace", "verify", "--require-anchor", code=1).stdout
    assert said.startswith("unanchored: 3 record(s) verified (no kept checkpoint")  # not "valid:"
    anchor = tmp_path / "anchor.note"
    noted = run("trace", "verify", "--checkpoint", str(anchor)).stderr  # a mistyped path too
    assert f"no checkpoint kept at {anchor} yet: this answer is unanchored" in noted
    anchor.unlink()  # a new verifier's first run: against the node's accepted checkpoint
    first = run_json("trace", "verify", "--checkpoint", str(anchor))  # (review 58w, cli 3)
    assert first["status"] == "valid"
    assert anchor.read_bytes().startswith(b"troth.trace/T")
    again = run_json("trace", "verify", "--checkpoint", str(anchor), "--require-anchor")
    assert (again["status"], again["records"]) == ("valid", 3)
    said = run("trace", "verify", "--checkpoint", str(anchor)).stdout
    kept = again["anchor"]  # which checkpoint it was compared with (review 51g, anchor 1)
    assert said == (
        "valid: 3 record(s) verified, against the kept checkpoint of 3 record(s), signed "
        f"{timestamp(kept['time'])}\n"
    )


def test_verify_names_the_first_bad_record(records: list[str], tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.note"
    run("trace", "verify", "--checkpoint", str(anchor))
    with _db() as conn:
        envelope = bytearray(
            conn.execute("SELECT envelope FROM leaves WHERE idx = 1").fetchone()[0]
        )
        envelope[-20] ^= 0x01
        conn.execute("UPDATE leaves SET envelope = ? WHERE idx = 1", (bytes(envelope),))
    failure = run_json("trace", "verify", code=1)
    assert (failure["valid"], failure["index"], failure["record"]) == (False, 1, None)
    assert failure["reason"] == "record bytes differ from those appended"
    result = run("trace", "verify", code=1)
    assert "record 1" in result.stderr


def test_verify_detects_truncation_against_the_kept_checkpoint(
    records: list[str], tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.note"
    run("trace", "verify", "--checkpoint", str(anchor))
    with _db() as conn:
        conn.execute("DELETE FROM leaves WHERE idx = 2")
        conn.execute("DELETE FROM checkpoints")
        conn.execute("UPDATE meta SET value = 2 WHERE name = 'size'")
    failure = run_json("trace", "verify", code=1)  # the node's accepted one (review 58c, trace 2)
    assert failure["reason"] == "log is shorter than the anchored checkpoint"
    failure = run_json("trace", "verify", "--checkpoint", str(anchor), code=1)
    assert failure["reason"] == "log is shorter than the anchored checkpoint"


def test_prove_and_verify_the_bundle(records: list[str], tmp_path: Path) -> None:
    out = tmp_path / "proof.json"
    answer = run_json("trace", "prove", records[2], "--out", str(out))
    assert answer["index"] == 2
    report = run_json("trace", "verify", "--file", str(out))
    assert (report["verified"], report["kind"], report["index"]) == (True, "resolution", 2)
    assert (report["status"], report["valid"]) == ("unanchored", False)  # never "valid" alone
    bundle: dict[str, Any] = json.loads(out.read_text())
    bundle["index"] = 1
    out.write_text(json.dumps(bundle))
    assert (
        run_json("trace", "verify", "--file", str(out), code=1)["reason"] == "proof does not verify"
    )
    run("trace", "prove", "0" * 32, code=2)


def test_export_jsonl_and_verify_it(records: list[str], tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    run_json("trace", "export", "--format", "jsonl", "--out", str(out))
    lines = out.read_text().splitlines()
    assert [json.loads(line)["record"]["id"] for line in lines] == records
    report = run_json("trace", "verify", "--file", str(out))
    assert (report["records"], report["agents"]) == (3, 2)
    only = run("trace", "export", "--agent", "alice").stdout.splitlines()
    assert [json.loads(line)["record"]["id"] for line in only] == [records[2]]
    run("trace", "export", "--format", "otel", code=2)


def test_checkpoint_and_redact(records: list[str]) -> None:
    signed = run_json("trace", "checkpoint")
    assert signed["size"] == 3
    assert signed["note"].splitlines()[0] == signed["origin"]
    assert run_json("trace", "redact", records[0], "--field", "args")["redacted"] is True
    assert run_json("trace", "redact", records[0], "--field", "args")["redacted"] is False
    assert run_json("trace", "verify")["disclosures_checked"] == 4  # of 5
    run("trace", "redact", records[0], "--field", "secret", code=2)


def test_show_text_shortens_identifiers_it_has_no_name_for() -> None:
    run("identity", "create", "operator")  # makes the default node
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        unnamed = node.identities.create(now=clock.now())
        recorder = TraceRecorder(
            log, lambda now: node.identities.signer(str(unnamed.identifier), now=now), clock=clock
        )
        recorder.record(tool_call())
    full = str(unnamed.identifier)
    assert run_json("trace", "show")[0]["agent"] == full  # --json keeps the whole identifier
    text = run("trace", "show").stdout
    assert full not in text
    assert f"{full[:5]}…{full[-4:]}  tool_invocation" in text
