"""Review 71h (area: wave2a): attacks on 71e's shared ticket quotas and 71d's outbox bound and
collector key check that did not work, kept as passing tests (tests/test_review71h_wave2a.py
holds the ones that did)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.test_authority import Setup
from tests.test_review47l_windows import EARLY
from tests.test_review71d_outbox import Logged
from tests.test_review71e_quota import member, refused, setup, strict
from tests.test_trace_service import F
from troth.errors import ConfigError
from troth.storage import SqliteDatabase
from troth.storage.sqlite import _MIGRATIONS
from troth.trace.submit import Status

__all__ = ["setup", "strict"]  # the fixtures, shared


def test_removing_a_member_gives_its_tickets_quota_nothing_back(strict: Setup) -> None:
    """Tried: a member of a ticket of many uses spends the ticket's quota, and the authority
    removes it (or its holder has it removed): its entries stay charged to the ticket, so the
    ticket's other members, and one it enrolls after, are still refused for the window."""
    ticket = strict.ticket(uses=3)
    member(strict, "g0", ticket)
    member(strict, "g1", ticket)
    assert not refused(strict, "g0")
    strict.authority.remove_member(strict.id("g0"), now=NOW)
    assert refused(strict, "g1")
    member(strict, "g2", ticket)
    assert refused(strict, "g2")


def test_a_promoted_member_keeps_its_tickets_quota(strict: Setup) -> None:
    """Tried: a member of a ticket of many uses that spent its quota is promoted (re-enrolled
    with an admin's ticket of many uses, `--role admin`): it keeps the first ticket's quota
    (spent: refused), and the admin ticket's next member does not share it."""
    shared = strict.ticket(uses=2)
    member(strict, "p0", shared)
    assert not refused(strict, "p0")
    admins = strict.ticket(uses=2, role="admin")
    strict.enroll("p0", admins)
    assert "admin" in strict.authority.roles_of(strict.id("p0"))
    assert refused(strict, "p0")
    member(strict, "p1", admins)
    assert not refused(strict, "p1")


def test_an_expired_and_forgotten_ticket_leaves_its_members_sharing(strict: Setup) -> None:
    """Tried: wait for the ticket of many uses to expire and be forgotten (its row deleted):
    its members' quota is kept by the code hash on their own rows, so they still share it."""
    ticket = strict.ticket(uses=2, ttl=60)
    member(strict, "x0", ticket)
    member(strict, "x1", ticket)
    assert strict.authority.forget_expired_tickets(now=NOW + 120) == 1
    assert not refused(strict, "x0")
    assert refused(strict, "x1")


def _columns(path: Path) -> set[str]:
    """Which of schema 21's columns node.db at `path` has."""
    with sqlite3.connect(path) as raw:
        names = {
            row[1]
            for table in ("members", "tickets")
            for row in raw.execute(f"PRAGMA table_info({table})")
        }
    raw.close()
    return names & {"quota_ticket", "uses"}


def test_the_schema_21_migration_killed_midway_leaves_schema_20(tmp_path: Path) -> None:
    """Tried: a crash inside schema 21's migration, after its first column was added: the
    migrating transaction is rolled back (schema 20, neither column), and the next opening
    migrates it whole. A node.db of a newer troth (schema 22) is refused, not migrated."""
    path = tmp_path / "node.db"
    SqliteDatabase(path, migrations=_MIGRATIONS[:-1]).close()

    def killed(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE members ADD COLUMN quota_ticket BLOB")
        raise KeyboardInterrupt  # the process killed midway

    with pytest.raises(KeyboardInterrupt):
        SqliteDatabase(path, migrations=(*_MIGRATIONS[:-1], killed))
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS) - 1
    raw.close()
    assert _columns(path) == set()
    SqliteDatabase(path).close()
    assert _columns(path) == {"quota_ticket", "uses"}
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(_MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(ConfigError, match="this troth knows"):
        SqliteDatabase(path)


def test_a_resigning_under_a_history_ahead_of_the_nodes_copy(tmp_path: Path) -> None:
    """Tried: the agent rotates and neither the node nor the log learns of it; records signed
    again sent under the rotated history (ahead of both copies): the retired key's resigning
    of the logged record, dated before the rotation, is refused ATTESTATION_STALE (its key is
    not current in the history sent, whatever the node holds), and the new key's is answered
    ALREADY at the record's own index, as the log would append neither."""
    logged = Logged(tmp_path, rotate=False)
    try:
        logged.agent.rotate(EARLY + 10)  # nobody told
        logged_record = logged.submission.records[0]
        (thiefs,) = logged.send(logged.again(logged.stolen, logged_record))
        assert (thiefs.status, thiefs.reason) == (Status.REFUSED, F.ATTESTATION_STALE), thiefs
        newest = logged.agent.signer(EARLY + 20)
        owners = logged.again(newest, logged_record, time=EARLY + 20)
        (answer,) = logged.send(owners, signer=newest)
        assert (answer.status, answer.index) == (Status.ALREADY, logged.first.index), answer
        assert logged.collector.log.size() == 1
    finally:
        logged.collector.log.close()
