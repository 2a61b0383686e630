"""Review 74u, pgwatch8: attacks on the PostgreSQL lease revocation path (troth.secrets.engines.
postgres, postgres_locks) that did not work (PostgreSQL tests: TROTH_REQUIRE_PG=1).

Refuted 1 (the interrupt/resend logic of reviews 74b, 74g, 74n and 74r as a whole): a single
interrupt (KeyboardInterrupt: a
daemon's shutdown) before or after any statement `roll_back_prepared` sends, for an admin
that is no superuser (the GRANT of the lease role to itself, SET ROLE, the owner's look, the
rollback, RESET ROLE, the REVOKE) or a superuser: the admin's connection is either closed or
back as the admin, and the admin is left no member of the lease's role.

Refuted 2: a lease granting its own role to another lease's (pgwatch8 2's membership) from its
own session: PostgreSQL 15 refuses it (no ADMIN OPTION on itself; 14 and older allowed it).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _lease, _roles
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets.engines import postgres_locks as locks

_GID = "g74u_pgwatch8"
_MEMBER = "SELECT pg_has_role(%s, %s, 'MEMBER')"
# what an admin that is no superuser sends, uninterrupted: the look, a refused SET ROLE, the
# GRANT, SET ROLE, the owner's look, ROLLBACK PREPARED, RESET ROLE, REVOKE
_SENT = 8


class _Nth:
    """The admin's connection, raising KeyboardInterrupt before (or after) its `nth` execute
    (0-based); `sent` counts the executes."""

    def __init__(self, conn: Any, nth: int, after: bool) -> None:
        self.conn, self.nth, self.after, self.sent = conn, nth, after, 0
        self.fired = False

    def execute(self, statement: Any, params: Any = None) -> Any:
        now, self.sent = self.sent, self.sent + 1
        if now == self.nth and not self.after:
            self.fired = True
            raise KeyboardInterrupt
        try:
            result = self.conn.execute(statement, params)
        except Exception as error:  # the interrupt came as it failed: raised in its place
            if now != self.nth:
                raise
            self.fired = True
            raise KeyboardInterrupt from error
        if now == self.nth:
            self.fired = True
            raise KeyboardInterrupt
        return result

    def close(self) -> None:
        self.conn.close()

    @property
    def closed(self) -> bool:
        return bool(self.conn.closed)


def _rolled_back(pg_server: PgServer, nth: int, after: bool, user: str) -> tuple[Any, ...]:
    """Lease `_FIRST`'s prepared transaction rolled back by `user` on a
    connection interrupted at its `nth` statement: whether it fired, the connection's current
    user (None: closed), whether the admin is a member of `_FIRST` (the superuser's read), how
    many statements were sent."""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            xid = su.execute(
                "SELECT transaction::text FROM pg_prepared_xacts WHERE gid = %s", (_GID,)
            ).fetchone()[0]
            admin = stack.enter_context(pg_server.connect(user=user))
            wrapped = _Nth(admin, nth, after)
            try:
                locks.roll_back_prepared(wrapped, _GID, _LEASES, xid)
            except KeyboardInterrupt:
                assert wrapped.fired
            current = None if admin.closed else admin.execute("SELECT current_user").fetchone()[0]
            member = su.execute(_MEMBER, (_ADMIN, _FIRST)).fetchone()[0]
            return wrapped.fired, current, member, wrapped.sent
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_an_uninterrupted_rollback_sends_the_statements_counted(pg_server: PgServer) -> None:
    """74u refuted 1 (its range): the statements the parametrised test interrupts are all
    that an admin that is no superuser sends, and the rollback leaves it the admin."""
    assert _rolled_back(pg_server, -1, False, _ADMIN) == (False, _ADMIN, False, _SENT)


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("nth", range(_SENT))
def test_a_single_interrupt_anywhere_leaves_the_admin_itself(
    pg_server: PgServer, nth: int, after: bool
) -> None:
    """74u refuted 1: one interrupt before or after the `nth` statement `roll_back_prepared`
    sends (the admin no superuser): the connection is closed or back as the admin, and the
    admin no member of the lease's role."""
    fired, current, member, _sent = _rolled_back(pg_server, nth, after, _ADMIN)
    assert fired
    assert current in (None, _ADMIN)
    assert member is False


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("nth", range(5))
def test_a_single_interrupt_anywhere_leaves_a_superuser_itself(
    pg_server: PgServer, nth: int, after: bool
) -> None:
    """74u refuted 1 (a superuser admin: the look, SET ROLE, the owner's look, ROLLBACK
    PREPARED, RESET ROLE): the connection is closed or back as the superuser."""
    fired, current, _member, _sent = _rolled_back(pg_server, nth, after, pg_server.user)
    assert fired
    assert current in (None, pg_server.user)


def test_a_lease_may_not_grant_its_own_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """74u refuted 2: lease 1's session grants its role to lease 2's (pgwatch8 2's attack,
    unaided): refused on this server (PostgreSQL 15 and newer)."""
    broker = setup(tmp_path, world, orders)
    try:
        agent = world.credential_a()
        first = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        second = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        role, other = (str(lease.credential.reveal()["user"]) for lease in (first, second))
        with (
            login(orders, first.credential.reveal()) as session,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            session.execute(f'GRANT "{role}" TO "{other}"')
    finally:
        broker.close()
