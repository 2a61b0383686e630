"""Review 75r: the read-order race 75p fixed in an opening (troth.trace.log_identity; a trace.db
log identity row read, then a related one, while another opening binds its reservation without
node.db's lock in between), found again in the rest of the module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.cli import run
from troth.clock import FixedClock
from troth.errors import StorageError
from troth.node import open_node, troth_home
from troth.storage import SqliteDatabase
from troth.trace import log_identity, open_node_log
from troth.trace.log_identity import bind_log_identity, declare_lost, node_log_identity

CLOCK = FixedClock(1_700_000_000)
_ROWS = (("log_identity",), ("log_identity_pending",))


def racing_reads(
    monkeypatch: pytest.MonkeyPatch,
    store: SqliteDatabase,
    between: Callable[[], object],
    *,
    made: bool = False,
) -> None:
    """`between` runs once, right after the first read of one of `store`'s log identity rows
    (or, `made`, of what node.db made for the log, outside a transaction of node.db's)."""
    reads = {"fetch_one": SqliteDatabase.fetch_one, "fetch_all": SqliteDatabase.fetch_all}
    done: list[bool] = []

    def reading(name: str) -> Callable[..., Any]:
        def fetch(self: SqliteDatabase, sql: str, params: Any = ()) -> Any:
            rows = reads[name](self, sql, params)
            hit = (self is store and params in _ROWS) or (
                made
                and self is not store
                and "FROM trace_log_identities" in sql
                and not self.in_transaction
            )
            if hit and not done:
                done.append(True)
                between()
            return rows

        return fetch

    for name in reads:
        monkeypatch.setattr(SqliteDatabase, name, reading(name))


def test_a_log_being_made_is_not_declared_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """75r logbind 1: an opening between node.db's commit of its new log identity and its bind
    (reserved in trace.db); `declare_lost` read trace.db's bound row (none), the opening bound,
    then it read the reserved row (gone): the log being made, which node.db made and nothing
    recorded yet, was declared lost, and every later opening named it damaged. Now the reserved
    row is read first (as an opening reads them, 75p logbind 1): refused, the log is this node's."""
    run("node", "create", "n")
    with open_node("n", home=troth_home()) as node, open_node_log(node, clock=CLOCK) as log:
        made = log.log_identity
        with log.store.transaction():  # the opening, stopped before its bind
            log.store.execute(
                "UPDATE meta SET name = 'log_identity_pending' WHERE name = 'log_identity'"
            )
        racing_reads(monkeypatch, log.store, lambda: bind_log_identity(log.store, made))
        with pytest.raises(StorageError, match="holds this node's log"):
            declare_lost(node, log.store, now=CLOCK.now())
        assert log_identity.lost_logs(node) == []


def test_a_log_made_after_a_loss_is_not_named_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """75r logbind 2: an opening read what node.db made (the old log), then trace.db's bound
    row; in between, the old log was declared lost and another opening made and bound the new
    one: the opening named the node's own new log `trace log damaged ... not this node's log`.
    Now the bound row is read first: node.db made it before it was bound, so read after, it
    holds it."""
    run("node", "create", "n")
    with open_node("n", home=troth_home()) as node, open_node_log(node, clock=CLOCK) as log:
        old = log.log_identity
        with log.store.transaction():  # the log's file emptied: nothing bound
            log.store.execute("DELETE FROM meta WHERE name = 'log_identity'")

        def lost_then_opened() -> None:  # another process: declares it lost, opens anew
            declare_lost(node, log.store, now=CLOCK.now())
            node_log_identity(node, log.store, now=CLOCK.now())

        racing_reads(monkeypatch, log.store, lost_then_opened, made=True)
        new = node_log_identity(node, log.store, now=CLOCK.now())
        assert new != old
        assert [lost for lost, _ in log_identity.lost_logs(node)] == [old]
