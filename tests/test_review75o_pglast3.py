"""Review 75o, pglast3: 75i's re-grant in `revoke_members` (troth.secrets.engines.postgres_locks;
PostgreSQL tests: TROTH_REQUIRE_PG=1). The memberships are granted as the superuser (PostgreSQL
14 and older let the lease's own session grant its role; 15, the server here, asks ADMIN
OPTION). An application member's session logs in and sets its role to the lease after the first
ending of its sessions, before the REVOKEs' commit (75b pglast 3's window).

75o pglast3 1: the node killed (SIGKILL), the server restarted or the network dropped after the
REVOKEs' commit, in the second ending: the memberships lived only in the broker's memory for the
re-grant, whose GRANTs no longer reached the server (`_grant_again` skips a lost connection). The
retry, after the restart, no longer knew the member: the session acting as the lease prepared
its transaction just before `DROP ROLE`, left owned by no role, the lease REVOKED. Here the
admin's session is terminated by the server as the second ending starts (what the server sees of
a killed node), and the ending is interrupted.

75o pglast3 2: a second interrupt (a daemon's second Ctrl-C or SIGTERM) as the re-grant sends a
member's GRANT: psycopg cancels that GRANT, `_grant_again` keeps the interrupt for later and goes
on, and that member's membership was never granted again: the same orphan for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.test_review75b_pglast import acting_as, app, grant_chain, scene
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    now,
    orders,
    world,
)
from troth.secrets import LeaseState
from troth.secrets.engines import postgres


class _Killed(BaseException):
    """The node's end at a point of the revocation: nothing of it runs on (a BaseException no
    `except Exception` takes)."""


def ending_stops(
    made: Any,
    db: OrdersDb,
    sessions: list[Any],
    mp: pytest.MonkeyPatch,
    *,
    nth: int = 1,
    kill: bool = False,
) -> None:
    """Revoke the first lease: after the first ending of the application member's sessions a
    session of it sets its role to the lease (into `sessions`, unless one is there); its `nth`
    ending (0: in the REVOKEs' transaction, 1: after their commit) is interrupted, the admin's
    session first terminated by the server when `kill` (what it sees of a killed node). The
    lease is left REVOKING."""
    name, end_sessions, calls = made.apps[0], postgres._end_sessions, [0]

    def end(conn: Any, role: str, wait_ms: int, *, strict: bool = True) -> None:
        if role == name and calls[0] == nth:
            if kill:
                with db.server.connect(dbname=db.dbname) as su:
                    su.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
                raise _Killed
            raise KeyboardInterrupt
        calls[0] += role == name
        end_sessions(conn, role, wait_ms, strict=strict)
        if role == name and not sessions:
            sessions.append(acting_as(db, made.credential(name), made.user(0)))

    grant_chain(db, [made.user(0), name])
    with mp.context() as patched, pytest.raises((_Killed, KeyboardInterrupt)):
        patched.setattr(postgres, "_end_sessions", end)
        made.broker.revoke(made.agent, made.leases[0].lease_id, now=now())
    assert made.state() is LeaseState.REVOKING


def test_a_node_killed_after_the_revokes_commit_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75o pglast3 1: the admin's session ends (the node killed) as the second ending starts,
    after the REVOKEs' commit: the retry did not end the member's session acting as the lease,
    whose transaction, prepared just before `DROP ROLE`, outlived the REVOKED lease."""
    sessions: list[Any] = []
    with scene(tmp_path, world, orders, 1, app()) as made:
        ending_stops(made, orders, sessions, monkeypatch, kill=True)
        with sessions[0] as session:
            made.keeps_no_orphan(session, monkeypatch)


def test_a_second_interrupt_in_the_regrant_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75o pglast3 2: the second ending interrupted, and the member's GRANT interrupted again
    as it is sent (cancelled): the retry did not end the member's session acting as the
    lease, whose prepared transaction outlived the REVOKED lease."""
    sessions: list[Any] = []
    execute = psycopg.Connection.execute

    def interrupted(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(conn)
        if text.startswith("GRANT") and sessions:
            raise KeyboardInterrupt
        return execute(conn, query, params, **kwargs)

    with scene(tmp_path, world, orders, 1, app()) as made:
        monkeypatch.setattr(psycopg.Connection, "execute", interrupted)
        ending_stops(made, orders, sessions, monkeypatch)
        monkeypatch.undo()
        with sessions[0] as session:
            made.keeps_no_orphan(session, monkeypatch)
