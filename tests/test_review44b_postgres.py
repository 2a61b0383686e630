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
default, which locks that table. And through a shared dependency: the second lease names the
first lease's role in a row-level security policy on its own table (an owner may name any role)
and keeps a transaction open on it; `DROP OWNED BY` takes the role out of the policy, which
locks the table.

The tests assert the correct behaviour and were strict xfails until the revocation ended, in
each database, the other sessions holding or awaiting a lock on a relation `DROP OWNED` drops or
alters before running it (`end_lock_holders` in troth/secrets/engines/postgres_locks.py): the first
until the relations the role owns, the second until what depends on them (pg_depend), the
third until the tables whose policies name the role.

The guard (pinned): only what its owner made depend on the lease's objects counts. A lease's
foreign key puts internal triggers on the table it references (another lease's, which other
agents read); ending the sessions locking it would let any lease end every other agent's session
reading that table at each of its revocations (the guard fails with the internal triggers
counted: AdminShutdown in the other agent's session).

Left: a lock held by a session the admin may not signal (a superuser's, when the admin is
not one; a prepared transaction's is rolled back since review 69r, leases 3), and one a
holder takes again between the termination and `DROP OWNED` (a race it must win at each
sweep), or by another lease on the table a lease's foreign key references (one another lease
let PUBLIC reference: a template holding REFERENCES is refused since review 70c, leases 2),
still fail the revocation, which is retried.

2. A REVOKING lease counted against no quota (the account's PENDING and unexpired ACTIVE ones
   did): whatever keeps revocations failing, the roles of an agent's leases piled up without
   bound while it held a few live ones. The last test (an engine whose revocation fails) was a
   strict xfail until the quota counted REVOKING leases too (`config_and_live`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.credentials import VerifiedCredential
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.broker import Broker, IssuedLease
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import SecretValue


@contextlib.contextmanager
def _revoked_past_a_lock(
    tmp_path: Path,
    leases: LeaseWorld,
    db: OrdersDb,
    *,
    first_sql: str | None,
    holder_sql: str | None,
    locked: str,
) -> Iterator[tuple[Broker, VerifiedCredential, IssuedLease, Any]]:
    """Postgres 1's scene: an agent's two leases; the first runs `first_sql`, the second runs
    `holder_sql` (`{role}`: the first lease's role, and its schema) and keeps a transaction
    open on table `locked` (`{role}` alike); the first lease is revoked, and must end REVOKED,
    its role dropped. Yields the broker, the agent, the second lease and its session."""
    import psycopg

    broker = setup(tmp_path, leases, db)
    agent = leases.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    role = first.lease.engine_ref
    if first_sql is not None:  # in the first lease's own schema, which PUBLIC may use
        with login(db, first.credential.reveal()) as session:
            session.execute(first_sql + f'; GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
    holder = login(db, second.credential.reveal())
    if holder_sql is not None:
        holder.execute(holder_sql.format(role=role))
    holder.autocommit = False
    holder.execute(f"SELECT * FROM {locked.format(role=role)}").fetchall()  # noqa: S608 - a lock
    try:
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert first.lease.engine_ref not in db.roles("tl_")
        yield broker, agent, second, holder
    finally:
        with contextlib.suppress(psycopg.Error):
            holder.close()
        broker.close()


def test_a_live_leases_lock_cannot_keep_a_revocation_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """Postgres 1: the second lease's open transaction on the first lease's table does not
    keep the first lease's revocation from finishing (its role dropped, REVOKED)."""
    import psycopg

    made = "CREATE TABLE hold (x int); GRANT SELECT ON hold TO PUBLIC"
    scene = _revoked_past_a_lock(
        tmp_path, world, orders, first_sql=made, holder_sql=None, locked='"{role}".hold'
    )
    with scene as (broker, agent, second, holder):
        with pytest.raises(psycopg.OperationalError):  # the lock holder's session ended
            holder.execute("SELECT 1").fetchall()
        (lease,) = [lease for lease in broker.leases(agent) if lease.state is LeaseState.ACTIVE]
        assert lease.handle == second.lease.handle  # the second lease itself lives on


def test_a_lock_on_what_depends_on_the_leases_objects_cannot_keep_it_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """Postgres 1, through a dependency: the first lease writes a function (PUBLIC may execute
    it); the second makes a table whose column default calls it and keeps a transaction open
    on its own table. The lock is on the second lease's table, not on anything the first
    owns, but `DROP OWNED BY ... CASCADE` drops the default, which locks that table."""
    function = "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    table = 'CREATE TABLE mine (x int DEFAULT "{role}".one())'
    with _revoked_past_a_lock(
        tmp_path, world, orders, first_sql=function, holder_sql=table, locked="mine"
    ):
        pass  # revoked, REVOKED, its role dropped (the scene's checks)


def test_a_policy_naming_the_leases_role_on_a_locked_table_cannot_keep_it_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """Postgres 1, through a shared dependency: the second lease names the first lease's role
    in a row-level security policy on its own table (an owner may name any role) and keeps a
    transaction open on that table; `DROP OWNED BY` the first role takes it out of the policy,
    which locks the table."""
    policy = 'CREATE TABLE mine (x int); CREATE POLICY p ON mine TO "{role}" USING (true)'
    with _revoked_past_a_lock(
        tmp_path, world, orders, first_sql=None, holder_sql=policy, locked="mine"
    ):
        pass  # revoked, REVOKED, its role dropped (the scene's checks)


class _Stuck(RemoteStub):
    """A remote engine whose revocations fail (what a lock held against `DROP OWNED` did)."""

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        raise OSError("lock timeout")


def test_a_lease_whose_revocation_keeps_failing_keeps_its_place_in_the_quota(
    tmp_path: Path,
) -> None:
    """Postgres 2: quota 2; the agent revokes its first lease, whose revocation fails (REVOKING,
    its role still there); a third lease is refused, not issued beside two live ones."""
    lease_world = make_world(NOW)
    policy = AllowListPolicy({lease_world.agent_b.identifier: {"stuck": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=2)
    engine = _Stuck()
    broker.engines[engine.kind] = engine
    broker.put_secret("stuck", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    agent = lease_world.credential_b()
    first = broker.issue(agent, "stuck", now=NOW)
    broker.issue(agent, "stuck", now=NOW)
    assert broker.revoke(agent, first.lease_id, now=NOW + 1).state is LeaseState.REVOKING
    with pytest.raises(SecretError) as caught:
        broker.issue(agent, "stuck", now=NOW + 2)
    assert caught.value.reason is SecretFailure.QUOTA_EXCEEDED


def test_a_leases_foreign_key_ends_no_session_reading_the_table_it_references(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """The guard of postgres 1: a lease whose table references another's (its owner let PUBLIC
    reference and read it; a template holding REFERENCES on a table it does not own is refused
    since review 70c, leases 2) puts internal triggers on that table, which its revocation
    drops; the sessions it ends are never another agent's reading that table (that agent made
    nothing depend on the lease), and the lease ends once that reader's transaction does."""
    broker = setup(tmp_path, world, orders)
    owner = broker.issue(world.credential_b(), SECRET, scope=["orders:write"], now=now())
    reader = login(orders, owner.credential.reveal())
    reader.execute(
        "CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1); "
        "GRANT SELECT, REFERENCES ON parent TO PUBLIC"
    )
    reader.execute(f'GRANT USAGE ON SCHEMA "{owner.lease.engine_ref}" TO PUBLIC')
    agent = world.credential_a()
    first = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    with login(orders, first.credential.reveal()) as session:
        parent = f'"{owner.lease.engine_ref}".parent'
        session.execute(f"CREATE TABLE refs (id int REFERENCES {parent} (id))")
    reader.autocommit = False
    reader.execute("SELECT * FROM parent").fetchall()  # another agent's open transaction
    try:
        broker.revoke(agent, first.lease_id, now=now())
        assert reader.execute("SELECT count(*) FROM parent").fetchone() == (1,)  # alive
        reader.commit()
        broker.sweep(now() + 1)
        lease = broker.book.lease(first.lease.handle)
        assert lease is not None
        assert lease.state is LeaseState.REVOKED
    finally:
        reader.close()
        broker.close()
