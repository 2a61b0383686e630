"""Review 70c, postgres leases: rights that let a lease plant code in other parties' sessions
(PostgreSQL tests: TROTH_REQUIRE_PG=1).

leases 1: a template holding TRIGGER on a table it does not own (as `GRANT ALL` gives) gave the
lease's role TRIGGER there: the lease put its own trigger on the application's table, and its
function (SECURITY INVOKER, the default) ran in every session that wrote to the table, with
that session's rights — the application's, an administrator's, a superuser's — for as long as
the lease lived (and in the transaction of each: it could fail every write). Review 69w
(wave4b 2) met the same trigger from the other side: `DROP OWNED` alters that table, so the
lease's revocation ended every other lease's session on it. Such a template is now refused at
issue (CONFIG_INVALID, before the role exists) and at renewal.

leases 2: REFERENCES on a table it does not own let the lease's table reference it: its
foreign key puts triggers on the application's table that refuse the application's own
DELETE of a row the lease's table references (the application's writes fail for as long as
the lease lives), and with ON DELETE CASCADE the application's DELETE fires the lease's own
triggers on its table inside the application's transaction. Refused alike.

leases 3: CREATE on a database let the lease make a schema named after another role: that
role's sessions search `"$user"` first (PostgreSQL's default search path), so the lease's
objects there stood in for the application's (its table read in place of `orders`, its
functions called with the application's rights). Refused alike.

leases 5: ALTER SYSTEM on a parameter (PostgreSQL 15's `GRANT ALTER SYSTEM ON PARAMETER`) let
the lease write a setting to postgresql.auto.conf that outlived it, for the whole cluster (an
`archive_command` is a shell command run by the server). Refused alike.

leases 4: CREATE on a schema other roles search (`public`) let a lease define a closer match
for a function another session calls unqualified: closed by review 70n
(tests/test_review70n_schemas.py).
"""

from __future__ import annotations

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
from troth.errors import SecretError, SecretFailure


def _refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    why: str,
) -> None:
    """The writer template's lease is refused (CONFIG_INVALID naming `why`), no role made; the
    reader's is issued."""
    broker = setup(tmp_path, world, orders)
    try:
        with pytest.raises(SecretError) as caught:
            broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        assert caught.value.reason is SecretFailure.CONFIG_INVALID
        assert f"template {orders.writer} cannot be copied" in caught.value.detail
        assert why in caught.value.detail
        assert orders.lease_roles() == set()
        broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    finally:
        broker.close()


@pytest.mark.parametrize("grant", ["TRIGGER ON orders", "ALL ON orders"])
def test_a_template_with_trigger_on_a_table_it_does_not_own_is_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    grant: str,
) -> None:
    """70c leases 1: the writer template holds TRIGGER on `orders` (alone, or by `GRANT ALL`);
    a lease of it could put its trigger on `orders`, its code run with the rights of every
    session writing there: the issue is refused before any role exists."""
    _admin_sql(orders, f"GRANT {grant} TO {orders.writer}")
    _refused(tmp_path, world, orders, "TRIGGER on table public.orders")


def test_a_renewal_refuses_a_template_given_trigger_since_the_issue(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """70c leases 1: TRIGGER reaches the writer template after a lease's issue; the renewal
    is refused (CONFIG_INVALID) and the lease's role holds no TRIGGER."""
    broker = setup(tmp_path, world, orders)
    try:
        agent = world.credential_a()
        issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        _admin_sql(orders, f"GRANT TRIGGER ON orders TO {orders.writer}")
        with pytest.raises(SecretError) as caught:
            broker.renew(agent, issued.lease_id, ttl=300, now=now())
        assert caught.value.reason is SecretFailure.CONFIG_INVALID
        with orders.server.connect(dbname=orders.dbname) as admin:
            trigger = admin.execute(
                "SELECT has_table_privilege(%s, 'orders', 'TRIGGER')",
                (issued.lease.engine_ref,),
            ).fetchone()
        assert trigger == (False,)
    finally:
        broker.close()


def test_a_template_with_references_on_a_table_it_does_not_own_is_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """70c leases 2: REFERENCES on `orders`, on the table or on one column: a lease's foreign
    key would refuse the application's DELETEs and fire the lease's triggers in its
    transactions: refused."""
    _admin_sql(
        orders,
        "ALTER TABLE orders ADD PRIMARY KEY (id)",
        f"GRANT REFERENCES (id) ON orders TO {orders.writer}",
    )
    _refused(tmp_path, world, orders, "REFERENCES on column public.orders.id")


def test_a_template_with_create_on_a_database_is_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """70c leases 3: CREATE on the database: a lease could make a schema named after another
    role, searched first by that role's sessions: refused."""
    _admin_sql(orders, f"GRANT CREATE ON DATABASE {orders.dbname} TO {orders.writer}")
    _refused(tmp_path, world, orders, f"CREATE on database {orders.dbname}")


def test_a_template_with_alter_system_on_a_parameter_is_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """70c leases 5: ALTER SYSTEM on a parameter: a lease's `ALTER SYSTEM SET` is written to
    postgresql.auto.conf, outlives its revocation (measured) and applies to every session of
    the cluster at the next reload: refused."""
    grant = f"ALTER SYSTEM ON PARAMETER log_min_duration_statement TO {orders.writer}"
    _admin_sql(orders, "GRANT " + grant)
    try:
        _refused(tmp_path, world, orders, "ALTER SYSTEM on parameter log_min_duration_statement")
    finally:
        _admin_sql(orders, "REVOKE " + grant.replace(" TO ", " FROM "))
