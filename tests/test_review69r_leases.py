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
        with orders.server.connect(dbname=orders.dbname) as admin:
            if admin.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (gid,)).fetchone():
                admin.execute(f"ROLLBACK PREPARED '{gid}'")
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
