"""Review 54f against a real PostgreSQL server (the postgres engine's admin sessions).

Postgres 1: the engine keeps its admin connections open between calls, and one the server
closed while it sat idle (a restart, a failover, `pg_terminate_backend`, the server's
`idle_session_timeout`) was used as it was: the next call failed `ENGINE_FAILED`
("terminating connection due to administrator command"). An agent's issue failed, and its
revocation of a lease it wanted gone left the lease REVOKING with its role still able to log in
until the sweep's retry (`revoke_backoff`), one stale connection per database each costing a
failed attempt. A connection with anything to read while idle is now dropped and opened anew
before use.

Postgres 2: the kept admin connections were keyed by the admin password's hash and closed only
when the broker closed: each rotation of the admin password (`put_secret` with the new one)
left a session of the old one open for good, one per database (a broker rotating it daily took
the server's `max_connections` within weeks), and a removed secret's sessions stayed open on
its databases, so the operator's `DROP DATABASE` failed ("being accessed by other users") until
the broker stopped. A new connection now replaces the kept ones to the same database and admin,
and storing or removing a secret closes the engine's kept connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld, open_broker
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


def end_admin_sessions(orders: OrdersDb) -> int:  # noqa: F811 - the fixture's name
    """Terminate every session of the engine's admin but this one (as a restart would)."""
    with orders.server.connect() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE usename = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            (orders.server.user,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def test_an_admin_session_the_server_ended_while_idle_is_opened_again(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The admin's pooled sessions are ended between calls: the next issue succeeds, and the
    next revocation ends the lease (its role gone, its password refused) at once."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    assert end_admin_sessions(orders) >= 1
    second = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    assert second.lease.state is LeaseState.ACTIVE
    assert end_admin_sessions(orders) >= 1
    revoked = broker.revoke(agent, first.lease_id, now=now())
    assert revoked.state is LeaseState.REVOKED
    assert first.lease.engine_ref not in orders.lease_roles()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(orders, first.credential.reveal())
    broker.revoke(agent, second.lease_id, now=now())
    broker.close()


def admin_sessions(orders: OrdersDb, user: str) -> int:  # noqa: F811 - the fixture's name
    with orders.server.connect() as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (user,)
        ).fetchone()
    return int(count)


def test_rotating_the_admin_password_leaves_no_session_of_the_old_one(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Four rotations of the admin password, each stored by another broker on the node's
    database, a lease issued and revoked by the serving one after each: one admin session is
    left open (the database's), not one per password."""
    import uuid

    from psycopg import sql

    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    admin = f"adm_{uuid.uuid4().hex[:8]}"
    with orders.server.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} SUPERUSER LOGIN").format(sql.Identifier(admin)))
    for round_ in range(4):
        password = f"rotated-{round_}-{uuid.uuid4().hex}"
        with orders.server.connect() as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(admin), sql.Literal(password)
                )
            )
        # stored by another process's broker (`troth secret put`): the serving one is not told
        db, operator = open_broker(tmp_path / "node.db", now=now())
        operator.put_secret(
            SECRET, "postgres", orders.config(user=admin), password.encode(), now=now()
        )
        operator.close()
        db.close()
        issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
    assert admin_sessions(orders, admin) == 1
    broker.close()


def test_a_removed_secrets_database_can_be_dropped(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The secret is removed (its leases revoked): the broker, still running, holds no session
    on its database, which the operator drops."""
    from psycopg import sql

    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    assert broker.remove_secret(SECRET, now=now()) == 1
    assert orders.lease_roles() == set()
    with orders.server.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(orders.dbname)))
    broker.close()


def test_a_revocation_another_broker_finished_meanwhile_succeeds(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two brokers on the node's database (the daemon's, a CLI command's) revoke the same
    lease: the operator's removal of the secret ends its sessions first, and the daemon's
    revocation (the agent's) runs to its end right then. The removal still succeeds (the role
    is gone: what a revocation promises)."""
    from troth.secrets.engines import postgres as postgres_engine

    daemon = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = daemon.issue(agent, SECRET, scope=["orders:read"], now=now())
    session = login(orders, issued.credential.reveal())
    db, operator = open_broker(tmp_path / "node.db", now=now())
    real = postgres_engine._end_sessions
    raced: list[object] = []

    def end_sessions(conn: object, role: str, wait_ms: int, *, strict: bool = True) -> None:
        real(conn, role, wait_ms, strict=strict)
        if not raced:  # the operator's first step: the daemon's revocation runs to its end
            raced.append(None)
            raced[0] = daemon.revoke(agent, issued.lease_id, now=now()).state

    monkeypatch.setattr(postgres_engine, "_end_sessions", end_sessions)
    assert operator.remove_secret(SECRET, now=now()) == 1
    assert raced == [LeaseState.REVOKED]
    assert orders.lease_roles() == set()
    assert operator.store.get_config(SECRET) is None
    lease = operator.book.lease(issued.lease.handle)
    assert lease is not None
    assert lease.state is LeaseState.REVOKED
    session.close()
    operator.close()
    db.close()
    daemon.close()
