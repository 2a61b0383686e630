"""Review 59l: the rollback guard's cache of guards decoded, by their bytes.

1. `_know` (each raise of a guard this process knows since review 59c's `_know_written`, and
   each guard decoded) makes room by `del _KNOWN_GUARDS[next(iter(_KNOWN_GUARDS))]`: the
   first key read, then deleted. Two threads raising the guards of two node.db (one process
   hosting two nodes: each guard's turn is its own, so they run at once) can both read the
   same first key; the second `del` is a KeyError, raised out of the commit's `_publish`:
   an honest rotation, committed, failed with a bare KeyError. The interleaving is made
   here by the cache's iterator, which lets the other thread's `_know` run between the two.
   Fixed: a key gone (or the dict changed) meanwhile is left to the other thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from troth.storage import rollback
from troth.storage.rollback import RollbackGuard, read_guard
from troth.storage.sqlite import SqliteDatabase


class _Interleaved(dict[bytes, object]):
    """The cache, with another thread's `_know` run right after the first key is read."""

    def __iter__(self) -> Iterator[bytes]:
        first = next(dict.__iter__(self))
        dict.__delitem__(self, first)  # the other thread's eviction of that same key
        dict.__setitem__(self, b"the other thread's guard", None)
        return iter([first])


def test_two_threads_making_room_in_the_cache_at_once_fail_no_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        guard = RollbackGuard(db, "identity")
        with db.transaction():
            guard.bump()
        cache = _Interleaved({bytes([n]): None for n in range(rollback._KNOWN_GUARDS_KEPT)})
        monkeypatch.setattr(rollback, "_KNOWN_GUARDS", cache)
        with db.transaction():
            guard.bump()
        assert read_guard(guard.path) == {"identity": 2}
    finally:
        db.close()
