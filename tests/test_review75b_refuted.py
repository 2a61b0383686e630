"""Review 75b, refuted: attacks on the fixed `revoke_members` (every role that may act as the
revoked lease has its sessions ended) that did not work (PostgreSQL tests: TROTH_REQUIRE_PG=1).

Refuted 1: having the revocation end an application's session, or roll back its prepared
transaction, that is no member of the lease's role (its writes on the table the lease writes
too): both survive, the lease REVOKED.

Refuted 2: granting the lease's role to the superuser (PostgreSQL 14 and older let the lease's
own session), to have its revocation end an administrator's session (or, for an admin that is
no superuser, fail at every retry at ending one it may not signal): a superuser's sessions are
never ended (it may set its role to any role, a member or not), the lease REVOKED.

Refuted 3: the admin's own membership in the lease's role (`roll_back_prepared`'s, for one
statement, when another revocation of the same lease runs meanwhile), and a member of the
admin: `revoke_members` revokes the admin's membership but names neither, so the revoking
connection is never ended, nor an administrator's session through the admin's role.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _REVOKED, _SECOND, _roles
from tests.test_review75b_pglast import app, grant_chain, scene
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from troth.secrets import LeaseState
from troth.secrets.engines import postgres_locks as locks


def test_an_unrelated_application_keeps_its_session_and_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Refuted 1: an application role that is no member of the lease's role, one session
    writing `orders` in an open transaction, one transaction prepared: the revocation leaves
    both (the session commits), the lease REVOKED."""
    with scene(tmp_path, world, orders, 1, app()) as made:
        name, application = made.apps[0], made.credential(made.apps[0])
        with orders.server.connect(dbname=orders.dbname) as su:
            su.execute(f'GRANT INSERT ON orders TO "{name}"')
        with login(orders, application) as prepared, login(orders, application) as open_:
            prepared.execute("BEGIN")
            prepared.execute("INSERT INTO orders VALUES (9994, 1)")
            prepared.execute(f"PREPARE TRANSACTION '{made.gid}'")
            open_.execute("BEGIN")
            open_.execute("INSERT INTO orders VALUES (9995, 1)")
            lease = made.leases[0]
            assert made.broker.revoke(made.agent, lease.lease_id, now=now()).state is (
                LeaseState.REVOKED
            )
            open_.execute("COMMIT")
        assert orders.server.end_prepared(orders.dbname, made.gid, "COMMIT")
        with orders.server.connect(dbname=orders.dbname) as su:
            landed = su.execute("SELECT count(*) FROM orders WHERE id IN (9994, 9995)")
            assert landed.fetchone() == (2,)
            su.execute(f'REVOKE ALL ON orders FROM "{name}"')


def test_a_superuser_member_keeps_its_sessions(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Refuted 2: the lease's role granted to the superuser (the broker's admin here), one of
    whose sessions is open: the revocation ends none of them, the lease REVOKED."""
    scened = scene(tmp_path, world, orders, 1)
    with scened as made, orders.server.connect(dbname=orders.dbname) as session:
        grant_chain(orders, [made.user(0), orders.server.user])
        lease = made.leases[0]
        assert made.broker.revoke(made.agent, lease.lease_id, now=now()).state is (
            LeaseState.REVOKED
        )
        assert session.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("user", [_ADMIN, "superuser"])
def test_the_admins_own_membership_is_revoked_and_its_sessions_kept(
    pg_server: PgServer, user: str
) -> None:
    """Refuted 3: `_REVOKED` granted to the admin (no superuser, or the superuser), a lease
    (`_FIRST`) a member of the admin, `_SECOND` a member of `_REVOKED`: `revoke_members`, as
    that admin, names `_SECOND` only and leaves no membership in `_REVOKED`."""
    admin = pg_server.user if user == "superuser" else _ADMIN
    with _roles(pg_server) as su:
        su.execute(
            f"GRANT {_REVOKED} TO {admin}; GRANT {_REVOKED} TO {_SECOND}; GRANT {admin} TO {_FIRST}"
        )
        try:
            with pg_server.connect(user=admin) as conn:
                ended: list[str] = []
                locks.revoke_members(conn, _REVOKED, ended.append)
                assert set(ended) == {_SECOND}
                assert conn.execute("SELECT 1").fetchone() == (1,)
            members = su.execute(
                "SELECT count(*) FROM pg_auth_members WHERE roleid = %s::regrole", (_REVOKED,)
            )
            assert members.fetchone() == (0,)
        finally:
            su.execute(f"REVOKE {admin} FROM {_FIRST}")
