"""Review 49e against a real PostgreSQL server. A lease's own session may change its role's
password (any role may) in a transaction it keeps open, holding the role's pg_authid row:

- renewals 1: each renewal its agent asked for then held the node database's write lock for
  the lock timeout (5 s), since the engine's round trips ran inside the transaction that wrote
  the renewal (tests/test_review49e_secrets.py has the library-level tests);
- revocations 1: the revocation's first step, `ALTER ROLE ... NOLOGIN`, waited the lock
  timeout and failed before any session was ended, at every retry: a revoked lease kept its
  session reading for as long as it kept that transaction open.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.test_review49e_secrets import write_locked
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    orders,
    world,
)
from tests.test_secrets_postgres import login as pg_login
from tests.test_secrets_postgres import now as pg_now
from tests.test_secrets_postgres import setup as pg_setup
from troth.credentials import VerifiedCredential
from troth.errors import SecretError, SecretFailure
from troth.secrets import LeaseState
from troth.secrets.broker import Broker, IssuedLease
from troth.secrets.engines import postgres as postgres_engine
from troth.secrets.lease import LeaseId


def test_an_agent_holding_its_roles_row_lock_leaves_the_node_database_free(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against PostgreSQL: the lease's own session changes its password in a transaction it
    keeps open (any role may), so the admin's `ALTER ROLE ... VALID UNTIL` of each renewal its
    agent asks for waits the lock timeout (5 s). While it waits, node.db's write lock is
    free (it was held: 5 s of every other writer of the node per renewal, one a second)."""
    import psycopg

    # the renewal's wait on its role's row as long as it was (it is 1 ms now: revocations 1,
    # review 50c renewals 1), so that the test sees it waiting
    monkeypatch.setattr(postgres_engine, "RENEW_ROW_LOCK_MS", 5000)
    path = tmp_path / "node.db"
    broker, agent, issued, role, session = lease_holding_its_row(tmp_path, world, orders)
    worker, outcome = renewing(broker, agent, issued.lease_id)
    try:
        with orders.server.connect() as watcher:
            while not outcome:  # until the admin's ALTER ROLE waits for the agent's lock
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE %s",
                    (f"ALTER ROLE%{role}%VALID UNTIL%",),
                ).fetchone()
                if waiting is not None and waiting[0]:
                    break
            assert not outcome, outcome  # it was waiting
            assert not write_locked(path)
    finally:
        worker.join()
        session.execute("ROLLBACK")
        session.close()
    assert isinstance(outcome[0], SecretError)
    assert outcome[0].reason is SecretFailure.ENGINE_FAILED
    lease = broker.book.lease(issued.lease.handle)
    assert lease is not None
    assert lease.expires_at == issued.lease.expires_at  # not renewed
    with contextlib.suppress(psycopg.Error):
        broker.revoke(agent, issued.lease_id, now=pg_now())
    broker.close()


def sql_password(role: str) -> Any:
    from psycopg import sql

    return sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(role), sql.Literal("chosen-by-the-agent")
    )


def lease_holding_its_row(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> tuple[Broker, VerifiedCredential, IssuedLease, str, Any]:
    """agent a's lease, whose own session changed its role's password in a transaction it
    keeps open (any role may), holding the role's pg_authid row: the broker, the agent's
    credential, the lease, its role and that session."""
    broker = pg_setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=pg_now())
    login = issued.credential.reveal()
    role = str(login["user"])
    session = pg_login(orders, login)
    session.execute("BEGIN")
    session.execute(sql_password(role))
    return broker, agent, issued, role, session


def renewing(
    broker: Broker, agent: VerifiedCredential, lease_id: LeaseId
) -> tuple[threading.Thread, list[BaseException | None]]:
    """A renewal of `lease_id` started in a thread: the thread, and where its outcome (None
    or what it raised) goes once it ends."""
    outcome: list[BaseException | None] = []

    def renew() -> None:
        try:
            broker.renew(agent, lease_id, now=pg_now())
        except BaseException as exc:  # (a lock timeout: ENGINE_FAILED)
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=renew)
    worker.start()
    return worker, outcome


def test_a_lease_holding_its_own_roles_row_lock_is_revoked_all_the_same(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The lease's session changes its own password in a transaction it keeps open (any role
    may): its role's pg_authid row stays locked, so the revocation's first step, `ALTER ROLE
    ... NOLOGIN`, waited the lock timeout and failed, at every retry, before any session was
    ended: the revoked (or expired, or feed-revoked) lease kept its open session reading, for
    as long as it kept that transaction open. Now its sessions end first."""
    import psycopg

    broker, agent, issued, role, session = lease_holding_its_row(tmp_path, world, orders)
    try:
        lease = broker.revoke(agent, issued.lease_id, now=pg_now())
        assert lease.state is LeaseState.REVOKED
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT id FROM orders").fetchall()
        assert orders.roles(role) == set()
    finally:
        with contextlib.suppress(psycopg.Error):
            session.execute("ROLLBACK")
        session.close()
        broker.close()
