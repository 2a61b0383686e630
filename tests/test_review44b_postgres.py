"""Review 44b, postgres leases: a live lease keeps another lease's revocation failing.

1. A lease that may create tables makes one and lets PUBLIC read it (its owner may); a second
   live lease of the same agent reads it inside a transaction it keeps open, so its session
   holds a lock on the table. The agent revokes the first lease: its role is NOLOGIN and its own
   sessions end, but `DROP OWNED BY` waits for the lock (`lock_timeout`, 5 s), fails, and the
   lease stays REVOKING, retried at every sweep for as long as the second lease (renewed, or
   handing the lock to a third) keeps it. A REVOKING lease counts against no quota, so the agent
   piles up roles and their tables without bound (revoke, lease again, the lock holder reads the
   new table too) while holding two live leases; and each stuck lease costs the broker's thread
   `lock_timeout` at every sweep, so a few dozen of them keep the thread busy, and every other
   agent's issue, renewal and revocation — the feed's included — waits behind the sweeps (the
   revocation bound of docs/secrets.md no longer holds).

The same through a dependency: the lock is on a table of the second lease whose column default
calls a function of the first; `DROP OWNED BY ... CASCADE` (review 22, finding 3) drops the
default, which locks that table.

Both tests assert the correct behaviour and were strict xfails until the revocation ended, in
each database, the other sessions holding a lock on a relation `DROP OWNED` drops or alters —
what the lease's role owns and what depends on it (pg_depend) — before running it
(`_end_lock_holders` in troth/secrets/engines/postgres.py; the first test passed with the first
form of it, the relations the role owns, and the second was a strict xfail until the
dependents were added).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    _admin_sql,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets import LeaseState


def test_a_live_leases_lock_cannot_keep_a_revocation_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """Postgres 1: the second lease's open transaction on the first lease's table does not
    keep the first lease's revocation from finishing (its role dropped, REVOKED)."""
    import psycopg

    _admin_sql(orders, f"GRANT CREATE ON SCHEMA public TO {orders.writer}")
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    with login(orders, first.credential.reveal()) as session:
        session.execute("CREATE TABLE hold (x int); GRANT SELECT ON hold TO PUBLIC")
    holder = login(orders, second.credential.reveal())
    holder.autocommit = False
    holder.execute("SELECT * FROM hold").fetchall()  # its transaction stays open: a lock
    try:
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert first.lease.engine_ref not in orders.roles("tl_")
        with pytest.raises(psycopg.OperationalError):  # the lock holder's session ended
            holder.execute("SELECT 1").fetchall()
        (lease,) = [lease for lease in broker.leases(agent) if lease.state is LeaseState.ACTIVE]
        assert lease.handle == second.lease.handle  # the second lease itself lives on
    finally:
        with contextlib.suppress(psycopg.Error):
            holder.close()
        broker.close()


def test_a_lock_on_what_depends_on_the_leases_objects_cannot_keep_it_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """Postgres 1, through a dependency: the first lease writes a function (PUBLIC may execute
    it); the second makes a table whose column default calls it and keeps a transaction open
    on its own table. The lock is on the second lease's table, not on anything the first
    owns, but `DROP OWNED BY ... CASCADE` drops the default, which locks that table."""
    import psycopg

    _admin_sql(orders, f"GRANT CREATE ON SCHEMA public TO {orders.writer}")
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    with login(orders, first.credential.reveal()) as session:
        session.execute("CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    holder = login(orders, second.credential.reveal())
    holder.execute("CREATE TABLE mine (x int DEFAULT public.one())")
    holder.autocommit = False
    holder.execute("SELECT * FROM mine").fetchall()  # its transaction stays open: a lock
    try:
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert first.lease.engine_ref not in orders.roles("tl_")
    finally:
        with contextlib.suppress(psycopg.Error):
            holder.close()
        broker.close()
