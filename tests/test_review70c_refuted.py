"""Review 70c, postgres leases: attacks on a lease's revocation that did not work (PostgreSQL
tests: TROTH_REQUIRE_PG=1). Each test keeps the attempt and pins why it fails.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)


@pytest.mark.parametrize("grantee", ["other lease", "template"])
def test_a_lease_cannot_grant_membership_in_its_own_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    grantee: str,
) -> None:
    """Tried: PostgreSQL 15 and older once let a role grant membership in itself (ADMIN OPTION
    on itself while it is the session user). Agent a's lease would grant its role to agent b's
    lease role, whose session `SET ROLE`s to it and, changing its password in a transaction it
    keeps open, locks its pg_authid row past the ending of a's sessions: a's revocation would
    fail at NOLOGIN with its role LOGIN. Or it would grant its role (owning a table) to the
    reader template, every other issue of it refused ("a role it inherits from owns an
    object"). The server (15.18 here) refuses the grant: a role has no ADMIN OPTION on itself
    (as on 16 and later)."""
    broker = setup(tmp_path, world, orders)
    try:
        first = broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        other = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
        role = str(first.credential.reveal()["user"])
        to = str(other.credential.reveal()["user"]) if grantee == "other lease" else orders.reader
        with login(orders, first.credential.reveal()) as session:
            session.execute("CREATE TABLE mine (x int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="admin option"):
                session.execute(f"GRANT {role} TO {to}")
        again = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
        with login(orders, again.credential.reveal()) as session:
            assert session.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    finally:
        broker.close()


def test_another_leases_default_privileges_on_a_role_do_not_keep_it_logging_in(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: agent b's lease records a grant to agent a's lease role in a transaction it keeps
    open (`ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO <a's role>`: any role may, for
    itself), which locks that role, hoping `ALTER ROLE ... NOLOGIN` waits on it too and a's
    revocation stops before shutting its role out (review 69r, leases 5 ended such lockers
    before `DROP ROLE` only). NOLOGIN takes no lock on the role object: a's role is shut out,
    and dropped (b's session ended, a lease role's)."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    other = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    credential = first.credential.reveal()
    role = str(credential["user"])
    holder = login(orders, other.credential.reveal())
    holder.autocommit = False
    try:
        holder.execute(f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {role}")
        broker.revoke(agent, first.lease_id, now=now())
        assert role not in orders.lease_roles()
        with pytest.raises(psycopg.OperationalError):
            login(orders, credential).execute("SELECT 1")
    finally:
        holder.close()
        broker.sweep(now() + 3600)
        broker.close()


def test_a_prepared_advisory_lock_does_not_outlive_the_lease(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: an advisory lock (any role may take one: an application's job queue or migration
    lock) held by a lease past its revocation, in a transaction it prepared
    (`pg_advisory_xact_lock`, then `PREPARE TRANSACTION`; a session-level one ends with the
    session): the revocation rolls the lease's prepared transactions back (review 69r, leases
    1 and 4), and the lock with them."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    gid = f"advisory_{uuid.uuid4().hex[:8]}"
    try:
        with login(orders, issued.credential.reveal()) as session:
            session.execute("BEGIN")
            session.execute("SELECT pg_advisory_xact_lock(7070)")
            session.execute(f"PREPARE TRANSACTION '{gid}'")
        with orders.server.connect(dbname=orders.dbname) as app:
            assert app.execute("SELECT pg_try_advisory_lock(7070)").fetchone() == (False,)
        broker.revoke(agent, issued.lease_id, now=now())
        assert not orders.server.prepared(orders.dbname, gid)
        with orders.server.connect(dbname=orders.dbname) as app:
            assert app.execute("SELECT pg_try_advisory_lock(7070)").fetchone() == (True,)
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        broker.close()


def test_a_copy_its_client_stops_reading_does_not_hold_a_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: the lease's session streams a long `COPY ... TO STDOUT` and its client stops
    reading, so the server's backend sits blocked writing to the socket, hoping
    `pg_terminate_backend` cannot end it and the revocation fails. A backend blocked on its
    client's socket still answers the termination: the role is gone."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    role = str(issued.credential.reveal()["user"])
    session = login(orders, issued.credential.reveal())
    try:
        ended = pytest.raises(psycopg.OperationalError)  # the stream ends under it
        stream = "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 10000000)) TO STDOUT"
        with ended, session.cursor().copy(stream) as copy:
            assert copy.read()  # the stream started; the client reads no more
            broker.revoke(agent, issued.lease_id, now=now())
            assert role not in orders.lease_roles()
            while copy.read():  # what the socket still held, then the termination
                pass
    finally:
        session.close()
        broker.close()
