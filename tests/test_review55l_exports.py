"""Review 55l, exports 1: the trace exports of review 55e keep their Merkle tree
(`troth.trace.export_tree.DiskTree`) and their span ids (`troth.trace.otel_ids.SpanIds`) in a
private temporary SQLite database. When the disk holding it fills up (a large log, a small
/tmp), SQLite's `database or disk is full` came out of `troth trace export` as a bare
sqlite3.OperationalError: a Python traceback and exit 1 (the code of a verdict), with no
troth error, where every other storage failure is StorageError (exit 4, "troth: ..."). The
disk filling is simulated by capping the temporary database's pages (`max_page_count`): the
same SQLITE_FULL error a full disk gives."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.traces import record_on_node
from troth.errors import StorageError
from troth.trace import scratch
from troth.trace.export_tree import DiskTree
from troth.trace.merkle import leaf_hash
from troth.trace.otel_ids import SpanIds


class _Full:
    """sqlite3 as the temporary databases see it, on a disk with room for `pages` pages."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.Error = sqlite3.Error

    def connect(self, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(*args, **kwargs)
        connection.execute(f"PRAGMA max_page_count = {self.pages}")
        return connection


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scratch, "sqlite3", _Full(4))


@pytest.mark.usefixtures("full_disk")
def test_exports1_a_full_disk_under_the_export_tree_is_a_storage_error() -> None:
    with pytest.raises(StorageError), DiskTree() as tree:
        for n in range(4096):
            tree.append(leaf_hash(n.to_bytes(4, "big")))


@pytest.mark.usefixtures("full_disk")
def test_exports1_a_full_disk_under_the_span_ids_is_a_storage_error() -> None:
    with pytest.raises(StorageError), SpanIds() as ids:
        for n in range(4096):
            ids.add(n << 40)


def test_exports1_troth_trace_export_on_a_full_disk_fails_as_storage(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 1)
    monkeypatch.setattr(scratch, "sqlite3", _Full(1))  # no room for the tree's table
    said = run("trace", "export", "--out", str(tmp_path / "out.jsonl"), code=4)
    assert "full" in said.stdout + said.stderr
