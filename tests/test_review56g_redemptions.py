"""Review 56g, redemptions 1-2: a hosted authority's ticket state grew without bound.

1. The tickets had no index on `expires_at`: the deletion of the expired ones, run at every
   enrollment, every ticket made and every round of the node hosting the authority
   (`forget_tickets`), read the whole table, so its cost grew with the tickets held.
2. A redemption (the credential the authority issued for it, a chain of up to ~100 KiB) was
   kept for good, one row per member per ticket, long after its ticket was deleted.

Were strict xfails until the store indexes the tickets and redemptions by expiry and
`forget_tickets` also deletes the redemptions whose ticket expired REDEMPTION_GRACE_SECONDS
ago (its member's late repeat is answered as its refresh would be until then; the ticket is
gone from its expiry on, so its code redeems nothing after: tests/test_review56g_refuted.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.enroll import acme_and_agent, enroll_in_process
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.clock import FixedClock
from troth.limits import REDEMPTION_GRACE_SECONDS
from troth.storage.sqlite_authority import SqliteAuthorityStore

NOW = 1_800_000_000


def test_the_expired_tickets_are_found_by_an_index(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, _agent, _member, _ticket):
        authority.forget_expired_tickets(now=NOW)
        store = authority.store
        assert isinstance(store, SqliteAuthorityStore)
        conn = store._db.connection()
        for query in (
            "DELETE FROM tickets WHERE expires_at <= 1 OR code_hash = x'00'",
            "DELETE FROM redemptions WHERE ticket_expires_at <= 1",
        ):
            plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query))
            assert "SCAN" not in plan, (query, plan)


def test_a_redemption_is_deleted_past_its_tickets_expiry_and_the_grace(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_in_process(agent, "agent", authority, ticket, clock)
        store = authority.store
        assert isinstance(store, SqliteAuthorityStore)
        expiry = NOW + DEFAULT_TICKET_TTL
        authority.forget_expired_tickets(now=expiry + REDEMPTION_GRACE_SECONDS - 1)
        assert store.count_redemptions(member.digest) == 1  # kept through the grace
        authority.forget_expired_tickets(now=expiry + REDEMPTION_GRACE_SECONDS)
        assert store.count_redemptions(member.digest) == 0


def test_a_node_db_made_before_the_indexes_gets_them_when_opened(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, _agent, _member, _ticket):
        store = authority.store
        assert isinstance(store, SqliteAuthorityStore)
        indexes = {"tickets_expiry", "redemptions_expiry"}
        with store._db.transaction():
            for name in indexes:
                store._db.execute(f"DROP INDEX {name}")
        SqliteAuthorityStore(store._db)
        names = {row[0] for row in store._db.fetch_all("SELECT name FROM sqlite_master")}
        assert indexes <= names
