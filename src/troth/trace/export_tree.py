"""The Merkle tree of a log an export proves its records in (`troth.trace.export`; review 55e,
exports 2), kept in a private temporary SQLite database rather than in memory: a `MemoryTree`
of the whole log took ~150 bytes a record for the whole export.

Leaves are appended in order (`Frontier`, which names every perfect subtree each completes); a
proof reads the perfect subtrees it needs (`inclusion_proof`). The database is a
`troth.trace.scratch` one, at most `_CACHE_KIB` of its pages in memory (a full disk:
StorageError).
"""

from __future__ import annotations

from typing import Final

from troth.trace.merkle import Frontier, inclusion_proof
from troth.trace.scratch import open_scratch, scratch_errors

__all__ = ["DiskTree"]

_CACHE_KIB: Final = 4096
_WHAT: Final = "the export's Merkle tree"


class DiskTree:
    """Every perfect subtree of the leaf hashes appended, on disk; `close` deletes them."""

    def __init__(self) -> None:
        self._db = open_scratch(
            _WHAT,
            _CACHE_KIB,
            "CREATE TABLE nodes (level INTEGER, idx INTEGER, hash BLOB, PRIMARY KEY (level, idx))"
            " WITHOUT ROWID",
        )
        self._frontier = Frontier()

    @property
    def size(self) -> int:
        return self._frontier.size

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash, and the perfect subtrees it completes."""
        index = self._frontier.size
        completed = self._frontier.append(leaf)
        with scratch_errors(_WHAT):  # (the export ends: the tree is not used again)
            self._db.executemany(
                "INSERT INTO nodes VALUES (?, ?, ?)", [(0, index, leaf), *completed]
            )

    def root(self) -> bytes:
        """MTH of the leaves appended."""
        return self._frontier.root()

    def perfect(self, level: int, index: int) -> bytes:
        with scratch_errors(_WHAT):
            found = self._db.execute(
                "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        if found is None:
            raise ValueError(f"no perfect subtree ({level}, {index}) in a tree of {self.size}")
        value: bytes = found[0]
        return value

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[size]) in the tree of every leaf appended."""
        return inclusion_proof(index, self.size, self.perfect)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DiskTree:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
