"""Review 60g: `Node.traces`, the public API's face of a node's signed trace log (docs/python.md,
"Traces"): the one library call `troth trace verify` makes (`troth.node.trace_checks`), the
same answers, the same refusals, typed: "unanchored" until a checkpoint is kept, "valid"
against it, a flipped byte named by its record, a kept file and the log rolled back refused."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import troth
from tests.support.cli import run_json
from tests.support.traces import node_trace_db, record_on_node
from troth.errors import TraceFailure

RECORDS = 2


@pytest.fixture
def node(troth_home: Path) -> Iterator[troth.Node]:
    """Node "default" whose identity `support` signed RECORDS tool calls in its trace log."""
    with troth.Node.open("default") as made:
        made.identities.create("support")
    record_on_node(troth_home, RECORDS)
    with troth.Node.open("default") as opened:
        yield opened


def _copy(source: Path, target: Path) -> None:
    """A whole SQLite database copied (its WAL too), as a backup or a restore makes it."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def test_unanchored_until_a_checkpoint_is_kept_then_valid(node: troth.Node, tmp_path: Path) -> None:
    first = node.traces.verify()
    assert (first.status, first.records, first.anchor, first.checkpoint) == (
        "unanchored",
        RECORDS,
        None,
        None,
    )
    signed = node.traces.checkpoint()
    assert signed.size == RECORDS
    kept = tmp_path / "kept.note"
    fresh = node.traces.verify(checkpoint=kept)
    assert (fresh.status, fresh.kept_fresh, fresh.compared) == ("unanchored", True, False)
    assert fresh.kept_written
    assert fresh.notes == (f"no checkpoint kept at {kept} yet: this answer is unanchored",)
    assert kept.read_bytes() == signed.note  # kept there now
    again = node.traces.verify(checkpoint=kept)
    assert (again.status, again.anchor_source, again.kept_fresh) == ("valid", "kept", False)
    assert again.anchor is not None
    assert again.anchor.size == RECORDS
    accepted = node.traces.verify()  # no kept file: the node's accepted checkpoint
    assert (accepted.status, accepted.anchor_source) == ("valid", "accepted")


def test_the_verdict_is_the_one_the_cli_prints(node: troth.Node, tmp_path: Path) -> None:
    node.traces.checkpoint()
    kept = tmp_path / "kept.note"
    node.traces.verify(checkpoint=kept)
    printed = run_json("trace", "verify", "--json", "--checkpoint", str(kept))
    assert node.traces.verify(checkpoint=kept).to_json() == printed


def test_one_flipped_byte_of_the_log_is_named(node: troth.Node, troth_home: Path) -> None:
    node.traces.checkpoint()
    with sqlite3.connect(node_trace_db(troth_home)) as conn:
        envelope = bytearray(
            conn.execute("SELECT envelope FROM leaves WHERE idx = 1").fetchone()[0]
        )
        envelope[-20] ^= 0x01
        conn.execute("UPDATE leaves SET envelope = ? WHERE idx = 1", (bytes(envelope),))
    conn.close()
    with pytest.raises(troth.TraceError) as caught:
        node.traces.verify()
    assert (caught.value.index, caught.value.reason) == (1, TraceFailure.LEAF_MISMATCH)


def test_one_flipped_byte_of_an_export_is_named_by_its_record(
    node: troth.Node, tmp_path: Path
) -> None:
    written = io.StringIO()
    checkpoint = node.traces.export_jsonl(written)
    lines = written.getvalue().splitlines()
    assert (checkpoint.size, len(lines)) == (RECORDS, RECORDS)
    export = tmp_path / "eval.jsonl"
    export.write_text("\n".join(lines) + "\n")
    assert node.traces.verify(file=export).records == RECORDS
    bundle = json.loads(lines[1])
    salt = next(iter(bundle["disclosures"].values()))
    salt["salt"] = ("1" if salt["salt"][0] != "1" else "2") + salt["salt"][1:]
    export.write_text("\n".join([lines[0], json.dumps(bundle)]) + "\n")
    with pytest.raises(troth.TraceError) as caught:
        node.traces.verify(file=export)
    assert (caught.value.index, caught.value.record) == (1, bundle["record"]["id"])


def test_a_proof_bundle_verifies_against_the_accepted_checkpoint(
    node: troth.Node, tmp_path: Path
) -> None:
    shown = node.traces.show()
    assert [tree["index"] for tree in shown] == list(range(RECORDS))
    assert {tree["agent"] for tree in shown} == {"support"}  # named as the node names it
    assert node.traces.show(agent="support") == shown
    bundle = tmp_path / "proof.json"
    bundle.write_bytes(node.traces.prove(shown[1]["id"]))
    alone = node.traces.verify(file=bundle)
    assert (alone.status, alone.records, alone.anchor_source) == ("unanchored", 1, None)
    kept = tmp_path / "kept.note"
    node.traces.verify(checkpoint=kept)  # the node accepts the log's newest checkpoint
    anchored = node.traces.verify(file=bundle)
    assert (anchored.status, anchored.anchor_source) == ("valid", "accepted")


def test_a_kept_file_and_the_log_rolled_back_are_refused(
    node: troth.Node, troth_home: Path, tmp_path: Path
) -> None:
    node.traces.checkpoint()
    kept = tmp_path / "kept.note"
    node.traces.verify(checkpoint=kept)
    old_note, old_log = kept.read_bytes(), tmp_path / "old-trace.db"
    _copy(node_trace_db(troth_home), old_log)
    record_on_node(troth_home, 1)
    node.traces.checkpoint()
    grown = node.traces.verify(checkpoint=kept)
    assert (grown.status, grown.records) == ("valid", RECORDS + 1)
    _copy(old_log, node_trace_db(troth_home))  # the log and the kept file both swapped back
    kept.write_bytes(old_note)
    with pytest.raises(troth.TraceError) as caught:
        node.traces.verify(checkpoint=kept)
    assert caught.value.reason is TraceFailure.ROLLED_BACK


def test_arguments_it_does_not_take_are_argument_errors() -> None:
    with troth.Node.open("default") as node:
        traces = node.traces
        calls: list[tuple[str, Callable[[], object]]] = [
            ("checkpoint", lambda: traces.verify(checkpoint=3)),  # type: ignore[arg-type]
            ("file", lambda: traces.verify(file=b"eval.jsonl")),  # type: ignore[arg-type]
            ("file", lambda: traces.verify(file="")),
            ("record_id", lambda: traces.prove(7)),  # type: ignore[arg-type]
            ("agent", lambda: traces.show(agent=7)),  # type: ignore[arg-type]
            ("stream", lambda: traces.export_jsonl(b"out")),  # type: ignore[arg-type]
        ]
        for parameter, call in calls:
            with pytest.raises(troth.ArgumentError) as caught:
                call()
            assert caught.value.parameter == parameter
