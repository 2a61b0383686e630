"""Review 72y, pgend: the lock-wait watcher of a postgres revocation (reviews 72q, 72u;
troth.secrets.engines.postgres_waits) (PostgreSQL tests: TROTH_REQUIRE_PG=1).

pgend 1: another lease's session queued on the held row behind an APPLICATION's transaction.
72u's watcher ended every lease role's session holding the row lock the revocation's statement
waited on, whatever it waited on itself: another lease's statement (its GRANT on the revoked
lease's schema, which it may grant) queued behind an application's open transaction on the
same row was ended, its work lost, for nothing: the application's transaction is never ended
(review 69w, wave4b 1), so the statement waited on it next and failed its lock timeout as
before. A queued lease session is ended only with the lease's transaction it waits on.

pgend 2: 72t's cascade 1 (a view's column reaches the whole view in the drops' reach) left out
materialized views, which CASCADE drops whole alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import pg_graph
from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review72u_watcher import _seen_waiting, granting_leases, went_through_then_revoked
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.secrets.engines import postgres_drops


@pytest.fixture(scope="module")
def pg_admin(pg_server: PgServer) -> Iterator[Any]:
    """The admin's (a superuser's) autocommit connection: each test in a transaction."""
    with pg_server.connect() as conn:
        yield conn


def test_another_leases_session_queued_behind_an_application_is_left(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72y pgend 1: an application's open transaction GRANTs on the lease's schema, another
    lease's session (granting the same) queues behind it on the row, and the lease is revoked:
    the revocation's statement waits on the queued session's row lock. The watcher ended that
    session though the application's transaction, left, still held the row: the other lease's
    statement was lost and the revocation failed all the same. Now the session is left; its
    statement goes through once the application commits."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 1000)
    broker = setup(tmp_path, world, orders)
    agent, first, second, grant = granting_leases(broker, world, orders)
    app = orders.server.connect(dbname=orders.dbname)
    queued = login(orders, second.credential.reveal())
    try:
        app.execute("BEGIN")
        app.execute(grant)
        queued.pgconn.send_query(grant.encode())
        _seen_waiting(orders, queued.info.backend_pid)
        broker.revoke(agent, first.lease_id, now=now())  # fails its lock timeout: retried
        app.execute("COMMIT")
        went_through_then_revoked(broker, first, queued)
    finally:
        app.close()
        queued.close()
        broker.sweep(now() + 3600)
        broker.close()


_MATVIEW = (  # (role, statement): another lease's materialized view reading its table's column
    # of the lease's domain (its own column of the domain: CASCADE drops it whole)
    (pg_graph.LEASE, f"CREATE DOMAIN {pg_graph.LEASE}.d AS int"),
    (pg_graph.OTHER, f"CREATE TABLE {pg_graph.OTHER}.t (a int, b {pg_graph.LEASE}.d)"),
    (
        pg_graph.OTHER,
        f"CREATE MATERIALIZED VIEW {pg_graph.OTHER}.m AS SELECT a, b FROM {pg_graph.OTHER}.t",  # noqa: S608
    ),
)


def test_another_leases_materialized_view_of_the_leases_domain_is_dropped_first(
    pg_admin: Any,
) -> None:
    """72y pgend 2: 72t's cascade 1 read a VIEW's column of the lease's type as the whole view
    (CASCADE drops it), not a materialized view's, which CASCADE drops whole alike: the drops
    reached neither it nor (its column depending on the domain) the domain, both left to `DROP
    OWNED`'s one transaction (71b pglease 2). Now the drops take it, and then the domain."""
    with pg_admin.transaction(force_rollback=True):
        for statement in pg_graph._SETUP:
            pg_admin.execute(statement)
        for role, statement in _MATVIEW:
            pg_admin.execute(f"SET ROLE {role}; {statement}; RESET ROLE")
        postgres_drops.drop_objects(pg_admin, pg_graph.LEASE)
        left = pg_graph.state(pg_admin, content=False).objects
    assert {f"type {pg_graph.LEASE}.d", f"materialized view {pg_graph.OTHER}.m"} & left == set()
