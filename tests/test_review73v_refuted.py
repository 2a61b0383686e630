"""Review 73v, refuted: attacks on 73s's identity check of a lease's prepared transaction
(troth.secrets.engines.postgres_locks: `PREPARED_BY`, `LOCK_HOLDERS`, `roll_back_prepared`)
that did not work (PostgreSQL tests: TROTH_REQUIRE_PG=1).

The check finds a prepared transaction by its xid's lock in pg_locks. Every prepared
transaction holds that lock until it ends: PREPARE TRANSACTION gives even a read-only one an
xid, and the lock is kept in its two-phase state, so the server re-takes it at recovery (its
virtual transaction id then reads `-1/<xid>`; the check compares the xid since 73v prepared2 1).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer, restart
from tests.test_review73l_pgwatch import _FIRST, _LEASES, _REVOKED, _lease, _roles
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets import LeaseState
from troth.secrets.engines import postgres_locks as locks

_GID = "g73v_refuted"


def test_a_read_only_prepared_transaction_is_read_and_rolled_back(pg_server: PgServer) -> None:
    """73v refuted 1: a lease's prepared transaction that locks nothing (a read-only one) has
    no pg_locks row to carry its virtual transaction id, so `PREPARED_BY` missed it and
    `roll_back_prepared` never rolled it back, the revocation never finishing? No: PREPARE
    TRANSACTION gives it an xid, whose lock it holds; it is read and rolled back."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            lease = _lease(pg_server, _FIRST, stack, lock=False)
            lease.execute("BEGIN")
            lease.execute("SELECT 1")
            lease.execute(f"PREPARE TRANSACTION '{_GID}'")
            su = stack.enter_context(pg_server.connect())
            read = su.execute(locks.PREPARED_BY, (_FIRST,)).fetchall()
            assert [row[:2] for row in read] == [(pg_server.dbname, _GID)]
            locks.roll_back_prepared(su, _GID, _LEASES, read[0][2])
            assert not pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_prepared_transaction_recovered_after_a_restart_is_rolled_back(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    """73v refuted 2: a lease's prepared transaction holding the revoked lease's table,
    recovered after the server restarted: its locks are re-taken by a dummy process with
    another virtual transaction id (`-1/<xid>`), so the check refused its rollback for ever,
    the revocation stuck after any restart? No: the read after the restart gives the
    transaction's id (its xid since 73v prepared2 1), and the rollback takes it."""
    proc = request.getfixturevalue("troth_pg_proc")
    with _roles(pg_server), ExitStack() as stack:
        try:
            lease = _lease(pg_server, _FIRST, stack)
            lease.execute(f"PREPARE TRANSACTION '{_GID}'")
            lease.close()
            restart(proc, pg_server)
            su = stack.enter_context(pg_server.connect())
            read = su.execute(locks.lock_holders(su), (_REVOKED, _LEASES)).fetchall()
            assert [row[1] for row in read] == [_GID]
            locks.end_lock_holders(su, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_prepared_transaction_that_made_an_object_the_leases_is_rolled_back(
    pg_server: PgServer,
) -> None:
    """73v refuted 3: a lease's prepared transaction that made an object its role owns (a
    large object: no privilege needed), uncommitted and so unseen by `DROP OWNED` and by
    `LOCK_HOLDERS`' catalog reads, kept the role's `DROP ROLE` waiting for ever? No: recording
    the owner's dependency locks the role (pg_authid) until the transaction ends, and
    `ROLE_LOCKERS` reads it there, with the vxid its rollback takes."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            lease = _lease(pg_server, _FIRST, stack, lock=False)
            lease.execute("BEGIN")
            lease.execute("SELECT lo_create(0)")
            lease.execute(f"PREPARE TRANSACTION '{_GID}'")
            su = stack.enter_context(pg_server.connect())
            read = su.execute(locks.ROLE_LOCKERS, (_FIRST, _LEASES)).fetchall()
            assert [row[1:3] for row in read] == [(_GID, pg_server.dbname)]
            locks.roll_back_prepared(su, _GID, _LEASES, read[0][4])
            assert not pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_revocation_after_a_restart_rolls_back_the_leases_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    """73v refuted 4: the whole revocation across a server restart: the broker's kept admin
    sessions (ended by the restart) and the lease's prepared transaction, recovered with its
    lock on the lease's own table and another virtual transaction id, left the lease
    REVOKING for good? No: it ends REVOKED, the transaction rolled back, the role gone."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    role = str(issued.lease.engine_ref)
    holder = login(orders, issued.credential.reveal())
    try:
        holder.execute(f'CREATE TABLE "{role}".t (x int)')
        holder.execute("BEGIN")
        holder.execute(f'LOCK TABLE "{role}".t IN ROW EXCLUSIVE MODE')
        holder.execute(f"PREPARE TRANSACTION '{_GID}'")
    finally:
        holder.close()
    restart(request.getfixturevalue("troth_pg_proc"), orders.server)
    try:
        revoked = broker.revoke(agent, issued.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        assert not orders.server.prepared(orders.dbname, _GID)
    finally:
        orders.server.end_prepared(orders.dbname, _GID)
