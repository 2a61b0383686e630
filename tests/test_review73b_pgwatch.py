"""Review 73b, pgwatch: the PostgreSQL revocation's watcher and lock holders (reviews 72q, 72u,
72y; troth.secrets.engines.postgres_waits, postgres_locks) (PostgreSQL tests:
TROTH_REQUIRE_PG=1).

pgwatch 1: a pid read as a lease's, ended as whoever has it now. The watcher (and
`end_lock_holders`, `_end_role_lockers`) read which sessions are a lease role's in one statement
and called `pg_terminate_backend(pid)` in the next: a lease session that ended meanwhile (its
holder closed it, another step of the revocation ended it) left its pid to the next process the
server forks, an application's session, which was ended in its place. The terminate is now
conditional in its own statement: the pid's session is ended only if it is a lease role's now.

pgwatch 2: a relation lock taken between `end_lock_holders` and the statement. Another live
lease that may read the revoked lease's table (granted by it) took a lock on it (`LOCK TABLE`,
or any read in a transaction it keeps open) after `end_lock_holders` looked: the statement
dropping the table waited on a `relation` lock, which the watcher did not follow (only
`transactionid` and `tuple` waits), and failed its lock timeout, at each retry the other lease
won that window (a prepared one for good): REVOKING. The watcher now runs `end_lock_holders`
again when the statement waits for a relation (a schema: `object`), once for each: the lease
sessions (prepared transactions) holding what the revocation drops or alters are ended, and a
lease's session reading a table the lease's foreign key references is still left (44b's guard).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer, two_leases
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
from troth.secrets.engines import postgres_locks as locks
from troth.secrets.engines import postgres_waits as waits

_LEASES = "^tl_[0-9a-f]{8}_[0-9a-f]{32}$"


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class _ReadBefore:
    """The admin's connection, whose statements starting with one of `forged`'s keys answer the
    rows read an instant before (a lease's session at that pid then), the rest run."""

    def __init__(self, conn: Any, forged: dict[str, list[tuple[Any, ...]]]) -> None:
        self.conn, self.forged = conn, forged

    def execute(self, statement: Any, params: Any = None) -> Any:
        for start, rows in self.forged.items():
            if isinstance(statement, str) and statement.startswith(start):
                return _Rows(rows)
        return self.conn.execute(statement, params)


_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
"""The start of the lease session read at the pid (ended since)."""
_TRANSACTION = "999/1"
"""Its transaction read (virtual transaction id: review 73l, pgwatch 1)."""
_REUSED = "tl_73b00000_" + "0" * 32  # a lease role's name


def _watcher_read(pid: int) -> dict[str, list[tuple[Any, ...]]]:
    waiting = "SELECT wait_event FROM pg_stat_activity"
    read = [(pid, None, _BEFORE, _TRANSACTION)]
    return {waiting: [("transactionid",)], waits.WAITED_ON[:40]: read}


def _holders_read(pid: int) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "SELECT has_table_privilege": [(False,)],
        locks.LOCK_HOLDERS[:40]: [(pid, None, _BEFORE, _TRANSACTION)],
    }


@contextmanager
def _reusing(pg_server: PgServer, who: str) -> Iterator[Any]:
    """The session that took the pid: an application's, or another lease role's."""
    if who == "application":
        with pg_server.connect() as session:
            yield session
        return
    with pg_server.connect() as admin:
        admin.execute(f"CREATE ROLE {_REUSED} LOGIN PASSWORD 'x'")
        try:
            with pg_server.connect(user=_REUSED, password="x") as session:
                yield session
        finally:
            ended = (
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s"
            )
            admin.execute(ended, (_REUSED,))
            admin.execute(f"DROP ROLE {_REUSED}")


@pytest.mark.parametrize("who", ["application", "another lease"])
@pytest.mark.parametrize(
    ("read", "end"),
    [
        (_watcher_read, lambda conn: waits.end_waited_on(conn, 1, _LEASES, 1000)),
        (_holders_read, lambda conn: locks.end_lock_holders(conn, "tl_x", _LEASES, 1000)),
    ],
    ids=["watcher", "lock holders"],
)
def test_a_pid_read_as_a_leases_is_not_ended_as_another_session(
    pg_server: PgServer, read: Any, end: Any, who: str
) -> None:
    """73b pgwatch 1: the watcher read (WAITED_ON) or `end_lock_holders` read (LOCK_HOLDERS)
    session P as a lease role's; P ended and a new session (an application's, another lease's)
    took its pid before the `pg_terminate_backend(P)` of the next statement, which ended it.
    Now the terminate is conditional (P the lease role's session read, by its start, when it
    is signalled): the new session lives."""
    with pg_server.connect() as admin, _reusing(pg_server, who) as session:
        end(_ReadBefore(admin, read(session.info.backend_pid)))
        assert session.execute("SELECT 1").fetchone() == (1,)  # not ended


def granted_table(broker: Any, agent: Any, orders: OrdersDb) -> tuple[Any, Any]:  # noqa: F811
    """Two leases of `agent`, the first's table `t` readable by the second: (first, second)."""
    first, second = two_leases(broker, agent, SECRET, now(), "orders:write")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    with login(orders, first.credential.reveal()) as session:
        session.execute(
            f'CREATE TABLE "{role}".t (a int); GRANT USAGE ON SCHEMA "{role}" TO "{other}";'
            f' GRANT SELECT ON "{role}".t TO "{other}"'
        )
    return first, second


def locked_after_the_holders(
    monkeypatch: pytest.MonkeyPatch, role: str, session: Any, prepare_as: str | None = None
) -> list[bool]:
    """Have `session` lock `role`'s table `t` (its transaction left open, or prepared as
    `prepare_as`) just after the revocation's `end_lock_holders` looked, once: [True] then."""
    real = locks.end_lock_holders
    locked: list[bool] = []

    def then_locked(conn: Any, dropped: str, leases: str, wait_ms: int) -> None:
        real(conn, dropped, leases, wait_ms)
        if dropped == role and not locked:
            locked.append(True)
            session.execute("BEGIN")
            session.execute(f'LOCK TABLE "{role}".t IN ACCESS SHARE MODE')
            if prepare_as is not None:
                session.execute(f"PREPARE TRANSACTION '{prepare_as}'")

    monkeypatch.setattr(locks, "end_lock_holders", then_locked)
    return locked


@pytest.mark.parametrize("prepared", [False, True], ids=["session", "prepared"])
def test_a_relation_lock_taken_after_the_holders_were_ended_is_followed(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    prepared: bool,
) -> None:
    """73b pgwatch 2: the lease lets a second lease read its table; the second lease's session
    locks it (`LOCK TABLE ... IN ACCESS SHARE MODE`, its transaction left open, or prepared)
    just after `end_lock_holders` looked. The statement dropping the table waited on the
    `relation` lock, which the watcher did not follow: it failed its lock timeout and the
    lease stayed REVOKING (at each retry the second lease won the window; a prepared one holds
    it for good). Now the watcher, seeing the statement wait for a relation, ends the lease's
    session (rolls back its prepared transaction) holding it (`end_lock_holders`): REVOKED."""
    import psycopg

    from troth.secrets import LeaseState

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 1000)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = granted_table(broker, agent, orders)
    holder = login(orders, second.credential.reveal())
    gid = f"late-{first.lease.engine_ref}" if prepared else None
    locked = locked_after_the_holders(monkeypatch, str(first.lease.engine_ref), holder, gid)
    try:
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert locked
        assert revoked.state is LeaseState.REVOKED
        if gid is not None:
            assert not orders.server.prepared(orders.dbname, gid)  # rolled back
        else:
            with pytest.raises(psycopg.OperationalError):  # the second lease's session ended
                holder.execute("SELECT 1")
    finally:
        holder.close()
        if gid is not None:
            orders.server.end_prepared(orders.dbname, gid)
        broker.sweep(now() + 3600)
        broker.close()
