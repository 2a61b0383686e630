"""Review 54f, attacks on the postgres engine and the brokers sharing a node's database that
failed (the code was right), against a real PostgreSQL server: names with quotes, dots and
spaces in what a template holds; admin passwords with quotes, backslashes, non-ASCII and 10,000
characters (NUL, invalid UTF-8 and empty ones refused, as for every secret); the admin
connection killed in the middle of an issue; a renewal racing another broker's revocation; the
quota under two brokers issuing at once; a template's table locked by a long transaction."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

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
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, IssuedLease, LeaseState
from troth.secrets.engines import postgres_grants

F = SecretFailure
ODD = '"s p""a.x"'  # a schema named  s p"a.x


def test_odd_object_names_are_copied_and_revoked(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """A template holding privileges on a schema, table, column, function (its argument a type
    of that schema), sequence and a custom parameter whose names have quotes, dots and spaces:
    the lease gets each (sql.Identifier quotes them), and its revocation leaves no role."""
    tag, r = uuid.uuid4().hex[:8], orders.reader
    table, fn = f'{ODD}."o""r.d\'ers"', f'{ODD}."f""n"({ODD}."T y""p", int[])'
    with orders.server.connect(dbname=orders.dbname) as conn:
        conn.execute(f"CREATE SCHEMA {ODD}")
        conn.execute(
            f'CREATE TABLE {table} ("c""ol" int, other int); INSERT INTO {table} VALUES (1, 2)'  # noqa: S608 - the test's own names
        )
        conn.execute(f'CREATE TYPE {ODD}."T y""p" AS (a int)')
        conn.execute(
            f'CREATE FUNCTION {ODD}."f""n"(x {ODD}."T y""p", y int[]) RETURNS int '
            "LANGUAGE sql AS $$ SELECT 7 $$"
        )
        conn.execute(f"REVOKE EXECUTE ON FUNCTION {fn} FROM PUBLIC")
        conn.execute(f'CREATE SEQUENCE {ODD}."se q"')
        conn.execute(f"GRANT USAGE ON SCHEMA {ODD} TO {r}")
        conn.execute(f'GRANT SELECT ("c""ol") ON {table} TO {r}')
        conn.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {r}")
        conn.execute(f'GRANT USAGE ON SEQUENCE {ODD}."se q" TO {r}')
        conn.execute(f'GRANT SET ON PARAMETER "troth{tag}.a.b" TO {r}')
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    with login(orders, issued.credential.reveal()) as session:
        assert session.execute(f'SELECT "c""ol" FROM {table}').fetchall() == [(1,)]  # noqa: S608
        assert session.execute(f'SELECT {ODD}."f""n"(NULL, NULL)').fetchall() == [(7,)]
        assert session.execute(f"SELECT nextval('{ODD}.\"se q\"')").fetchall() == [(1,)]
        session.execute(f"SET troth{tag}.a.b = 'x'")
    assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
    assert orders.lease_roles() == set()
    broker.close()


@pytest.mark.parametrize(
    "password", ["a' b\\c =d\"e", " lead and trail ", "ünï€ode ☃", "x" * 10_000, "%s{}$1"]
)
def test_admin_passwords_with_quotes_and_length_reach_the_server(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    password: str,
) -> None:
    """The admin password is a libpq parameter, never spliced into a connection string: quotes,
    backslashes, spaces, non-ASCII and 10,000 characters all log in. NUL (libpq cannot carry
    it), invalid UTF-8 and an empty password are refused when stored, CONFIG_INVALID."""
    from psycopg import sql

    admin = f"adm_{uuid.uuid4().hex[:8]}"
    with orders.server.connect() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} SUPERUSER LOGIN PASSWORD {}").format(
                sql.Identifier(admin), sql.Literal(password)
            )
        )
    broker = setup(tmp_path, world, orders)
    config = orders.config(user=admin)
    broker.put_secret(SECRET, "postgres", config, password.encode(), now=now())
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    with login(orders, issued.credential.reveal()) as session:
        assert session.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
    for bad in (password.encode() + b"\x00x", b"\xff\xfe", b""):
        with pytest.raises(SecretError) as caught:
            broker.put_secret(SECRET, "postgres", config, bad, now=now())
        assert caught.value.reason is SecretFailure.CONFIG_INVALID
    broker.close()


def test_the_admin_connection_killed_mid_issue_leaves_no_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The admin's session is terminated after CREATE ROLE, at the first GRANT: the issue fails
    ENGINE_FAILED (typed), the lease is aborted and its role dropped over a new connection,
    and the next issue succeeds."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    real, killed = postgres_grants.apply, list[str]()

    def apply(conn: Any, verb: str, lease: str, changes: Any) -> None:
        if verb == "GRANT" and not killed:
            killed.append(lease)
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        real(conn, verb, lease, changes)

    monkeypatch.setattr(postgres_grants, "apply", apply)
    with pytest.raises(SecretError) as caught:
        broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    assert caught.value.reason is SecretFailure.ENGINE_FAILED
    assert killed
    assert orders.lease_roles() == set()
    (aborted,) = broker.leases(agent, include_ended=True)
    assert aborted.state is LeaseState.REVOKED
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    assert orders.lease_roles() == {issued.lease.engine_ref}
    broker.revoke(agent, issued.lease_id, now=now())
    broker.close()


def test_a_renewal_racing_another_brokers_revocation_is_refused(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon renews a lease while another broker on the node's database (a CLI command)
    revokes it, in the middle of the renewal's round trips to the server: the renewal is
    refused and the role is gone (nothing the renewal granted outlives the revocation)."""
    from troth.secrets.engines.postgres import PostgresEngine

    daemon = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = daemon.issue(agent, SECRET, scope=["orders:read"], now=now())
    db, other = open_broker(tmp_path / "node.db", now=now())
    real = PostgresEngine._reconcile

    def reconcile(self: PostgresEngine, *args: Any) -> None:
        other.revoke_lease(issued.lease.handle, now=now())
        real(self, *args)

    monkeypatch.setattr(PostgresEngine, "_reconcile", reconcile)
    with pytest.raises(SecretError) as caught:
        daemon.renew(agent, issued.lease_id, ttl=300, now=now())
    assert caught.value.reason in (SecretFailure.REVOKED, SecretFailure.ENGINE_FAILED)
    monkeypatch.setattr(PostgresEngine, "_reconcile", real)
    daemon.sweep(now())
    lease = daemon.book.lease(issued.lease.handle)
    assert lease is not None
    assert lease.state is LeaseState.REVOKED
    assert lease.expires_at == issued.lease.expires_at
    assert orders.lease_roles() == set()
    other.close()
    db.close()
    daemon.close()


def test_two_brokers_issuing_at_once_keep_the_quota(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Two brokers on one node database (quota 2 per account), three threads each issuing at
    once for the same agent: the quota's count and the lease's write are one BEGIN IMMEDIATE
    transaction, so exactly two leases are issued and two roles exist."""
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    path = tmp_path / "node.db"
    opened = [open_broker(path, now=now(), policy=policy, quota=2) for _ in range(2)]
    opened[0][1].put_secret(
        SECRET, "postgres", orders.config(), orders.server.password.encode(), now=now()
    )
    agent = world.credential_a()
    start, results = threading.Barrier(6), list[IssuedLease | SecretFailure]()

    def issue(index: int) -> None:
        broker = opened[index % 2][1]
        start.wait()
        try:
            results.append(broker.issue(agent, SECRET, scope=["orders:read"], now=now()))
        except SecretError as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    issued = [r for r in results if not isinstance(r, SecretFailure)]
    assert len(issued) == 2, results
    assert [r for r in results if isinstance(r, SecretFailure)] == [F.QUOTA_EXCEEDED] * 4
    assert orders.lease_roles() == {i.lease.engine_ref for i in issued}
    for lease in issued:
        opened[0][1].revoke(agent, lease.lease_id, now=now())
    for db, broker in opened:
        broker.close()
        db.close()


def test_a_template_table_locked_by_a_long_transaction_holds_no_issue_or_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """An operator's transaction holds ACCESS EXCLUSIVE on the template's table (a slow
    migration): a lease is issued and revoked all the same (GRANT, REVOKE and DROP OWNED of a
    role that only holds privileges on it take no lock on the table; had they waited, the
    lock timeout would have failed them ENGINE_FAILED)."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    holder = orders.server.connect(dbname=orders.dbname, autocommit=False)
    try:
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
        assert orders.lease_roles() == {issued.lease.engine_ref}
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        assert orders.lease_roles() == set()
    finally:
        holder.rollback()
        holder.close()
    broker.close()
