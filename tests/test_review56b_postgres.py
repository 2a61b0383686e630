"""Review 56b, postgres: what one agent's lease may do to every other lease of a template.

A lease's role may always make a temporary table (PUBLIC holds TEMPORARY on every database)
and a large object, own them, name any role (pg_roles is public) in a row-level security
policy on its table and grant any role privileges on what it owns. The engine read every such
policy and ACL entry as the template's own: one agent's lease made the templates of any secret
of the cluster uncopyable, and every other agent's issue and renewal of those secrets failed
for as long as its session (or its lease) lasted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import ADMIN_PASSWORD
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
from troth.errors import SecretError, SecretFailure
from troth.secrets import Broker


def plain_admin(orders: OrdersDb) -> str:  # noqa: F811 - the fixture's name
    """An admin that is no superuser: CREATEROLE, and the templates' privileges WITH GRANT
    OPTION (what docs/secrets.md asks of one)."""
    admin = f"admin_{orders.reader}"
    _admin_sql(
        orders,
        f"CREATE ROLE {admin} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'",
        f"GRANT pg_signal_backend TO {admin}",
        f"GRANT SELECT ON orders TO {admin} WITH GRANT OPTION",
        f"GRANT INSERT ON orders TO {admin} WITH GRANT OPTION",
    )
    return admin


def drop_leases(orders: OrdersDb, admin: str, broker: Broker) -> None:  # noqa: F811
    """What a CREATEROLE admin cannot revoke on PostgreSQL 15 (DROP OWNED), done as the
    superuser: the admin's grants first (a superuser revokes as the owner)."""
    with orders.server.connect(dbname=orders.dbname) as conn:
        for role in orders.roles(f"tl_{broker.keys.broker_id}_"):
            conn.execute(
                f"SET ROLE {admin}; REVOKE ALL ON orders FROM {role}; RESET ROLE; "
                f"DROP OWNED BY {role}; DROP ROLE {role}"
            )


def test_a_leases_temporary_policy_naming_the_template_stops_no_other_lease(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixtures
    orders: OrdersDb,  # noqa: F811 - the fixtures
) -> None:
    """Agent A's lease names the reader template in a policy on its temporary tables, in the
    secret's database and in `postgres` (which PUBLIC may connect to): agent B is still
    issued and renewed a lease of the same template, and A too."""
    broker = setup(tmp_path, world, orders)
    a = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    b = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    sessions = [login(orders, a.credential.reveal())]
    sessions.append(login(orders, {**a.credential.reveal(), "dbname": "postgres"}))
    for session in sessions:
        session.execute("CREATE TEMP TABLE t (x int)")
        session.execute("ALTER TABLE t ENABLE ROW LEVEL SECURITY")
        session.execute(f"CREATE POLICY p ON t AS RESTRICTIVE TO {orders.reader} USING (false)")
    other = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    assert login(orders, other.credential.reveal()).execute("SELECT id FROM orders").fetchall()
    broker.renew(world.credential_b(), b.lease_id, now=now())
    broker.renew(world.credential_a(), a.lease_id, now=now())
    broker.close()


def test_a_template_named_in_a_lasting_policy_is_still_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixtures
    orders: OrdersDb,  # noqa: F811 - the fixtures
) -> None:
    """The check the fix narrows still holds for a policy a lease did not make: on a table of
    the database's own (a lease would escape the restrictive policy)."""
    _admin_sql(
        orders,
        "ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY p ON orders AS RESTRICTIVE TO {orders.reader} USING (id < 0)",
    )
    broker = setup(tmp_path, world, orders)
    with pytest.raises(SecretError) as caught:
        broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    assert caught.value.reason is SecretFailure.CONFIG_INVALID
    assert "row-level security policy" in caught.value.detail
    broker.close()


def test_a_leases_grant_to_the_template_fails_no_other_issue(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixtures
    orders: OrdersDb,  # noqa: F811 - the fixtures
) -> None:
    """With an admin that is no superuser (CREATEROLE, the template's privileges WITH GRANT
    OPTION: what docs/secrets.md asks for), agent A's lease grants the reader template SELECT
    on its large object and its temporary table: the admin may not grant those on, and agent
    B's issue failed ENGINE_FAILED ("lacks SELECT on large object ...")."""
    admin = plain_admin(orders)
    broker = setup(tmp_path, world, orders, user=admin)
    a = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    session = login(orders, a.credential.reveal())
    (oid,) = session.execute("SELECT lo_create(0)").fetchone()
    session.execute(f"GRANT SELECT ON LARGE OBJECT {oid} TO {orders.reader}")
    session.execute("CREATE TEMP TABLE t (x int)")
    session.execute(f"GRANT SELECT ON t TO {orders.reader}")
    try:
        other = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
        assert login(orders, other.credential.reveal()).execute("SELECT id FROM orders").fetchall()
    finally:
        session.close()
        broker.close()
        drop_leases(orders, admin, broker)


def test_a_leases_grant_to_another_lease_ends_none_of_its_sessions(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixtures
    orders: OrdersDb,  # noqa: F811 - the fixtures
) -> None:
    """Agent A's lease grants agent B's lease role SELECT on its temporary table (role names
    are public): B's renewal took it for a privilege to take away, revoked it and ended B's
    open sessions, at every renewal A did it again."""
    broker = setup(tmp_path, world, orders)
    a = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    b = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    session_a, session_b = (
        login(orders, a.credential.reveal()),
        login(orders, b.credential.reveal()),
    )
    session_a.execute("CREATE TEMP TABLE t (x int)")
    session_a.execute(f"GRANT SELECT ON t TO {b.credential.reveal()['user']}")
    broker.renew(world.credential_b(), b.lease_id, now=now())
    assert session_b.execute("SELECT id FROM orders").fetchall() == [(4471,)]
    broker.close()


def test_another_brokers_lease_fails_no_issue_of_this_one(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixtures
    orders: OrdersDb,  # noqa: F811 - the fixtures
) -> None:
    """Two nodes' brokers lease the same cluster (each its own lease roles' prefix), with an
    admin that is no superuser: a lease of the first grants the reader template SELECT on its
    large object, and the second broker's issue failed (its roles' prefix was the only one
    left out)."""
    admin = plain_admin(orders)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = setup(tmp_path / "one", world, orders, user=admin)
    second = setup(tmp_path / "two", world, orders, user=admin)
    a = first.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    session = login(orders, a.credential.reveal())
    (oid,) = session.execute("SELECT lo_create(0)").fetchone()
    session.execute(f"GRANT SELECT ON LARGE OBJECT {oid} TO {orders.reader}")
    try:
        other = second.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
        assert login(orders, other.credential.reveal()).execute("SELECT id FROM orders").fetchall()
    finally:
        session.close()
        for broker in (first, second):
            broker.close()
            drop_leases(orders, admin, broker)
