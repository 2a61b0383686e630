"""Review 54x, identity 1: the source an identity's fork evidence counts against (review 54m,
identity 1) is the member at the root of its first voucher row (`voucher_sources`, written
once; docs/storage.md, "Schema"), not the lowest member of its rows of the moment: a thief
holding the victim's keys shows a colluding member's delegation (a credential needs no consent
of its subject) under another authority, the colluder's identifier ground low, and the
victim's fork then counted against the colluder's full share and was refused with no evidence
kept (review 54t, identity 1, for one authority: tests/test_review54t_identity.py). Each test
here failed before the fix."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.histories import DAY, T0, encode, extend, honest_history
from tests.test_review54m_identity import ACME, NOW, forked, node  # noqa: F401 - fixture
from troth import limits
from troth.errors import IdentityError
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.storage.sqlite_vouchers import SqliteVoucherStore

GLOBEX = b"\x0b" * 32
LOW = b"\x00" * 32  # a colluder's identifier ground low: the lowest member of any rows


def _victim(at: Node) -> tuple[Identifier, bytes]:
    """A stored identity with one change and the encoded history of a thief's fork of it."""
    base = honest_history(1)
    real, thiefs = extend(base, T0 + DAY), extend(base, T0 + 2 * DAY)
    victim = at.identities.import_history(encode(real.changes), now=NOW).identifier
    return victim, encode(thiefs.changes)


def test_a_colluders_row_under_another_authority_does_not_move_the_source(
    node: Node,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The victim's first voucher is alice's delegation (acme's); the thief adds the
    colluder's under globex, the colluder's share full of her delegates' forks: the victim's
    fork still counts against alice's and is kept."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS_PER_SOURCE", 4)
    forked(node, LOW, forks=2)
    forked(node, LOW, forks=2)
    victim, fork = _victim(node)
    vouchers = SqliteVoucherStore(node.db)
    vouchers.vouch(victim.digest, ACME, NOW + DAY, os.urandom(32))  # alice's delegate
    vouchers.vouch(victim.digest, GLOBEX, NOW + DAY, LOW)
    with pytest.raises(IdentityError):
        node.identities.import_history(fork, now=NOW)
    assert len(node.identities.forks(victim)) == 1


def test_a_members_delegates_do_not_leave_her_share_for_a_later_chain(
    node: Node,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flip side: a flooding member's delegate, first vouched with her chain, shows a
    later-expiring chain of another member (each of her delegates a new, empty share before):
    its forks still count against her full share."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS_PER_SOURCE", 4)
    flooder = os.urandom(32)
    forked(node, flooder, forks=2)
    forked(node, flooder, forks=2)
    delegate, fork = _victim(node)
    vouchers = SqliteVoucherStore(node.db)
    vouchers.vouch(delegate.digest, ACME, NOW + DAY, flooder)
    vouchers.vouch(delegate.digest, ACME, NOW + 2 * DAY, os.urandom(32))
    with pytest.raises(IdentityError):
        node.identities.import_history(fork, now=NOW)
    assert node.identities.forks(delegate) == []


def test_the_source_goes_with_the_identitys_last_voucher_row(
    node: Node,  # noqa: F811 - the fixture
) -> None:
    """`voucher_sources` is bounded by the vouchers: a sweep that forgets an identity's rows
    but its last keeps its source; forgetting the last drops it (the identity is then its own
    source, as any identity with no voucher)."""
    vouchers = SqliteVoucherStore(node.db)
    identifier, alice = os.urandom(32), os.urandom(32)
    vouchers.vouch(identifier, ACME, NOW + DAY, alice)
    vouchers.vouch(identifier, GLOBEX, NOW + DAY, LOW)

    def source() -> list[tuple[bytes, ...]]:
        rows = node.db.fetch_all(
            "SELECT member FROM voucher_sources WHERE identifier = ?", (identifier,)
        )
        return [tuple(bytes(v) for v in row) for row in rows]

    assert source() == [(alice,)]
    assert vouchers.settle(ACME, [(identifier, NOW + DAY)], []) == [identifier]
    assert source() == [(alice,)]
    assert vouchers.settle(GLOBEX, [(identifier, NOW + DAY)], []) == [identifier]
    assert source() == []


def test_an_older_database_gets_its_sources_from_its_vouchers(troth_home: Path) -> None:
    """The migration (crash-safe: one transaction with its version; idempotent) fills
    `voucher_sources` from the rows a database held before it, with the rule before it (the
    lowest member), and a later chain moves none of them."""
    init_node("old")
    identifier, high = os.urandom(32), b"\xff" * 32
    with open_node("old") as opened:
        path = opened.path / "node.db"
        vouchers = SqliteVoucherStore(opened.db)
        vouchers.vouch(identifier, ACME, NOW + DAY, high)
        vouchers.vouch(identifier, GLOBEX, NOW + DAY, LOW)
    with sqlite3.connect(path) as conn:  # as the schema before the migration left it
        conn.execute("DROP TABLE voucher_sources")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute(f"PRAGMA user_version = {version - 4}")  # (66i's, 69f's, 71e's after it)
    with open_node("old") as opened:
        SqliteVoucherStore(opened.db).vouch(identifier, ACME, NOW + 2 * DAY, os.urandom(32))
        rows = opened.db.fetch_all("SELECT identifier, member FROM voucher_sources")
        assert [(bytes(i), bytes(m)) for i, m in rows] == [(identifier, LOW)]
    with sqlite3.connect(path) as conn:  # the migration run again (a crash before its mark)
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute(f"PRAGMA user_version = {version - 4}")  # (66i's, 69f's, 71e's after it)
    with open_node("old") as opened:
        rows = opened.db.fetch_all("SELECT identifier, member FROM voucher_sources")
        assert [(bytes(i), bytes(m)) for i, m in rows] == [(identifier, LOW)]
