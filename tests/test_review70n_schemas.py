"""Review 70n, postgres schemas: a lease's function standing in for another role's unqualified
call (PostgreSQL tests: TROTH_REQUIRE_PG=1).

schemas 1 (70c leases 4): a template holding CREATE on a schema other roles search (`public`,
in every role's default `search_path`, `"$user", public`) let its lease define
`public.lower(varchar)`, a closer match than `pg_catalog.lower(text)` for a varchar argument:
the cluster's superuser's unqualified `lower('ACME'::varchar)` ran the lease's code with the
superuser's rights (CVE-2018-1058's pattern). Such a template is now refused (CONFIG_INVALID,
at issue and at renewal) for CREATE on any schema no lease role owns.

schemas 2: what a lease may still create goes in a schema of its own, made with its role in
the issue's transaction (`CREATE SCHEMA <role> AUTHORIZATION <role>`): `"$user"` puts its
unqualified `CREATE TABLE` there and no other role searches it (a schema's name is its
owner's, and a role's name is unique); `DROP OWNED` drops it at the revocation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.test_review56b_postgres import drop_leases, plain_admin
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

_LOWER = (  # a closer match than pg_catalog.lower(text) for a varchar, recording its caller
    "CREATE FUNCTION {schema}lower(varchar) RETURNS text LANGUAGE plpgsql AS "
    "$$BEGIN INSERT INTO {schema}callers VALUES (current_user); "
    "RETURN pg_catalog.lower($1::text); END$$"
)


def _schemas(orders: OrdersDb, role: str) -> list[tuple[str, str]]:  # noqa: F811
    with orders.server.connect(dbname=orders.dbname) as admin:
        rows: list[tuple[str, str]] = admin.execute(
            "SELECT nspname::text, nspowner::regrole::text FROM pg_namespace WHERE nspname = %s",
            (role,),
        ).fetchall()
    return rows


def test_a_template_that_may_create_in_public_is_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """70n schemas 1: the writer template holds CREATE on `public`, where every role's default
    search path looks: its lease could define `public.lower(varchar)` and have the
    superuser's unqualified `lower()` run it. The issue is refused (CONFIG_INVALID, naming
    the template and the privilege) before any role exists; a renewal of a lease issued
    before the grant is refused alike."""
    broker = setup(tmp_path, world, orders)
    try:
        agent = world.credential_a()
        earlier = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        _admin_sql(orders, f"GRANT CREATE ON SCHEMA public TO {orders.writer}")
        with pytest.raises(SecretError) as caught:
            broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        assert caught.value.reason is SecretFailure.CONFIG_INVALID
        assert f"template {orders.writer} cannot be copied" in caught.value.detail
        assert "CREATE on schema public" in caught.value.detail
        assert orders.lease_roles() == {earlier.lease.engine_ref}
        with pytest.raises(SecretError) as renewal:
            broker.renew(agent, earlier.lease_id, ttl=300, now=now())
        assert renewal.value.reason is SecretFailure.CONFIG_INVALID
        broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    finally:
        broker.close()


def test_a_leases_function_in_its_own_schema_does_not_run_in_another_session(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """70n schemas 2: the lease makes, unqualified, a table and `lower(varchar)` (recording who
    called it; PUBLIC may write the table and use the schema): they land in the lease's own
    schema, owned by its role; the cluster's superuser's `lower()` on a varchar does not run
    it, the lease's own does. Revoked, the schema is gone with the role."""
    broker = setup(tmp_path, world, orders)
    try:
        agent = world.credential_a()
        issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            session.execute(
                "CREATE TABLE callers (who text); GRANT INSERT, SELECT ON callers TO PUBLIC; "
                f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC; ' + _LOWER.format(schema="")
            )
            where = session.execute(
                "SELECT relnamespace::regnamespace::text FROM pg_class "
                "WHERE oid = 'callers'::regclass"
            ).fetchone()
            assert where == (role,)
        assert _schemas(orders, role) == [(role, role)]
        with orders.server.connect(dbname=orders.dbname) as app:
            assert app.execute("SELECT lower('ACME'::varchar)").fetchone() == ("acme",)
            callers = app.execute(f'SELECT who FROM "{role}".callers').fetchall()  # noqa: S608
        assert callers == []
        with login(orders, issued.credential.reveal()) as session:
            session.execute("SELECT lower('ACME'::varchar)")
            assert session.execute("SELECT who FROM callers").fetchall() == [(role,)]
        broker.revoke(agent, issued.lease_id, now=now())
        assert role not in orders.lease_roles()
        assert _schemas(orders, role) == []
    finally:
        broker.close()


def test_an_admin_that_is_no_superuser_makes_the_schema_and_keeps_no_membership(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """70n schemas 2, with a CREATEROLE admin (no superuser): given CREATE on the database it
    makes the lease's schema (a member of the role for that statement only: PostgreSQL 15 asks
    it of `CREATE SCHEMA ... AUTHORIZATION`) and is a member of no lease role after; without
    CREATE on the database it makes none, and the lease creates nothing."""
    import psycopg

    admin = plain_admin(orders)
    broker = setup(tmp_path, world, orders, user=admin)
    try:
        bare = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        assert _schemas(orders, str(bare.lease.engine_ref)) == []
        denied = pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema public")
        with login(orders, bare.credential.reveal()) as session, denied:
            session.execute("CREATE TABLE scratch (x int)")
        _admin_sql(orders, f"GRANT CREATE ON DATABASE {orders.dbname} TO {admin}")
        issued = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        assert _schemas(orders, role) == [(role, role)]
        with login(orders, issued.credential.reveal()) as session:
            session.execute("CREATE TABLE scratch (x int)")
        with orders.server.connect(dbname=orders.dbname) as conn:
            member = conn.execute(
                "SELECT count(*) FROM pg_auth_members WHERE member = %s::regrole", (admin,)
            ).fetchone()
        assert member == (1,)  # pg_signal_backend alone
    finally:
        broker.close()
        drop_leases(orders, admin, broker)


@pytest.mark.parametrize("grant", ["SCHEMA public", "DATABASE {dbname}"])
def test_a_database_where_public_may_create_is_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    grant: str,
) -> None:
    """70n schemas 3: PUBLIC may create in `public` (PostgreSQL 14's default, kept by an
    upgraded cluster) or in the database: no template's grant, so every lease's role could
    define `public.lower(varchar)`, or a schema named after another role, and have that
    role's sessions run its code. Issues of every template are refused (CONFIG_INVALID,
    naming what PUBLIC holds) before any role exists."""
    _admin_sql(orders, f"GRANT CREATE ON {grant.format(dbname=orders.dbname)} TO PUBLIC")
    broker = setup(tmp_path, world, orders)
    try:
        with pytest.raises(SecretError) as caught:
            broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        assert caught.value.reason is SecretFailure.CONFIG_INVALID
        assert "PUBLIC may create in" in caught.value.detail
        assert orders.lease_roles() == set()
    finally:
        broker.close()


def test_a_live_leases_lock_on_a_leases_schema_cannot_keep_its_revocation_failing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70n schemas 4: the first lease lets PUBLIC create in its own schema; the second makes a
    table there in a transaction it keeps open, which holds a lock on the schema itself (not
    on a relation): `DROP OWNED` of the first lease's role waited for it, failed its lock
    timeout at every retry, the lease REVOKING for as long as the second liked. The holder,
    a lease's session, is ended like one holding a lock on the lease's relations (review
    44b, postgres 1); the revocation ends REVOKED, its role and schema gone."""
    import psycopg

    from troth import limits
    from troth.secrets import LeaseState

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # the step it blocks fails fast
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    role = str(first.lease.engine_ref)
    with login(orders, first.credential.reveal()) as session:
        session.execute(f'GRANT USAGE, CREATE ON SCHEMA "{role}" TO PUBLIC')
    holder = login(orders, second.credential.reveal())
    try:
        holder.execute("BEGIN")
        holder.execute(f'CREATE TABLE "{role}".held (x int)')
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        assert _schemas(orders, role) == []
        with pytest.raises(psycopg.OperationalError):  # the lock holder's session ended
            holder.execute("SELECT 1")
    finally:
        holder.close()
        broker.sweep(now() + 3600)
        broker.close()
