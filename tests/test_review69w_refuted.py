"""Review 69w: attacks on the reach of a postgres lease's revocation that did not work
(PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import sql

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

_GIDS = ["x'); DROP TABLE orders; --", "back\\slash'' %s {} $$q$$", 'q"uote\u00e9']


@pytest.mark.parametrize("gid", _GIDS)
def test_a_crafted_gid_neither_breaks_nor_escapes_the_rollback(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    gid: str,
) -> None:
    """A lease prepares its write under a gid made to break out of `ROLLBACK PREPARED '...'`
    (quotes, a backslash, placeholders, dollar quotes): the revocation rolls exactly it back
    (sql.Literal), the role gone, the template's table still there and without the write."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    with login(orders, issued.credential.reveal()) as session:
        session.execute("BEGIN")
        session.execute("INSERT INTO orders VALUES (9998, 1)")
        session.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
    try:
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        assert issued.lease.engine_ref not in orders.lease_roles()
    finally:
        assert not orders.server.end_prepared(orders.dbname, gid)
        broker.close()
    with orders.server.connect(dbname=orders.dbname) as admin:
        assert admin.execute("SELECT count(*) FROM orders").fetchone() == (1,)


def test_another_leases_prepared_lock_on_the_role_is_still_rolled_back(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """wave4b 1's narrowing keeps review 69r leases 5: a lease of another member (a lease role,
    not an application's) locks the victim's role in a prepared transaction under a crafted
    gid: the victim's revocation still rolls it back and ends REVOKED."""
    broker = setup(tmp_path, world, orders)
    victim = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    holder = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    gid = _GIDS[0]
    with login(orders, holder.credential.reveal()) as session:
        session.execute("BEGIN")
        role = sql.Identifier(str(victim.lease.engine_ref))
        session.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {}").format(role)
        )
        session.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
    try:
        revoked = broker.revoke(world.credential_a(), victim.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert victim.lease.engine_ref not in orders.lease_roles()
    finally:
        assert not orders.server.end_prepared(orders.dbname, gid)
        broker.close()


def test_another_leases_prepared_lock_in_another_database_is_rolled_back_there(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """A lease of another member locks the victim's role from a database the secret does not
    list (`postgres`, which PUBLIC may connect to) in a transaction it prepares there: the
    revocation rolls it back in that database (ROLLBACK PREPARED elsewhere fails) and ends
    REVOKED."""
    broker = setup(tmp_path, world, orders)
    victim = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    holder = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    gid = _GIDS[1]
    with login(orders, {**holder.credential.reveal(), "dbname": "postgres"}) as session:
        session.execute("BEGIN")
        role = sql.Identifier(str(victim.lease.engine_ref))
        session.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {}").format(role)
        )
        session.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
    with orders.server.connect() as admin:
        where = "SELECT database FROM pg_prepared_xacts WHERE gid = %s"
        assert admin.execute(where, (gid,)).fetchone() == ("postgres",)
    try:
        revoked = broker.revoke(world.credential_a(), victim.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert victim.lease.engine_ref not in orders.lease_roles()
    finally:
        left = orders.server.end_prepared("postgres", gid)
        broker.close()
    assert not left
