"""Review 70g (area: perf): identity.rotate's regression in session 69 (2.5x -> 2.8x its floor).
Measured interleaved beside the floor, then pinned here by what a rotation does, not by time
(no clock in a test):

1. (waste, ~17 us of a ~380 us rotation) The trace outbox's hook (review 69a) looked the
   agent's rows up with a statement on `trace_outbox`; on a node.db without an outbox (every
   node without a trace service) its prepare failed, "no such table", caught as StorageError:
   that failure cost more than the floor's crypto of a signature. Now the table is looked up
   by name until this process found it, then the rows at once.
2. (waste, grows with other identities) A rotation read every kept channel key record of
   every identity (`retired_keys`, a page of 256 at a time) to pick out its own in Python; now
   one statement returns only its identity's records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.statements import StatementCount
from troth.identity.retired_keys import RETIRED_DUE_MARK, RETIRED_KEYS_PER_CALL
from troth.node import init_node, open_node
from troth.storage.sqlite import SqliteDatabase
from troth.trace.outbox_store import outbox_exists

NOW = 1_790_000_000


class _WholeStatements(StatementCount):
    """`StatementCount` keeping each statement counted whole (its keys stop at a `(`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(monkeypatch)
        self.full: list[str] = []

    def _count(self, sql: str) -> None:
        super()._count(sql)
        if self._on:
            self.full.append(" ".join(sql.split()))


def test_a_rotation_without_an_outbox_runs_no_failing_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70g perf 1: a rotation of a node that has no trace outbox runs no statement that
    fails (the outbox hook's look-up failed its prepare, "no such table", every rotation);
    the rotation is stored and no outbox is made."""
    failed: list[str] = []
    original = SqliteDatabase._failed

    def recorded(self: SqliteDatabase, exc: Exception) -> object:
        failed.append(str(exc))
        return original(self, exc)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteDatabase, "_failed", recorded)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=NOW, name="a")
        node.identities.rotate("a", now=NOW + 1)
        node.identities.rotate("a", now=NOW + 2)
        assert node.identities.get("a", now=NOW + 3).identity.change_count == 3
        assert not outbox_exists(node.db)
    assert failed == []


def _kept(owner: bytes, number: int) -> str:
    """A kept channel key's `retired_keys` record of identity `owner` (naming no real key)."""
    mark = RETIRED_DUE_MARK
    return f"{mark}{NOW + 600}.{owner.hex()}{mark}software:x25519:{number:016x}"


def test_a_rotation_reads_only_its_own_kept_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70g perf 2: with more kept channel key records of other identities than a page
    (RETIRED_KEYS_PER_CALL), a rotation reads `retired_keys` once, and still ends its own kept
    keys (their records dropped) and no other identity's."""
    count = _WholeStatements(monkeypatch)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        mine = node.identities.create(now=NOW, name="a").identifier.digest
        other = node.identities.create(now=NOW, name="b").identifier.digest
        others = [_kept(other, n) for n in range(RETIRED_KEYS_PER_CALL + 10)]
        own = [_kept(mine, 10_000 + n) for n in range(3)]
        with node.db.transaction():
            node.identities.store.add_retired_keys([*others[:100], *own, *others[100:]])
        with count.counting() as seen:
            node.identities.rotate("a", now=NOW + 1)
        assert seen
        reads = [sql for sql in count.full if sql.startswith("SELECT") and "retired_keys" in sql]
        assert len(reads) == 1
        left = set(node.identities.store.retired_key_records(10_000))
        assert left == set(others)
