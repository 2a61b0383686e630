"""Review 69r, leased secrets and the lease lifecycle (PostgreSQL tests: TROTH_REQUIRE_PG=1).

leases 1: a lease's role kept working after its revocation, until its expiry (up to the
secret's max_ttl), on a server with two-phase commit on (`max_prepared_transactions` > 0, as
servers behind XA transaction managers run). Any role may change its own password: the lease's
session did so in a transaction it then prepared (`PREPARE TRANSACTION`), which holds the
role's pg_authid row and, unlike a session's open transaction (review 49e, revocations 1),
survives `pg_terminate_backend`. The revocation ended the role's sessions, then `ALTER ROLE
... NOLOGIN` waited for that row and failed at each of its rounds, so it stopped before taking
any privilege: the lease stayed REVOKING, its role LOGIN with every privilege, and the agent
whose lease was revoked logged in again with the same password and read on between the
sweep's retries (5 s, 10 s, ... up to 30 minutes apart) until VALID UNTIL. A revocation now
rolls back the role's prepared transactions (in each database they were prepared in) once its
sessions ended, before NOLOGIN.

leases 2: an orphan role (one no lease row names: a power cut lost its row) whose removal
failed was dropped from the orphan sweep's list silently: no log line, no audit record, not in
`SweepReport` nor `stuck_revocations`, so a role able to log in could stay on the server, tried
again only at the next listing, with nothing telling the operator (a failed lease revocation
is logged and listed). A failed removal is now logged as a warning naming the role and the
server's error, as a failed lease revocation is.

leases 3: review 44b's guard (a live lease's lock on what a revoked lease owns is ended before
`DROP OWNED`) left the lock of a prepared transaction, which has no session to end: a second
lease read the first lease's table (its owner let PUBLIC read it) in a transaction it prepared,
and the first lease's revocation waited the lock timeout (5 s of the broker's thread) and
failed at every retry for as long as the second lease liked (its lease renewed: up to the
secret's max_ttl and on), the first staying REVOKING and holding its member's quota. The
prepared transactions holding such a lock are now rolled back as the sessions are ended.

leases 4: a lease's prepared transaction outlived the lease. Its revocation succeeded (the
role dropped, REVOKED) and left the transaction prepared, owned by no role: its uncommitted
writes (an INSERT under `orders:write`) could still be committed by an administrator, its
locks stayed (ROW EXCLUSIVE on the template's table: no ALTER TABLE), it held back the
server's xmin horizon for good (VACUUM removed no dead row after it; in time the XID
wraparound guard stops the cluster) and took one of the server's `max_prepared_transactions`
slots, a few leases all of them (every XA client then failing). docs/secrets.md promises that
what a lease's role created dies with it. leases 1's fix rolls them back at every revocation.

leases 5: any lease, of any member, kept any other lease's revocation failing, on every
server (two-phase commit or not). The role names are public (pg_roles), and any role may
record a grant to any role for itself: `ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO
<another lease's role>` (no privilege needed; a table it owns, `GRANT ... TO`, does the same)
locks that role (a shared dependency) until the transaction ends. A read-only lease of member B
kept such a transaction open naming member A's lease roles (one statement may name them all):
A's revocations and expiries waited the lock timeout at `DROP ROLE` and failed at every retry,
REVOKING for as long as B liked, each filling A's quota (every member's, so the broker issued
nothing more) and costing the broker's thread 5 s a retry. Review 44b ended the sessions
locking the relations `DROP OWNED` needs, not those locking the role itself. A revocation now
ends the sessions holding a lock on the role (and rolls back the prepared transactions that
do) before `DROP OWNED` and again before `DROP ROLE`.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    prepare_write,
    setup,
    world,
)
from troth.secrets import LeaseState


def test_a_prepared_transaction_does_not_keep_a_revoked_lease_logging_in(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """leases 1: the agent locks its role's row in a prepared transaction, its lease is
    revoked: its role is gone and it cannot log in again."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    credential = issued.credential.reveal()
    role = str(credential["user"])
    session = login(orders, credential)
    gid = f"hold_{uuid.uuid4().hex[:8]}"
    session.execute("BEGIN")
    session.execute(f"ALTER ROLE {role} PASSWORD 'held'")
    session.execute(f"PREPARE TRANSACTION '{gid}'")
    try:
        revoked = broker.revoke(agent, issued.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        with pytest.raises(psycopg.OperationalError):
            login(orders, credential).execute("SELECT count(*) FROM orders")
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        broker.sweep(now() + 3600)
        broker.close()


def test_an_orphan_role_the_sweep_cannot_remove_is_logged(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    pg_server: PgServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """leases 2: an orphan with LOGIN whose row another session keeps locked (NOLOGIN fails
    every round): the sweep removes nothing and says so."""
    broker = setup(tmp_path, world, orders)
    orphan = f"tl_{broker.keys.broker_id}_" + uuid.uuid4().hex
    with pg_server.connect() as admin:
        admin.execute(f"CREATE ROLE {orphan} LOGIN PASSWORD 'left'")
    holder = pg_server.connect(autocommit=False)
    try:
        holder.execute(f"ALTER ROLE {orphan} PASSWORD 'held'")  # its row locked till rollback
        with caplog.at_level(logging.WARNING, logger="troth.secrets.broker"):
            assert broker.sweep(now()).orphans == 0
        assert orphan in orders.lease_roles()
        assert [r.levelno for r in caplog.records if orphan in r.getMessage()] == [logging.WARNING]
    finally:
        holder.rollback()
        holder.close()
        broker.orphans = type(broker.orphans)(broker.orphans.budget.clock)  # list again now
        assert broker.sweep(now()).orphans == 1
        broker.close()


def test_another_leases_prepared_lock_does_not_keep_a_revocation_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """leases 3: the second lease locks the first lease's table in a prepared transaction; the
    first lease's revocation ends REVOKED, its role dropped, the second lease live."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    schema = f'"{first.lease.engine_ref}"'  # the first lease's own, which PUBLIC may use
    with login(orders, first.credential.reveal()) as session:
        session.execute(
            f"CREATE TABLE hold (x int); GRANT SELECT ON hold TO PUBLIC; "
            f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC"
        )
    gid = f"hold_{uuid.uuid4().hex[:8]}"
    with login(orders, second.credential.reveal()) as holder:
        holder.execute("BEGIN")
        holder.execute(f"SELECT * FROM {schema}.hold").fetchall()  # noqa: S608 - a test's name
        holder.execute(f"PREPARE TRANSACTION '{gid}'")
    try:
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert first.lease.engine_ref not in orders.lease_roles()
        assert broker.book.lease(second.lease.handle).state is LeaseState.ACTIVE  # type: ignore[union-attr]
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        broker.sweep(now() + 3600)
        broker.close()


def test_a_leases_prepared_transaction_dies_with_its_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """leases 4: the lease writes in a transaction it prepares; once revoked, nothing of it is
    left prepared and its write never lands."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    gid = f"write_{uuid.uuid4().hex[:8]}"
    prepare_write(orders, issued.credential.reveal(), gid)
    try:
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        with orders.server.connect(dbname=orders.dbname) as admin:
            left = admin.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (gid,))
            assert left.fetchall() == []
            assert admin.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        broker.close()


@pytest.mark.parametrize("prepared", [False, True])
def test_another_members_lock_on_a_leases_role_does_not_keep_its_revocation_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    prepared: bool,
) -> None:
    """leases 5: agent b (another member, a read-only lease) locks agent a's lease role in a
    transaction it keeps open (or prepares); a's lease is revoked: REVOKED, its role gone."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    victim = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    holder = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    gid = f"lock_{uuid.uuid4().hex[:8]}"
    session = login(orders, holder.credential.reveal())
    session.execute("BEGIN")
    session.execute(
        f'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO "{victim.lease.engine_ref}"'
    )
    if prepared:
        session.execute(f"PREPARE TRANSACTION '{gid}'")
    try:
        revoked = broker.revoke(world.credential_a(), victim.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert victim.lease.engine_ref not in orders.lease_roles()
        if not prepared:
            with pytest.raises(psycopg.OperationalError):  # the lock holder's session ended
                session.execute("SELECT 1").fetchall()
    finally:
        session.close()
        orders.server.end_prepared(orders.dbname, gid)
        broker.close()
