"""Review 74r, pgwatch7: attacks on review 74n's fixes to the PostgreSQL revocation that did
not work (PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _REVOKED, _lease, _roles
from tests.test_review74b_pgwatch4 import _GID, _Before
from tests.test_review74n_pgwatch6 import _MEMBER, _busy
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
from troth.secrets.engines import postgres_locks as locks

_STATE = (
    "SELECT rolcanlogin, has_table_privilege(rolname, 'orders', 'INSERT')"
    " FROM pg_roles WHERE rolname = %s"
)


def test_a_transaction_prepared_after_the_read_before_nologin_is_rolled_back_at_the_retry(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """74r refuted 1 (74n pgwatch6 3's DROP condition): the lease logs in again after
    `_shut_out` read its prepared transactions and prepares one (writes to `orders`) before
    NOLOGIN. Tried: the revocation reported REVOKED with it left (owned by no role), or kept
    failing with the role still able to log in or write. Refuted: the revocation fails
    (REVOKING), the role NOLOGIN and without its privileges meanwhile; the retry rolls it
    back and drops the role."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    credential = issued.credential.reveal()
    role, gid = str(credential["user"]), f"late_{uuid.uuid4().hex[:8]}"
    execute = psycopg.Connection.execute

    def late(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(conn)
        if text.endswith("NOLOGIN") and not orders.server.prepared(orders.dbname, gid):
            with login(orders, credential) as session:
                execute(session, "BEGIN")
                execute(session, "INSERT INTO orders VALUES (9998, 1)")
                execute(session, f"PREPARE TRANSACTION '{gid}'")
        return execute(conn, query, params, **kwargs)

    try:
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.Connection, "execute", late)
            assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKING
        assert orders.server.prepared(orders.dbname, gid)
        with orders.server.connect(dbname=orders.dbname) as su:
            assert su.execute(_STATE, (role,)).fetchone() == (False, False)
        broker.sweep(now() + 3600)
        assert not orders.server.prepared(orders.dbname, gid)
        assert role not in orders.lease_roles()
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        broker.close()


def test_the_resend_after_a_cancelled_statement_is_not_in_an_aborted_transaction(
    pg_server: PgServer,
) -> None:
    """74r refuted 2 (74n pgwatch6 1's resend): the first `RESET ROLE` is cancelled by the
    server (its statement timeout, as psycopg's cancel after an interrupt does). Tried: the
    resend failing "current transaction is aborted" (the connection INERROR), the admin left
    as the lease role or a member of it. Refuted: the admin's connections are autocommit, the
    cancelled statement leaves it idle; the resend runs, the membership is revoked and the
    cancel raised."""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            admin = stack.enter_context(pg_server.connect(user=_ADMIN))
            hooked = _Before(admin, "RESET ROLE", lambda: _cancelled(admin))
            with pytest.raises(psycopg.errors.QueryCanceled):
                locks.end_lock_holders(hooked, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GID)
            assert admin.execute("SELECT current_user").fetchone() == (_ADMIN,)
            assert su.execute(_MEMBER, (_ADMIN, _FIRST)).fetchone() == (False,)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def _cancelled(conn: Any) -> None:
    """A statement on `conn` the server cancels (QueryCanceled)."""
    conn.execute("SET statement_timeout = 10")
    try:
        conn.execute("SELECT pg_sleep(5)")
    finally:
        conn.execute("SET statement_timeout = 0")


def test_the_resend_is_bounded_and_a_second_interrupt_is_raised() -> None:
    """74r refuted 3 (74n's `_twice`): tried a statement that keeps failing (its statement
    timeout) resent without end, doubling the wait more than once, and a second interrupt in
    the resend swallowed. Refuted: two sends at most, the second's error raised; a second
    interrupt raised as itself."""
    sent: list[int] = []

    def timeout() -> None:
        sent.append(1)
        raise psycopg.errors.QueryCanceled("statement timeout")

    with pytest.raises(psycopg.errors.QueryCanceled):
        locks._twice(timeout)
    assert len(sent) == 2
    interrupts = [KeyboardInterrupt("first"), KeyboardInterrupt("second")]

    def interrupt() -> None:
        raise interrupts.pop(0)

    with pytest.raises(KeyboardInterrupt, match="second"):
        locks._twice(interrupt)


def test_a_busy_transaction_leaves_no_membership_and_no_lease_role(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """74r refuted 4 (74b pgwatch4's GRANT and REVOKE, 74g pgwatch5 1's "busy" and 74n's
    resend in one path): the admin (no superuser) grants itself the lease role, and the
    rollback meets "is busy". Tried: the early return skipping the RESET ROLE or the REVOKE.
    Refuted: the transaction is left to end, the admin back as itself and no member."""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            admin = stack.enter_context(pg_server.connect(user=_ADMIN))
            with monkeypatch.context() as patched:
                patched.setattr(psycopg.Connection, "execute", _busy(_GID))
                locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert pg_server.prepared(pg_server.dbname, _GID)
            assert admin.execute("SELECT current_user").fetchone() == (_ADMIN,)
            assert su.execute(_MEMBER, (_ADMIN, _FIRST)).fetchone() == (False,)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)
