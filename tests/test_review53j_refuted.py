"""Review 53j: attacks on the code landed in reviews 53c-53h that the code refused.

- Rekey 1 (review 53g's receiver deriving up to 4 epochs ahead): forged frames naming epochs
  ahead cost at most `MAX_EPOCHS_AHEAD` key derivations in all, however many and in whatever
  order they come (each derived key is kept until a frame authenticates), and a frame naming
  an epoch past them derives nothing; the keys kept stay bounded.
- Notices 1 (review 53h's budgets grouped by host tag): a tag names a share of ONE
  connection's budget: sources named with one tag by the node at the other end of a
  connection (a relay forging a host's tag) spend that connection's budget only, never another
  connection's, and a tag-shaped address of another kind is not grouped.
- Gates 2 (review 53c's caches keyed by chain and server): a server's name follows the chain's
  32-byte hash in the cache keys, so no server name and no chain collide with the key of no
  server; a server name that is no tool name (a separator, a quote, empty) is denied, never
  shown, never cached as another server's.
- Due 1 (review 53h's AUTOINCREMENT migration of feed_syncs_due): all or nothing (one
  transaction with its schema version), so a crash before its commit leaves the old table and
  the next open migrates it; a troth from before it refuses the migrated file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from troth.channel.noise import CipherState
from troth.channel.rekey import MAX_EPOCHS_AHEAD, ReceiveKeys
from troth.crypto import AeadAlgorithm
from troth.limits import NOTICE_BURST
from troth.node.notice_budgets import NoticeBudgets
from troth.routing import Address


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    rekeyed = CipherState.rekeyed

    def counted(self: CipherState) -> CipherState:
        calls.append(1)
        return rekeyed(self)

    monkeypatch.setattr(CipherState, "rekeyed", counted)
    return calls


def test_forged_frames_naming_epochs_ahead_cost_at_most_the_epochs_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _counting(monkeypatch)
    keys = ReceiveKeys(CipherState(AeadAlgorithm.CHACHA20_POLY1305, bytes(32)))
    for _ in range(1000):  # none authenticates: nothing is committed
        for epoch in (MAX_EPOCHS_AHEAD, 1, 2**40, MAX_EPOCHS_AHEAD + 1, 3, -1):
            cipher = keys.cipher_for(epoch)
            assert (cipher is None) == (epoch < 0 or epoch > MAX_EPOCHS_AHEAD)
    assert len(calls) == MAX_EPOCHS_AHEAD
    assert len(keys._ahead) == MAX_EPOCHS_AHEAD
    assert set(keys.epochs) == {0}


def test_keys_derived_ahead_serve_the_epochs_that_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame of epoch 3 authenticates: the keys already derived are used, not derived again,
    and the receiver keeps two epochs and at most MAX_EPOCHS_AHEAD ahead."""
    calls = _counting(monkeypatch)
    keys = ReceiveKeys(CipherState(AeadAlgorithm.CHACHA20_POLY1305, bytes(32)))
    forged = keys.cipher_for(MAX_EPOCHS_AHEAD)
    assert forged is not None
    third = keys.cipher_for(3)
    assert third is not None
    keys.commit(3, third)
    assert set(keys.epochs) == {2, 3}
    assert keys.cipher_for(MAX_EPOCHS_AHEAD) is forged  # kept, not derived again
    assert len(calls) == MAX_EPOCHS_AHEAD
    for _ in range(100):
        keys.cipher_for(3 + MAX_EPOCHS_AHEAD)
    assert len(calls) == 3 + MAX_EPOCHS_AHEAD  # one more per epoch the receiver moved on
    assert len(keys._ahead) <= MAX_EPOCHS_AHEAD


def _tagged(tag: str, n: int) -> Address:
    return Address("worker", f"tcp-h{tag}-{n:016x}")


def test_a_forged_host_tag_spends_only_its_own_connections_budget() -> None:
    budgets = NoticeBudgets()
    relay, other = Address("worker", "tcp-relay"), Address("worker", "tcp-other")
    victim = "0badc0de"
    spent = 0
    for n in range(10 * NOTICE_BURST):  # the relay names many senders with the victim's tag
        spent += budgets.take(relay, _tagged(victim, n), 0.0)
    assert spent == NOTICE_BURST  # one share for the tag on that connection
    # the host itself, over its own connection, keeps its whole share
    assert all(budgets.take(other, _tagged(victim, n), 0.0) for n in range(NOTICE_BURST))


def test_a_tag_shaped_address_of_another_kind_is_its_own_source() -> None:
    budgets = NoticeBudgets()
    relay = Address("worker", "tcp-relay")
    for n in range(NOTICE_BURST):
        assert budgets.take(relay, _tagged("01234567", n), 0.0)
    assert not budgets.take(relay, _tagged("01234567", 999), 0.0)
    assert budgets.take(relay, Address("relay", "tcp-h01234567-0000000000000001"), 0.0)


PAYMENTS_ONLY = """\
@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource);
@id("payments-refund") permit(
  principal, action == Action::"invoke:refund", resource in Server::"payments")
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write") };
"""


def test_server_names_neither_collide_in_the_caches_nor_pass_as_another() -> None:
    from tests.support.gates import T, lookup_order, make_world, refund
    from troth.gates import Outcome, ToolCall

    world = make_world()
    point = world.point(world.store(world.bundle(policies=PAYMENTS_ONLY)))
    caller = world.credential(world.support_chain, world.support)
    now = T + 10
    both = frozenset({"lookup_order", "refund"})
    args = {"order_id": "o1", "amount": 20}
    del lookup_order, refund  # (the world's tools)
    # in any order, each server's answer is its own (no entry reused for another key)
    for _ in range(2):
        for server, visible in (("payments", both), (None, {"lookup_order"}), ("Payments", None)):
            shown = point.visible_tools(caller, now=now, server=server)
            assert shown == (visible or {"lookup_order"})
            allowed = point.decide(caller, ToolCall("refund", args, None, server), now=now).allowed
            assert allowed == (server == "payments")
    # names no gate takes: no tool shown, every call denied as an unknown request
    for junk in ("", "pay/ments", 'payments"', "payments\x00", "p" * 129, "payments "):
        assert point.visible_tools(caller, now=now, server=junk) == frozenset()
        decision = point.decide(caller, ToolCall("refund", args, None, junk), now=now)
        assert decision.outcome is Outcome.UNKNOWN_REQUEST
    # and the cache of a valid name was not touched by them
    assert point.visible_tools(caller, now=now, server="payments") == both


def _before_migration(path: Any, current: int) -> None:
    """node.db as it was before review 53h's migration (ids given again), with marks 3 and 7."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE feed_syncs_due")
        conn.execute(
            "CREATE TABLE feed_syncs_due (id INTEGER PRIMARY KEY, authority BLOB NOT NULL, "
            "address TEXT NOT NULL, marked_at INTEGER NOT NULL)"
        )
        conn.execute("CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority)")
        for mark in (3, 7):
            conn.execute("INSERT INTO feed_syncs_due VALUES (?, ?, 'node:acme', 1)", (mark, A))
        conn.execute("DROP TABLE voucher_sources")  # review 54x's, the migration after it
        conn.execute(f"PRAGMA user_version = {_of_53h(current)}")  # (and every one after it)


def _of_53h(current: int) -> int:
    """node.db's `user_version` before review 53h's migration (the one making
    `feed_syncs_due_ids`), counted from the `current` one."""
    from troth.storage.sqlite import _MIGRATIONS

    made = [i for i, m in enumerate(_MIGRATIONS) if isinstance(m, str) and "_ids (" in m]
    assert len(made) == 1
    assert len(_MIGRATIONS) == current
    return made[0]


def _schema(path: Any) -> tuple[int, list[str]]:
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        tables = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name LIKE 'feed_syncs_due%' ORDER BY name"
        ).fetchall()
    return version, [row[0] for row in tables]


A = bytes(32)


def test_the_autoincrement_migration_is_all_or_nothing_and_no_downgrade_reads_it() -> None:
    """Due 2's migration (feed_syncs_due rebuilt): a process killed after its statements and
    before its commit (here: a later migration failing in the same transaction) leaves the old
    table, rows and schema version, and the next open migrates it; a troth from before it
    (one migration fewer) refuses the migrated file instead of writing to it."""
    import troth
    from troth.errors import ConfigError
    from troth.storage.sqlite import _MIGRATIONS, SqliteDatabase

    with troth.Node.open("agents") as agents:
        path = agents._stored.path / "node.db"
    current = len(_MIGRATIONS)
    _before_migration(path, current)
    before = _schema(path)

    def crash(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(Exception, match="disk I/O error"):
        SqliteDatabase(path, migrations=(*_MIGRATIONS, crash)).connection()
    assert _schema(path) == before  # the old table and version, nothing half-done
    with troth.Node.open("agents") as agents:
        store = agents._stored.wallet.store
        assert store.marks_due(A) == [3, 7]
        assert store.clear_sync_due(A, 7) == 1
        assert store.mark_sync_due(A, "node:acme", 2) > 7
    version, tables = _schema(path)
    assert version == current
    assert any("AUTOINCREMENT" in sql for sql in tables if sql)
    with pytest.raises(ConfigError, match="this troth knows"):
        SqliteDatabase(path, migrations=_MIGRATIONS[:-1]).connection()
