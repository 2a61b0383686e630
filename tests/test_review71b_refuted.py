"""Review 71b, pglease: attacks of a lease's holder on the postgres engine that did not work
(PostgreSQL tests: TROTH_REQUIRE_PG=1; PostgreSQL 15 here).

- Granting its own role to a template or to another lease (older PostgreSQL releases let a
  role administer itself from its own session; a template made a member of a lease's role
  would be refused for it, owning its schema): refused here (15.18), "must have admin
  option"; so is
  changing its own VALID UNTIL, CONNECTION LIMIT or attributes, and making a publication, a
  subscription or an event trigger.
- State that could outlive the session: LISTEN, a cursor WITH HOLD, a session advisory lock,
  a prepared transaction holding an advisory lock, its own `ALTER ROLE ... SET`: all gone
  with the revocation (the prepared transaction rolled back, the setting with the role).
- A function of its own schema standing in for one the revocation calls (`lo_unlink`,
  `starts_with`): the admin's sessions search `pg_catalog` only, so it is never called.
- 70z's open GRANT made in a savepoint it keeps: `xmax` holds the subtransaction's id, whose
  lock the session holds too; found, ended (the updaters CTE on PostgreSQL 15; a released
  savepoint is pglease 5, closed by review 72q).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import assert_revoked_past_holder
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.secrets import LeaseState

_REFUSED = (
    'GRANT "{role}" TO {template}',
    'GRANT "{role}" TO "{other}"',
    "ALTER ROLE CURRENT_USER VALID UNTIL 'infinity'",
    "ALTER ROLE CURRENT_USER CONNECTION LIMIT -1",
    "ALTER ROLE CURRENT_USER CREATEDB",
    "CREATE PUBLICATION p71b FOR ALL TABLES",
    "CREATE SUBSCRIPTION s71b CONNECTION 'dbname=postgres' PUBLICATION p71b",
    "CREATE EVENT TRIGGER e71b ON ddl_command_start EXECUTE FUNCTION pg_catalog.now()",
)


def test_a_lease_may_not_grant_itself_nor_change_its_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71b refuted: each statement of `_REFUSED` fails in the lease's session."""
    broker = setup(tmp_path, world, orders)
    try:
        issued, second = (
            broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
            for _ in "12"
        )
        names = {
            "role": issued.lease.engine_ref,
            "other": second.lease.engine_ref,
            "template": orders.writer,
        }
        with login(orders, issued.credential.reveal()) as session:
            for statement in _REFUSED:
                with pytest.raises(
                    (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported)
                ):
                    session.execute(statement.format(**names))
    finally:
        broker.close()


def test_what_a_session_holds_and_its_functions_do_not_outlive_the_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71b refuted: LISTEN, a cursor WITH HOLD, session and prepared advisory locks, its own
    role setting, and `lo_unlink`/`starts_with` of its own schema that raise if called: the
    revocation ends REVOKED, nothing of them left."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    try:
        issued = broker.issue(agent, SECRET, now=now())
        role = str(issued.lease.engine_ref)
        with orders.server.connect() as admin:
            (oid,) = admin.execute(
                "SELECT oid FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
        session = login(orders, issued.credential.reveal())
        for name, args in (("lo_unlink", "oid"), ("starts_with", "name, text")):
            session.execute(
                f'CREATE FUNCTION "{role}".{name}({args}) RETURNS int LANGUAGE plpgsql '
                "AS $$BEGIN RAISE EXCEPTION 'called'; END$$"
            )
        session.execute("SELECT lo_create(0)")
        session.execute("ALTER ROLE CURRENT_USER SET work_mem = '1MB'")
        session.execute("LISTEN review71b; SELECT pg_advisory_lock(7171)")
        session.execute("BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT * FROM orders; COMMIT")
        with login(orders, issued.credential.reveal()) as other:
            other.execute("BEGIN")
            other.execute("SELECT pg_advisory_xact_lock(7172)")
            other.execute("PREPARE TRANSACTION 'review71b_refuted'")
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        with orders.server.connect(dbname=orders.dbname) as admin:
            left = admin.execute(
                "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'), "
                "(SELECT count(*) FROM pg_prepared_xacts), "
                "(SELECT count(*) FROM pg_db_role_setting WHERE setrole = %s)",
                (oid,),
            ).fetchone()
        assert left == (0, 0, 0)
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    finally:
        orders.server.end_prepared(orders.dbname, "review71b_refuted")
        broker.close()


def test_a_grant_to_the_lease_in_a_savepoint_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71b refuted: 70z's attack (another lease's open GRANT widening one to the lease) made
    in a savepoint it keeps: the ACL row's `xmax` is the subtransaction's id, whose lock its
    session holds too (pg_locks), so it is found and ended on PostgreSQL 15 (a released
    savepoint: pglease 5, closed by review 72q)."""
    grant_in_savepoint(tmp_path, world, orders, monkeypatch, release=False)


def grant_in_savepoint(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    *,
    release: bool,
    lock_ms: int = 300,
) -> None:
    """70z's attack in a savepoint (`release`d or not): the lease ends REVOKED past it (the
    revocation's statements waiting `lock_ms` at most for a lock)."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", lock_ms)

    def held(holder: psycopg.Connection[Any], role: str, other: str, first: Any) -> list[str]:
        holder.execute(f'CREATE TABLE "{other}".t (x int)')
        holder.execute(f'GRANT SELECT ON "{other}".t TO "{role}"')
        opened = ["SAVEPOINT s", f'GRANT INSERT ON "{other}".t TO "{role}"']
        return [*opened, "RELEASE SAVEPOINT s"] if release else opened

    revoked_past_second(tmp_path, world, orders, scope="orders:write", held=held)


Held = Callable[["psycopg.Connection[Any]", str, str, Any], list[str]]
"""What the second lease's session does before the first's revocation (its connection, the
first's role, its own role, the first's issued lease): the statements it then holds open."""


def revoked_past_second(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    *,
    scope: str,
    held: Held,
    prepare_as: str | None = None,
) -> None:
    """Two leases of one agent (`scope`); the second's session runs `held` and holds its
    statements open (prepared as `prepare_as`): the first's revocation ends REVOKED past it
    (`assert_revoked_past_holder`); the session closed, the prepared transaction ended, the
    second lease swept after."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=[scope], now=now()) for _ in "12")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    holder = login(orders, second.credential.reveal())
    try:
        statements = held(holder, role, other, first)
        assert_revoked_past_holder(
            broker,
            agent,
            first.lease_id,
            orders,
            holder,
            statements,
            at=now(),
            prepare_as=prepare_as,
        )
    finally:
        holder.close()
        if prepare_as is not None:
            orders.server.end_prepared(orders.dbname, prepare_as)
        broker.sweep(now() + 3600)
        broker.close()
