"""Review 34c, commit: every after-commit callback of a committed transaction runs, even when
one before it raises (the write committed: what follows it must not depend on the order the
callbacks were queued in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.storage.sqlite import SqliteDatabase


class _CacheReadFailed(Exception):
    """A callback's failure (a cache refresh that could not read)."""


def test_a_raising_after_commit_callback_does_not_stop_the_ones_after_it(tmp_path: Path) -> None:
    """Review 34c, commit 1. Two identities stored in one transaction queue two after-commit
    callbacks (each steps its cache entry back and tells the `refuted` hooks). When the first
    raises, the second never ran: the second identity's replaced copy stayed in this process's
    cache and its hooks were never told, for a write that committed. Now every callback runs
    and the first failure is raised after the last of them.

    Was a strict xfail until `SqliteDatabase.transaction` ran every callback, raising the
    first failure at the end."""
    db = SqliteDatabase(tmp_path / "node.db")
    ran: list[str] = []

    def first() -> None:
        ran.append("first")
        raise _CacheReadFailed("the store could not be read")

    with pytest.raises(_CacheReadFailed, match="could not be read"), db.transaction():
        db.execute("CREATE TABLE t (x INTEGER)")
        db.after_commit(first)
        db.after_commit(lambda: ran.append("second"))
    assert ran == ["first", "second"]
    assert db.fetch_one("SELECT count(*) FROM t") == (0,)  # the write committed


def test_callbacks_of_a_rolled_back_transaction_never_run(tmp_path: Path) -> None:
    """Review 34c, commit 1 (the other side): a rollback drops the callbacks queued in it."""
    db = SqliteDatabase(tmp_path / "node.db")
    ran: list[str] = []
    with pytest.raises(RuntimeError, match="rolled back"), db.transaction():
        db.after_commit(lambda: ran.append("queued"))
        raise RuntimeError("rolled back")
    assert ran == []
