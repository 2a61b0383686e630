"""Review 73q, pgwatch3: 73l's session identity checks in the PostgreSQL watcher reviewed
(troth.secrets.engines.postgres_locks, postgres_waits) (PostgreSQL tests: TROTH_REQUIRE_PG=1).

pgwatch3 1: a lease's prepared transaction holding a lock on what the revocation drops was
never rolled back by an admin that is no superuser (CREATEROLE and pg_signal_backend, as
docs/secrets.md allows): `ROLLBACK PREPARED` is its owner's or a superuser's, the refusal was
swallowed, and the statement it blocks failed its lock timeout at every retry, the lease
REVOKING for as long as its holder liked (a lease prepares with no privilege on a server with
two-phase commit on). It is now rolled back as its owner (`SET ROLE`, the admin granting itself
the lease role, which CREATEROLE may, when it is no member).

pgwatch3 2: a gid read as a lease role's prepared transaction, rolled back as whoever prepared
that gid now. `roll_back_prepared` ran `ROLLBACK PREPARED gid` as the admin a statement after
the read: the lease's transaction committed (its owner may, from any session) and another
role's (an application's XA transaction manager's) prepared under the same gid meanwhile was
rolled back in its place, its writes lost (73b pgwatch 1's pid reuse, for a prepared
transaction's gid). The rollback now runs as the lease role read: another role's is refused.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review56b_postgres import drop_leases, plain_admin
from tests.test_review73b_pgwatch import _ReadBefore
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _REVOKED, _lease, _roles
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets.engines import postgres_locks as locks

_GID = "g73q_pgwatch3"


def _prepared(session: Any) -> None:
    """Prepare `session`'s open transaction as `_GID`."""
    session.execute(f"PREPARE TRANSACTION '{_GID}'")


def test_a_prepared_lock_holder_is_rolled_back_by_an_admin_that_is_no_superuser(
    pg_server: PgServer,
) -> None:
    """73q pgwatch3 1: another lease locks the revoked lease's table in a transaction it
    prepares; the admin, CREATEROLE and pg_signal_backend (no superuser), reads it in
    LOCK_HOLDERS and may not `ROLLBACK PREPARED` it as itself: it was left, the revocation's
    drop failing its lock timeout at each retry. Now rolled back as its owner."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            _prepared(_lease(pg_server, _FIRST, stack))
            admin = stack.enter_context(pg_server.connect(user=_ADMIN))
            locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GID)
            member = "SELECT pg_has_role(current_user, %s, 'MEMBER'), current_user"
            assert admin.execute(member, (_FIRST,)).fetchone() == (False, _ADMIN)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_gid_read_as_a_lease_is_not_rolled_back_as_another_roles(pg_server: PgServer) -> None:
    """73q pgwatch3 2: LOCK_HOLDERS read a lease's prepared transaction `_GID` holding the
    revoked lease's table; it committed, and an application's transaction (here the cluster
    superuser's, no lease role) was prepared under the same gid before the rollback, which
    rolled it back in its place. Now the rollback runs as the lease role read, and is refused."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            lease = _lease(pg_server, _FIRST, stack)
            _prepared(lease)
            su = stack.enter_context(pg_server.connect())
            read = su.execute(locks.lock_holders(su), (_REVOKED, _LEASES)).fetchall()
            assert [row[1] for row in read] == [_GID]
            pg_server.end_prepared(pg_server.dbname, _GID, "COMMIT")
            application = stack.enter_context(pg_server.connect())
            application.execute("BEGIN")
            application.execute("SELECT 1")
            _prepared(application)
            now = {"SELECT has_table_privilege": [(True,)], locks.LOCK_HOLDERS[:40]: read}
            locks.end_lock_holders(_ReadBefore(su, now), _REVOKED, _LEASES, 1000)
            assert pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_revoked_leases_prepared_row_lock_is_rolled_back_by_an_admin_that_is_no_superuser(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """73q pgwatch3 1, the revoked lease's own (review 69r, leases 1, under an admin that is
    no superuser): the lease changes its password in a transaction it prepares, holding its
    role's row; the revocation's `ROLLBACK PREPARED`, as the admin, was refused, `NOLOGIN`
    failed its three rounds, and the role kept logging in. Now rolled back as the role: it
    logs in no more (the revocation itself stays REVOKING on PostgreSQL 15, where `DROP
    OWNED` needs the role's privileges: docs/secrets.md)."""
    import psycopg

    admin = plain_admin(orders)
    broker = setup(tmp_path, world, orders, user=admin)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    credential = issued.credential.reveal()
    try:
        with login(orders, credential) as session:
            session.execute("BEGIN")
            session.execute(f"ALTER ROLE {credential['user']} PASSWORD 'held'")
            session.execute(f"PREPARE TRANSACTION '{_GID}'")
        broker.revoke(agent, issued.lease_id, now=now())
        assert not orders.server.prepared(orders.dbname, _GID)
        with pytest.raises(psycopg.OperationalError):
            login(orders, credential).close()
    finally:
        orders.server.end_prepared(orders.dbname, _GID)
        broker.close()
        drop_leases(orders, admin, broker)
