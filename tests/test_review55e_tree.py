"""Review 55e, exports 2: `export_jsonl` (`troth trace export`) held the log's whole Merkle tree
in memory (`MemoryTree`: every leaf hash and every node above, ~150 bytes a record for the whole
export: 1.5 GB for ten million records) to prove each record. The tree is now built in a
private temporary SQLite database (`troth.trace.export_tree.DiskTree`): what the export holds
in memory no longer grows with the log.
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from tests.support.traces import log_of
from troth.trace.export import export_jsonl
from troth.trace.export_tree import DiskTree
from troth.trace.merkle import MemoryTree, leaf_hash


class _Measuring(io.StringIO):
    """Drops the lines; notes the memory the export's tree code holds at the last line."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.held = 0
        self.left = lines

    def write(self, text: str) -> int:
        self.left -= 1
        if self.left:
            return len(text)
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(True, "*/troth/trace/merkle.py"),
                tracemalloc.Filter(True, "*/troth/trace/export.py"),
                tracemalloc.Filter(True, "*/troth/trace/export_tree.py"),
            ]
        )
        self.held = sum(stat.size for stat in snapshot.statistics("filename"))
        return len(text)


def _held(path: Path, records: int) -> int:
    log = log_of(path, records)
    out = _Measuring(records)
    tracemalloc.start()
    try:
        assert export_jsonl(log, out).size == records
    finally:
        tracemalloc.stop()
    log.close()
    return out.held


def test_exports2_the_export_holds_no_more_for_more_records(tmp_path: Path) -> None:
    small, large = _held(tmp_path / "small.db", 256), _held(tmp_path / "large.db", 1280)
    assert large - small < 1024 * 16  # under 16 bytes a record more (the tree: ~150)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 33])
def test_exports2_the_tree_on_disk_proves_as_the_one_in_memory(size: int) -> None:
    leaves = [leaf_hash(bytes([n])) for n in range(size)]
    memory = MemoryTree(leaves)
    with DiskTree() as disk:
        for leaf in leaves:
            disk.append(leaf)
        assert disk.size == size
        assert disk.root() == memory.root()
        for index in range(size):
            assert disk.inclusion_proof(index) == memory.inclusion_proof(index)
