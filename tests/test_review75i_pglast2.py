"""Review 75i, pglast2: 75b's `revoke_members` (troth.secrets.engines.postgres_locks; PostgreSQL
tests: TROTH_REQUIRE_PG=1). The memberships are granted as the superuser: PostgreSQL 14 and
older let the lease's own session grant its role to any role, 15 (the server here) asks ADMIN
OPTION. A member's session "does not end in time" is `postgres._end_sessions` failing for it
(75b's `ending`): on a real server, one busy in code that takes no interrupt.

75i pglast2 1: a member whose session does not end in time fails the revocation in
`revoke_members`, before any database privilege of the lease was taken, and the membership is
kept (75b pglast 2): the member's other sessions (new ones, at every retry) set their role to
the REVOKING lease, NOLOGIN, and used every privilege it held, as its holder's second lease, a
member, ran a session that takes no interrupt at each retry. 71b pglease 4 and 71j pglease 7
strip a role that could not be made NOLOGIN; a failure in `revoke_members` stripped nothing.

75i pglast2 2: an interrupt (a daemon's shutdown: `pg_terminate_backend` waits up to
`terminate_wait_ms`) in the second ending of the members' sessions, after the REVOKEs' commit,
skipped the re-grant (`except Exception`): the retry, after the restart, no longer knew the
member, and the session that logged in before the commit and set its role to the lease prepared
its transaction before `DROP ROLE`, left owned by no role, the lease REVOKED (75b pglast 3
again).

75i pglast2 3: the re-grant stopped at its first failing GRANT: a member dropped meanwhile (a
lease member's own revocation, in another broker, dropped its role: "role does not exist")
left every member after it (by name) without its membership, and 75b pglast 3 again for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.test_review75b_pglast import acting_as, app, ending, grant_chain, scene
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from troth.secrets.engines import postgres


def test_a_member_that_does_not_end_leaves_the_revoking_lease_no_privilege(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75i pglast2 1: the lease's role granted to an application role, ending whose sessions
    does not finish in time: the revocation fails (REVOKING) and a new session of the member
    that sets its role to the lease still inserted into `orders` with the lease's privilege."""
    with scene(tmp_path, world, orders, 1, app()) as made:
        role, name = made.user(0), made.apps[0]
        grant_chain(orders, [role, name])
        made.fails_ending(monkeypatch, ending(name, lambda: True))
        with login(orders, made.credential(name)) as session:
            session.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.execute("INSERT INTO orders VALUES (9992, 1)")


def test_an_interrupt_in_the_second_ending_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75i pglast2 2: an application member's session logs in and sets its role to the lease
    before the REVOKE's commit; the second ending of its sessions is interrupted: the retry
    did not end that session, whose transaction, prepared just before `DROP ROLE`, was left
    owned by no role, the lease REVOKED."""
    sessions: list[Any] = []
    with scene(tmp_path, world, orders, 1, app()) as made:
        name = made.apps[0]
        end_sessions = postgres._end_sessions

        def end(conn: Any, role: str, wait_ms: int, *, strict: bool = True) -> None:
            if role == name and sessions:  # the second ending: the daemon's shutdown
                raise KeyboardInterrupt
            end_sessions(conn, role, wait_ms, strict=strict)
            if role == name:
                sessions.append(acting_as(orders, made.credential(name), made.user(0)))

        grant_chain(orders, [made.user(0), name])
        with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
            patched.setattr(postgres, "_end_sessions", end)
            made.broker.revoke(made.agent, made.leases[0].lease_id, now=now())
        with sessions[0] as session:
            made.keeps_no_orphan(session, monkeypatch)


def test_a_member_dropped_meanwhile_leaves_the_others_their_membership(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75i pglast2 3: two application members; the second's session logs in and sets its role
    to the lease before the REVOKE's commit, ending its sessions again fails, and the first
    member is dropped meanwhile: its re-grant failed and the second's was never sent, the
    retry did not end the session, whose prepared transaction outlived the REVOKED lease."""
    sessions: list[Any] = []
    with scene(tmp_path, world, orders, 1, app("a"), app("b")) as made:
        dropped, name = made.apps

        def fails() -> bool:
            if not sessions:
                return False
            with orders.server.connect(dbname=orders.dbname) as su:
                su.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(dropped)))
            return True

        def acts() -> None:  # logged in before the REVOKE's commit, after the first ending
            if not sessions:
                sessions.append(acting_as(orders, made.credential(name), made.user(0)))

        grant_chain(orders, [made.user(0), dropped])
        grant_chain(orders, [made.user(0), name])
        made.fails_ending(monkeypatch, ending(name, fails, acts))
        with sessions[0] as session:
            made.keeps_no_orphan(session, monkeypatch)
