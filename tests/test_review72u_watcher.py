"""Review 72u, watcher: the lock-wait watcher of a postgres revocation (review 72q, savepoint 1;
troth.secrets.engines.postgres_waits) (PostgreSQL tests: TROTH_REQUIRE_PG=1).

watcher 1: a second session queued on the row. A session that waits to update a row another
transaction updated holds the row's `tuple` lock while it waits on that transaction; a later
statement wanting the row waits on that tuple lock (pg_stat_activity: `tuple`), not on the
transaction. The watcher looked at `transactionid` waits only: the second lease of 72q's attack
(USAGE on the first's schema it may grant, granted in a savepoint it released, its transaction
left open) opened a second session granting it again, which queued on the row, and the
revocation's statement waited on the queued session's tuple lock, unwatched, failing its lock
timeout at every retry: REVOKING for as long as the two sessions stayed. The queued session is
a lease's too, and ended: then the statement waits on the transaction, whose session is ended.

watcher 2: the watcher's timing (its start, a twentieth of the lock timeout, and its poll) was
named in `postgres_waits`, not in `troth.limits`.

watcher 3: watcher 1 with an application's session queued on the row: it is left, and the
statement waited on it only; the lease's transaction it waits on is now ended too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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

# far longer than the watcher takes to see the statement waiting (no race to lose); a failure
# takes this long, once
_LOCK_MS = 3000


def _seen_waiting(orders: OrdersDb, pid: int) -> None:  # noqa: F811
    """Return once session `pid` waits for a lock."""
    deadline = time.monotonic() + 10
    with orders.server.connect(dbname=orders.dbname) as admin:
        while time.monotonic() < deadline:  # no timing asserted: the wait is seen
            found = admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                (pid,),
            ).fetchone()
            if found is not None:
                return
            time.sleep(0.002)
    raise AssertionError("the queued statement never waited")


def _queued(orders: OrdersDb, credential: dict[str, Any], statement: str) -> Any:  # noqa: F811
    """A session of `credential` running `statement`, returned once it waits for a lock."""
    session = login(orders, credential)
    session.pgconn.send_query(statement.encode())
    _seen_waiting(orders, session.info.backend_pid)
    return session


def granting_leases(broker: Any, world: LeaseWorld, orders: OrdersDb) -> tuple[Any, Any, Any, str]:  # noqa: F811
    """Two leases of one agent, the second let grant USAGE on the first's schema: (the agent,
    the first, the second, that GRANT to PUBLIC)."""
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    with login(orders, first.credential.reveal()) as session:
        session.execute(f'GRANT USAGE ON SCHEMA "{role}" TO "{other}" WITH GRANT OPTION')
    return agent, first, second, f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC'


def went_through_then_revoked(broker: Any, first: Any, session: Any) -> None:
    """`session`'s sent statement went through and the session lives; the sweep then ends the
    `first` lease REVOKED."""
    from troth.secrets import LeaseState

    while session.pgconn.get_result() is not None:  # its statement went through
        pass
    assert session.execute("SELECT 1").fetchone() == (1,)  # its session lives
    broker.sweep(now() + 3600)
    swept = broker.book.lease(first.lease.handle)
    assert swept is not None
    assert swept.state is LeaseState.REVOKED


def test_a_session_queued_on_the_held_row_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72u watcher 1: 72q's attack (the second lease's GRANT on the first's schema in a
    savepoint it released, its transaction open) with a second session of the second lease
    queued on the same row (its own GRANT waiting on the first's transaction, holding the row's
    tuple lock): the revocation's statement waited on the tuple lock, which the watcher did not
    look at, REVOKING. It ends REVOKED, both sessions ended."""
    import psycopg

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", _LOCK_MS)
    broker = setup(tmp_path, world, orders)
    agent, first, second, grant = granting_leases(broker, world, orders)
    holder = login(orders, second.credential.reveal())
    queued: Any = None
    try:
        holder.execute("BEGIN")
        for statement in ["SAVEPOINT s", grant, "RELEASE SAVEPOINT s"]:
            holder.execute(statement)
        queued = _queued(orders, second.credential.reveal(), grant)
        assert_revoked_past_holder(broker, agent, first.lease_id, orders, holder, [], at=now())
        with pytest.raises(psycopg.OperationalError):  # the queued session ended too
            queued.execute("SELECT 1")
    finally:
        holder.close()
        if queued is not None:
            queued.close()
        broker.sweep(now() + 3600)
        broker.close()


def test_the_watchers_timing_is_named_in_troth_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """72u watcher 2: the watcher's start (a twentieth of the lock timeout) and poll were hard
    limits named in `postgres_waits`, not in `troth.limits` (the one place they are named, as
    the lock timeout they follow): `limits.POSTGRES_WATCH_START_DIVISOR` and
    `limits.POSTGRES_WATCH_POLL_MS` set when the watcher connects and how often it looks."""
    import threading

    import psycopg

    from troth.secrets.engines import postgres_waits as waits

    monkeypatch.setattr(limits, "POSTGRES_WATCH_START_DIVISOR", 10**9)  # connects at once
    monkeypatch.setattr(limits, "POSTGRES_WATCH_POLL_MS", 1)
    connected = threading.Event()

    def connect() -> Any:
        connected.set()
        raise psycopg.OperationalError("no server")  # nothing watched: the block goes on

    with waits.watching(connect, 1, "^tl_", 100):
        assert connected.wait(5)


def test_an_application_queued_on_the_held_row_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72u watcher 3: watcher 1 with an application's session (no lease's) queued on the row
    the second lease holds: the revocation's statement waited on the application's row lock,
    which is left, and the lease's transaction it waits on was never looked at: REVOKING for as
    long as the lease kept it open. The watcher follows the queue to the transaction the
    queued session waits on: the lease's session is ended, the application's statement goes
    through and is left (the revocation's statement, failing on its change, is retried), and
    the sweep ends the revocation REVOKED."""
    import psycopg

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", _LOCK_MS)
    broker = setup(tmp_path, world, orders)
    agent, first, second, grant = granting_leases(broker, world, orders)
    holder = login(orders, second.credential.reveal())
    app = orders.server.connect(dbname=orders.dbname)
    try:
        holder.execute("BEGIN")
        for statement in ["SAVEPOINT s", grant, "RELEASE SAVEPOINT s"]:
            holder.execute(statement)
        app.pgconn.send_query(grant.encode())
        _seen_waiting(orders, app.info.backend_pid)
        broker.revoke(agent, first.lease_id, now=now())
        with pytest.raises(psycopg.OperationalError):  # the lease's session ended
            holder.execute("SELECT 1")
        went_through_then_revoked(broker, first, app)
    finally:
        holder.close()
        app.close()
        broker.sweep(now() + 3600)
        broker.close()
