"""Review 74n, pgwatch6: the rollback of a lease's prepared transaction as its owner
(troth.secrets.engines.postgres_locks.roll_back_prepared), after review 74g's fixes, attacked
again (PostgreSQL tests: TROTH_REQUIRE_PG=1).

pgwatch6 1: an interrupt (KeyboardInterrupt, a daemon's shutdown) as the `RESET ROLE` after the
rollback is sent closed the connection (74g pgwatch5 2) and skipped the admin's REVOKE of its
temporary membership: an admin that is no superuser stayed a member of the lease's role,
another live lease's for the lock holders (the leak review 74b, pgwatch4 4 closed for the
GRANT). psycopg cancels the statement it was interrupted in and reads its end, leaving the
connection usable: `RESET ROLE` is sent once more, the membership revoked, then the interrupt
raised; the connection is closed only if that second `RESET ROLE` fails too.

pgwatch6 2: the same interrupt as the REVOKE itself is sent left the membership too: it is
sent once more before the interrupt is raised.

pgwatch6 3: a lease's prepared transaction "busy" (74g pgwatch5 1: left to end) whose
finisher fails before it ends it (its session ended or cancelled in the middle, a read of its
state failing) is prepared again, the lease's, with its writes and locks. Nothing looked for it
again: the revocation went on to `DROP ROLE`, which PostgreSQL allows with the role's prepared
transactions there (their owner then no role: no lease pattern ever matches it again), and
reported the lease REVOKED with its transaction left for good (review 69r, leases 4, again).
The role is dropped only once it owns no prepared transaction; otherwise the revocation fails
after NOLOGIN and the retry rolls it back.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _roles
from tests.test_review74b_pgwatch4 import _GID, _Before, interrupted
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    now,
    orders,
    prepare_write,
    setup,
    world,
)
from troth.secrets import LeaseState

_MEMBER = "SELECT pg_has_role(%s, %s, 'MEMBER')"


def _stop() -> None:
    raise KeyboardInterrupt


def _left_member(pg_server: PgServer, start: str, wrap: Any = _Before) -> tuple[bool, Any]:
    """Lease `_FIRST`'s prepared transaction rolled back by the admin (no superuser) on its
    connection as `wrap`ped, an interrupt raised as its statement starting with `start` is
    sent: whether the admin is still a member of `_FIRST` (read by the superuser), and the
    connection's current user (None: closed)."""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            admin = interrupted(pg_server, stack, lambda conn: wrap(conn, start, _stop))
            assert not pg_server.prepared(pg_server.dbname, _GID)
            current = None if admin.closed else admin.execute("SELECT current_user").fetchone()
            return su.execute(_MEMBER, (_ADMIN, _FIRST)).fetchone()[0], current
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_an_interrupt_at_the_reset_role_leaves_no_membership(pg_server: PgServer) -> None:
    """74n pgwatch6 1: an interrupt as the `RESET ROLE` after the rollback is sent: the
    connection was closed and the REVOKE skipped, the admin left a member of `_FIRST`'s role."""
    assert _left_member(pg_server, "RESET ROLE") == (False, (_ADMIN,))


class _Failing(_Before):
    """`_Before`, its `then()` run before every statement starting with `start`; closable."""

    def execute(self, statement: Any, params: Any = None) -> Any:
        text = statement if isinstance(statement, str) else statement.as_string(self.conn)
        if text.startswith(self.start):
            assert self.then is not None
            self.then()
        return self.conn.execute(statement, params)

    def close(self) -> None:
        self.conn.close()


def test_a_reset_role_failing_twice_closes_the_connection(pg_server: PgServer) -> None:
    """74n pgwatch6 1 (its bound): every `RESET ROLE` interrupted: the connection, still the
    lease role's, is closed (74g pgwatch5 2), not kept by the broker."""
    assert _left_member(pg_server, "RESET ROLE", _Failing)[1] is None


def test_an_interrupt_at_the_revoke_leaves_no_membership(pg_server: PgServer) -> None:
    """74n pgwatch6 2: an interrupt as the admin's REVOKE of its temporary membership is sent:
    the admin was left a member of `_FIRST`'s role."""
    assert _left_member(pg_server, "REVOKE") == (False, (_ADMIN,))


def _busy(gid: str) -> Any:
    """`psycopg.Connection.execute` whose `ROLLBACK PREPARED` of `gid` fails "is busy" without
    running: another session held it and failed to end it."""
    execute = psycopg.Connection.execute

    def busy(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(conn)
        if text.startswith("ROLLBACK PREPARED") and gid in text:
            raise psycopg.errors.ObjectNotInPrerequisiteState(f"{gid} is busy")
        return execute(conn, query, params, **kwargs)

    return busy


def test_a_busy_transaction_prepared_again_is_not_left_by_the_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """74n pgwatch6 3: the lease writes in a transaction it prepares; the broker's rollback of
    it meets "busy" and the other session fails to end it: the lease was REVOKED, its role
    dropped, the transaction left prepared (owned by no role). Now the revocation fails, and
    its retry rolls it back."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    gid = f"busy_{uuid.uuid4().hex[:8]}"
    prepare_write(orders, issued.credential.reveal(), gid)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.Connection, "execute", _busy(gid))
            state = broker.revoke(agent, issued.lease_id, now=now()).state
        assert state is not LeaseState.REVOKED or not orders.server.prepared(orders.dbname, gid)
        broker.sweep(now() + 3600)
        assert not orders.server.prepared(orders.dbname, gid)
        assert str(issued.credential.reveal()["user"]) not in orders.lease_roles()
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        broker.close()
