"""Review 75p (lead; found by the fresh-clone CI under load at f2d89b1e, test_review58c_refuted's
two first openings at once): an opening read trace.db's bound log identity, then its reserved
one, in two statements; another opening binding its reservation between the two (bind takes no
node.db lock) left neither row seen, and the log was named damaged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cli import run
from troth.clock import FixedClock
from troth.node import open_node, troth_home
from troth.storage import SqliteDatabase
from troth.trace import open_node_log
from troth.trace.log_identity import bind_log_identity, node_log_identity


def test_a_reservation_bound_between_the_two_reads_is_the_log_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75p logbind 1: a first opening has reserved its log identity in trace.db and committed
    it in node.db (between its commit and its bind); a second opening reads the bound row (none
    yet), the first binds, the second reads the reserved row (gone): it raised StorageError
    `trace log damaged` for a log being made. Now the reserved row is read first: bound then
    (by the time the bound row is read) or still reserved, either is found."""
    run("node", "create", "n")
    clock = FixedClock(1_700_000_000)
    with open_node("n", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        made = log.log_identity
        # the first opening, stopped between node.db's commit and its bind
        with log.store.transaction():
            log.store.execute(
                "UPDATE meta SET name = 'log_identity_pending' WHERE name = 'log_identity'"
            )
        reads: list[str] = []
        fetch_one = SqliteDatabase.fetch_one

        def fetch_racing(self: SqliteDatabase, sql: str, params: Any = ()) -> Any:
            if self is log.store and params == ("log_identity",):
                reads.append("bound")
                row = fetch_one(self, sql, params)
                if reads.count("bound") == 2:  # the second look, under node.db's lock
                    bind_log_identity(log.store, made)  # the first opening binds now
                return row
            return fetch_one(self, sql, params)

        monkeypatch.setattr(SqliteDatabase, "fetch_one", fetch_racing)
        assert node_log_identity(node, log.store, now=clock.now()) == made
