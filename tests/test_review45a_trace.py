"""Review 45a, trace 1: an export checked against a kept checkpoint it falls short of.

`troth trace verify --file EXPORT --checkpoint F` answered "unanchored", exit 0, for an empty
export (0 records) against a kept checkpoint of N > 0 records, and for an export whose
checkpoint is smaller than the kept one: the log it was taken from lacks records the verifier
saw, a truncation, as `verify_log` says of the log itself. An export against a kept checkpoint
of the empty tree is consistent growth (the empty tree is a prefix of every tree)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock, SystemClock
from troth.errors import TraceError, TraceFailure
from troth.node import open_node, troth_home
from troth.trace import AnchorStatus, TraceLog, TraceRecorder, open_node_log
from troth.trace.export import export_jsonl, verify_export


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


@pytest.fixture
def grown(tmp_path: Path) -> tuple[bytes, list[bytes], list[bytes], bytes]:
    """An empty log's checkpoint, its export at 2 records, at 4, and the checkpoint at 4."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    empty = log.checkpoint().note
    rec = recorder(log, Held(), clock)
    rec.record(tool_call())
    rec.record(tool_call("lookup"))
    short = _export(log)
    rec.record(tool_call())
    rec.record(tool_call("lookup"))
    full = _export(log)
    return empty, short, full, log.checkpoint().note


def test_an_empty_export_against_a_kept_checkpoint_is_truncated(
    grown: tuple[bytes, list[bytes], list[bytes], bytes],
) -> None:
    _empty, _short, _full, kept = grown
    with pytest.raises(TraceError) as caught:
        verify_export([], anchor=kept)
    assert caught.value.reason is TraceFailure.TRUNCATED
    assert "4" in str(caught.value)


def test_an_export_shorter_than_the_kept_checkpoint_is_truncated(
    grown: tuple[bytes, list[bytes], list[bytes], bytes],
) -> None:
    _empty, short, _full, kept = grown
    with pytest.raises(TraceError) as caught:
        verify_export(short, anchor=kept)
    assert caught.value.reason is TraceFailure.TRUNCATED


def test_growth_from_the_empty_tree_and_the_same_size_stay_fine(
    grown: tuple[bytes, list[bytes], list[bytes], bytes],
) -> None:
    empty, short, full, kept = grown
    assert verify_export([], anchor=empty).records == 0
    assert verify_export(short, anchor=empty).status is AnchorStatus.UNANCHORED
    assert verify_export(full, anchor=kept).status is AnchorStatus.VALID
    assert verify_export([]).status is AnchorStatus.UNANCHORED  # nothing kept: nothing to say


def test_the_cli_refuses_an_empty_export_against_a_kept_checkpoint(tmp_path: Path) -> None:
    run("identity", "create", "support")
    empty_note = tmp_path / "empty.note"
    empty_note.write_text(run_json("trace", "checkpoint")["note"])
    kept = tmp_path / "kept.note"
    export = tmp_path / "eval.jsonl"
    run("trace", "export", "--out", str(export))
    assert export.read_bytes() == b""
    fine = run_json("trace", "verify", "--file", str(export), "--checkpoint", str(empty_note))
    assert fine["records"] == 0
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        agent.record(tool_call())
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(kept))  # keeps the checkpoint of 1 record
    failure = run_json("trace", "verify", "--file", str(export), "--checkpoint", str(kept), code=1)
    assert failure["reason"] == "log is shorter than the anchored checkpoint"
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(kept), code=1)
    assert "shorter than the anchored checkpoint" in said.stderr
    grown_export = tmp_path / "grown.jsonl"
    run("trace", "export", "--out", str(grown_export))
    ok = run_json("trace", "verify", "--file", str(grown_export), "--checkpoint", str(empty_note))
    assert (ok["records"], ok["status"]) == (1, "unanchored")
