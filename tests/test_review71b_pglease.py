"""Review 71b, pglease: a lease's objects against its revocation (PostgreSQL tests:
TROTH_REQUIRE_PG=1).

pglease 1: `DROP OWNED BY` takes a lock on each object it drops, all in one transaction, in
the server's shared lock table (`max_locks_per_transaction` x (`max_connections` +
`max_prepared_transactions`) slots, 6912 by default). A large object needs no privilege to
create, in any database PUBLIC may connect to: a read-only lease's `SELECT count(lo_create(0))
FROM generate_series(1, 20000)` (0.2 s) made its revocation's `DROP OWNED` fail "out of shared
memory" at every retry, the lease REVOKING for good, its role and its 20000 large objects
kept, and each retry filling the lock table every other session of the cluster needs. The
revocation now unlinks a role's large objects `LO_UNLINK_BATCH` to a transaction first.

pglease 3: `lo_unlink` (and `DROP OWNED`) of a lease's large object deletes its data rows in
pg_largeobject: another lease it let write there (`GRANT UPDATE ON LARGE OBJECT`, or PUBLIC)
that wrote one (`lo_put`) in a transaction it kept open (or prepared) held the revocation
waiting on the row at every retry, REVOKING for as long as it liked (no lock on the object,
its transaction id in the row's `xmax`, which 70w's `updaters` did not read: pg_largeobject
is the superuser's alone). Its writers are now ended too, where the admin may read it.

pglease 4: a revocation's first step, ending the role's sessions, failed the revocation when
one did not end within `terminate_wait_ms`, before `ALTER ROLE ... NOLOGIN`: a session busy in
code that takes no interrupt (libxml's XPath: `count(//b[count(preceding::b) >= 0])` over a
document of 14000 elements, seconds) kept the role LOGIN with every privilege, and its holder
logged in again and did it again at each retry, the lease working on until VALID UNTIL. The
sessions are now signalled and the role made NOLOGIN whether or not they ended (the step
after it still waits for them, retried); and when NOLOGIN cannot be had (such a session also
holding the role's row: an open `ALTER ROLE CURRENT_USER PASSWORD`), its memberships and
privileges are taken before the revocation fails, retried.

pglease 5 (closed by review 72q, savepoint 1): 70z's attack (another lease's open GRANT
widening one to the lease, or any other catalog row `updaters` reads) made in a savepoint the
holder then RELEASEs: the row's `xmax` is the subtransaction's id, whose own lock is gone from
pg_locks once released (its waiters wait on the top transaction, through pg_subtrans, which SQL
cannot read), so LOCK_HOLDERS finds no holder: REVOKING for as long as the holder liked, as
before 70z. The revocation's statements are now watched (postgres_waits.py): the transaction
one waits on, which pg_locks names, is ended.

pglease 2 (closed by review 71j): the same flood of objects in the lease's own schema (review
70n, schemas 2: every lease has one where the admin may create in `dbname`): 8000 enum types
(or tables, functions, operators, ...) failed `DROP OWNED` alike. Its objects are now dropped
kind by kind in bounded transactions first (postgres_drops.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import drop_flooded
from tests.test_review71b_refuted import grant_in_savepoint, revoked_past_second
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

_FLOOD = 20_000  # objects: beyond the test server's lock table (64 x (100 + 8) slots)


def _large_objects(orders: OrdersDb, dbname: str, role: str) -> int:  # noqa: F811
    with orders.server.connect(dbname=dbname) as admin:
        (count,) = admin.execute(
            "SELECT count(*) FROM pg_largeobject_metadata WHERE lomowner::regrole::text = %s",
            (role,),
        ).fetchone()
    return int(count)


@pytest.mark.parametrize("elsewhere", [False, True])
def test_a_flood_of_large_objects_cannot_keep_a_lease_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    elsewhere: bool,
) -> None:
    """71b pglease 1: a read-only lease creates 20000 large objects (in the secret's database,
    or in `postgres`, which PUBLIC may connect to): its revocation's DROP OWNED failed "out of
    shared memory" at every retry, the lease REVOKING for good. It ends REVOKED, its role and
    its large objects gone."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    try:
        issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        dbname = "postgres" if elsewhere else orders.dbname
        with login(orders, {**issued.credential.reveal(), "dbname": dbname}) as session:
            session.execute("SELECT count(lo_create(0)) FROM generate_series(1, %s)", (_FLOOD,))
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        assert _large_objects(orders, dbname, role) == 0
    finally:
        broker.close()


def test_a_flood_of_objects_in_the_leases_schema_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71b pglease 2: a lease creates 8000 enum types in its own schema (a transaction each):
    its revocation's DROP OWNED fails "out of shared memory" at every retry."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    role = ""
    try:
        issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            session.execute(
                "DO $$BEGIN FOR i IN 1..8000 LOOP "
                "EXECUTE format('CREATE TYPE e%s AS ENUM ()', i); COMMIT; END LOOP; END$$"
            )
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
    finally:
        broker.close()
        drop_flooded(orders, role)


@pytest.mark.parametrize("prepared", [False, True])
def test_an_open_write_to_the_leases_large_object_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    prepared: bool,
) -> None:
    """71b pglease 3: the first lease lets the second write its large object; the second
    writes it (`lo_put`) in a transaction it keeps open (or prepares): the first's revocation
    waited on the data row, failed its lock timeout at every retry, REVOKING. It ends REVOKED,
    the writer ended (its prepared transaction rolled back)."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # the step it blocks fails fast
    large_object_written(
        tmp_path, world, orders, lambda put: [put], "review71b_pglease3" if prepared else None
    )


def large_object_written(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    wrapped: Callable[[str], list[str]],
    prepare_as: str | None,
) -> None:
    """The first lease lets the second write its large object; the second writes it (`lo_put`,
    in the statements `wrapped` makes of it) and holds that open: the first ends REVOKED."""

    def held(holder: psycopg.Connection[Any], role: str, other: str, first: Any) -> list[str]:
        with login(orders, first.credential.reveal()) as session:
            (oid,) = session.execute("SELECT lo_from_bytea(0, 'kept')").fetchone()
            session.execute(f'GRANT SELECT, UPDATE ON LARGE OBJECT {oid} TO "{other}"')
        return wrapped(f"SELECT lo_put({oid}, 0, 'held')")

    revoked_past_second(
        tmp_path, world, orders, scope="orders:read", held=held, prepare_as=prepare_as
    )


# libxml's XPath takes no interrupt: seconds of a session `pg_terminate_backend` cannot end
_STUCK = (
    "SELECT xpath('count(//b[count(preceding::b) >= 0])', xmlparse(document '<a>' || "
    "(SELECT string_agg('<b>' || i || '</b>', '') FROM generate_series(1, 14000) i) || '</a>'))"
)


def _stuck(orders: OrdersDb, credential: dict[str, Any], *, row: bool) -> Any:  # noqa: F811
    """A session of the lease busy in `_STUCK` (`row`: in a transaction holding its role's
    row), returned once the server runs it."""
    session = login(orders, credential)
    if row:
        session.execute("BEGIN")
        session.execute(
            psycopg.sql.SQL("ALTER ROLE CURRENT_USER PASSWORD {}").format(
                psycopg.sql.Literal(credential["password"])
            )
        )
    pid = session.info.backend_pid
    session.pgconn.send_query(_STUCK.encode())
    deadline = time.monotonic() + 10
    with orders.server.connect(dbname=orders.dbname) as admin:
        while time.monotonic() < deadline:  # no timing asserted: the query is seen running
            found = admin.execute(
                "SELECT query FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (pid,)
            ).fetchone()
            if found is not None and "xpath" in found[0]:
                return session
            time.sleep(0.002)
    raise AssertionError("the session's query never ran")


@contextmanager
def revoked_past_stuck(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    *,
    row: bool,
    made: str = "",
) -> Iterator[Any]:
    """Issue a lease, run `made` in a session of it, leave a session of it in `_STUCK` (`row`:
    holding its role's row) and revoke it (REVOKING or not); yields a new session of its
    credential, or None when it logs in no more (NOLOGIN)."""
    broker = setup(tmp_path, world, orders, terminate_wait_ms=100)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    credential = issued.credential.reveal()
    if made:
        with login(orders, credential) as session:
            session.execute(made)
    stuck = _stuck(orders, credential, row=row)
    try:
        broker.revoke(agent, issued.lease_id, now=now())
        try:
            again = login(orders, credential)
        except psycopg.OperationalError:
            yield None
            return
        with again:
            yield again
    finally:
        stuck.pgconn.finish()  # its server process ends at its next interrupt check
        broker.close()


@pytest.mark.parametrize("row", [False, True])
def test_a_session_that_takes_no_interrupt_cannot_keep_the_lease_working(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    row: bool,
) -> None:
    """71b pglease 4: the lease's session runs seconds of libxml XPath (`row`: after changing
    its own password in the open transaction): its revocation failed at once, the role LOGIN
    with every privilege, and the holder logged in again and read on. After the revocation
    (REVOKING or not), the lease's credential logs in no more, or reads nothing."""
    with revoked_past_stuck(tmp_path, world, orders, row=row) as again:
        if again is not None:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                again.execute("SELECT id FROM orders")


def test_a_grant_to_the_lease_in_a_released_savepoint_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71b pglease 5: 70z's open GRANT made in a savepoint, then released: the revocation's
    REVOKE waited on the row at every retry, REVOKING (closed by review 72q, savepoint 1: the
    revocation's statements are watched, and the transaction one waits on is ended). Its
    statements wait 3 s for a lock: the watcher sees the wait well before."""
    grant_in_savepoint(tmp_path, world, orders, monkeypatch, release=True, lock_ms=3000)
