"""Review 72q, savepoint: the rows a revocation must change, updated in a savepoint its holder
then released (PostgreSQL tests: TROTH_REQUIRE_PG=1).

savepoint 1: 71b pglease 5 in general. A row updated in a subtransaction keeps the
subtransaction's id in its `xmax`; once the savepoint is released, that id's lock is gone from
pg_locks (a waiter on the row waits on the top transaction, which it finds through pg_subtrans,
which SQL cannot read), so the `updaters` of reviews 70w and 70z (`postgres_locks.LOCK_HOLDERS`)
found no holder: 70w's GRANT on the lease's schema (a grant option it gave) kept `DROP OWNED`
waiting, 71b pglease 3's `lo_put` on its large object kept the unlink waiting, and 70z's widening
GRANT to the lease (71b pglease 5) kept its `REVOKE` waiting, each failing its lock timeout at
every retry, REVOKING for as long as the holder kept its transaction open (or, prepared, for
good). A revocation's statements in a database now run watched from a second admin session
(`postgres_waits`): a statement waiting on a transaction (a row) names in pg_locks the top
transaction it waits on, and that transaction's session is ended (its prepared transaction
rolled back), a lease role's only: an application's is left, its statement failing its lock
timeout as before, and the sweep finishes the revocation once it committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import assert_commits_then_revoked
from tests.test_review71b_pglease import large_object_written
from tests.test_review71b_refuted import revoked_past_second
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

# the revocation's statement waits this long for the row: far longer than the watcher takes to
# see it waiting, so the tests do not race it (a failure takes this long, once)
_LOCK_MS = 3000


_PREPARED = "review72q_savepoint1"


def _prepared(prepared: bool) -> str | None:
    """The name the holder's transaction is prepared as (None: left open)."""
    return _PREPARED if prepared else None


def _released(statement: str) -> list[str]:
    """`statement` in a savepoint released at once: its subtransaction's id in the rows."""
    return ["SAVEPOINT s", statement, "RELEASE SAVEPOINT s"]


@pytest.mark.parametrize("prepared", [False, True])
def test_a_released_grant_on_the_leases_schema_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    prepared: bool,
) -> None:
    """72q savepoint 1: 70w's attack (the second lease grants PUBLIC the USAGE on the first's
    schema the first let it grant) in a savepoint it releases, its transaction left open (or
    prepared): `DROP OWNED` waited on the schema's row, REVOKING. It ends REVOKED, the holder
    ended (its prepared transaction rolled back)."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", _LOCK_MS)

    def held(holder: psycopg.Connection[Any], role: str, other: str, first: Any) -> list[str]:
        with login(orders, first.credential.reveal()) as session:
            session.execute(f'GRANT USAGE ON SCHEMA "{role}" TO "{other}" WITH GRANT OPTION')
        return _released(f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')

    revoked_past_second(
        tmp_path, world, orders, scope="orders:write", held=held, prepare_as=_prepared(prepared)
    )


@pytest.mark.parametrize("prepared", [False, True])
def test_a_released_write_to_the_leases_large_object_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    prepared: bool,
) -> None:
    """72q savepoint 1: 71b pglease 3's attack (the second lease writes the first's large
    object, `lo_put`) in a savepoint it releases, its transaction left open (or prepared): the
    unlink waited on the data row, REVOKING. It ends REVOKED, the writer ended (its prepared
    transaction rolled back)."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", _LOCK_MS)
    large_object_written(tmp_path, world, orders, _released, _prepared(prepared))


def test_a_prepared_released_grant_to_the_lease_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72q savepoint 1: 71b pglease 5's attack (70z's widening GRANT to the lease, on the second
    lease's table, in a savepoint released) in a transaction the second then prepares: the
    revocation's REVOKE waited on the row for good, REVOKING. It ends REVOKED, the prepared
    transaction rolled back."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", _LOCK_MS)

    def held(holder: psycopg.Connection[Any], role: str, other: str, first: Any) -> list[str]:
        holder.execute(f'CREATE TABLE "{other}".t (x int)')
        holder.execute(f'GRANT SELECT ON "{other}".t TO "{role}"')
        return _released(f'GRANT INSERT ON "{other}".t TO "{role}"')

    revoked_past_second(
        tmp_path, world, orders, scope="orders:write", held=held, prepare_as=_PREPARED
    )


def test_an_applications_released_grant_to_the_lease_is_left_to_commit(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72q savepoint 1 (what the fix must leave): an application's (no lease's) widening GRANT
    to the lease in a savepoint it released, its transaction open, is seen waited on and left
    (review 69w, wave4b 1): the revocation stays REVOKING, the application's write commits, the
    sweep completes the revocation."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # it fails: no race to lose
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    role = str(issued.lease.engine_ref)
    with orders.server.connect(dbname=orders.dbname) as admin:
        admin.execute(f'CREATE TABLE app72q (x int); GRANT SELECT ON app72q TO "{role}"')
    app = orders.server.connect(dbname=orders.dbname, autocommit=False)
    try:
        for statement in _released(f'GRANT INSERT ON app72q TO "{role}"'):
            app.execute(statement)
        app.execute("INSERT INTO orders VALUES (7772, 1)")
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKING
        assert_commits_then_revoked(app, orders, broker, issued.lease.handle, 7772, at=now())
    finally:
        app.close()
        broker.close()
