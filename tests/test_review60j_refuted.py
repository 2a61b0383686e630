"""Review 60j, refuted: attacks on `Node.traces` and the library call `troth trace verify`
makes that the code withstood (each test fails if its defence breaks)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from tests.support.traces import node_trace_db, record_on_node
from troth.errors import TraceFailure

RECORDS = 2


@pytest.fixture
def node(troth_home: Path) -> Iterator[troth.Node]:
    """Node "default": `support` signed RECORDS records, `other` none; a checkpoint signed."""
    with troth.Node.open("default") as made:
        made.identities.create("support")
        made.identities.create("other")
    record_on_node(troth_home, RECORDS)
    with troth.Node.open("default") as opened:
        opened.traces.checkpoint()
        yield opened


def _flip_a_record(home: Path) -> None:
    with sqlite3.connect(node_trace_db(home)) as conn:
        row = conn.execute("SELECT envelope FROM leaves WHERE idx = 1").fetchone()
        envelope = bytearray(row[0])
        envelope[-20] ^= 0x01
        conn.execute("UPDATE leaves SET envelope = ? WHERE idx = 1", (bytes(envelope),))
    conn.close()


def test_no_kept_file_is_written_or_replaced_when_verification_fails(
    node: troth.Node, troth_home: Path, tmp_path: Path
) -> None:
    kept, fresh = tmp_path / "kept.note", tmp_path / "fresh.note"
    node.traces.verify(checkpoint=kept)
    before = kept.read_bytes()
    _flip_a_record(troth_home)
    for path in (kept, fresh):
        with pytest.raises(troth.TraceError) as caught:
            node.traces.verify(checkpoint=path)
        assert caught.value.reason is TraceFailure.LEAF_MISMATCH
    assert kept.read_bytes() == before
    assert not fresh.exists()


def test_a_kept_file_that_is_a_symlink_is_replaced_not_followed(
    node: troth.Node, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.note"
    node.traces.verify(checkpoint=victim)
    planted = victim.read_bytes()
    link = tmp_path / "kept.note"
    link.symlink_to(victim)
    assert node.traces.verify(checkpoint=link).status == "valid"  # read through the link
    assert not link.is_symlink()  # the link replaced by the kept file
    assert victim.read_bytes() == planted


def test_an_unreadable_kept_path_is_an_os_error_and_nothing_is_written(
    node: troth.Node, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in (kept, Path("/dev/zero")):
        with pytest.raises(OSError, match="checkpoint"):
            node.traces.verify(checkpoint=path)
    assert list(kept.iterdir()) == []


def test_prove_of_an_id_not_there_or_of_another_agent_is_not_found(node: troth.Node) -> None:
    record = node.traces.show()[0]["id"]
    assert node.traces.prove(record, agent="support").startswith(b"{")
    for record_id, agent in ((record, "other"), ("no-such-record", None), (record, "nobody")):
        with pytest.raises(troth.NotFound):
            node.traces.prove(record_id, agent=agent)


def test_calls_on_a_closed_node_are_storage_errors(node: troth.Node) -> None:
    traces = node.traces
    node.close()
    for call in (traces.verify, traces.show, traces.checkpoint, lambda: traces.prove("x")):
        with pytest.raises(troth.StorageError):
            call()


def test_calls_inside_a_running_event_loop_answer(node: troth.Node, tmp_path: Path) -> None:
    kept = tmp_path / "kept.note"
    node.traces.verify(checkpoint=kept)

    async def inside() -> tuple[str, int]:
        return node.traces.verify(checkpoint=kept).status, len(node.traces.show())

    assert asyncio.run(inside()) == ("valid", RECORDS)


def test_two_verifications_at_once_on_one_node_agree(node: troth.Node, tmp_path: Path) -> None:
    node.traces.verify(checkpoint=tmp_path / "kept.note")  # the node accepts the checkpoint
    answers: list[object] = []

    def verify() -> None:
        try:
            answers.append(node.traces.verify().status)
        except Exception as exc:  # the answer, compared below
            answers.append(exc)

    threads = [threading.Thread(target=verify) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == ["valid", "valid"]
