"""Review 50c against a real PostgreSQL server. Renewals 1: a lease's own session may hold its
role's pg_authid row (it changed its own password in a transaction it keeps open: any role
may), and each renewal its agent asked for then waited `OWN_ROW_LOCK_MS` (200 ms) of the
broker's thread for that row before it was refused. A renewal now waits for it at most
`RENEW_ROW_LOCK_MS` (1 ms, the least lock timeout PostgreSQL has): refused at once."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.test_review49e_postgres import lease_holding_its_row, renewing
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    orders,
    world,
)
from tests.test_secrets_postgres import now as pg_now
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets.engines import postgres as postgres_engine

HELD = 600_000  # ms: the revocations' wait, made long enough that a renewal waiting it hangs


def test_a_renewal_against_its_own_sessions_row_lock_is_refused_without_waiting(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lease's session holds its role's row (a password change in an open transaction);
    the revocations' wait for that row (and the statement timeout) is made 10 minutes: the
    renewal its agent asks for is refused (ENGINE_FAILED, not renewed) within 30 s all the
    same, so it never waited the revocations' wait (it waited 200 ms of the broker's thread
    before). Was a strict xfail until a renewal waited `RENEW_ROW_LOCK_MS`."""
    import psycopg

    monkeypatch.setattr(postgres_engine, "OWN_ROW_LOCK_MS", HELD)
    monkeypatch.setattr(limits, "POSTGRES_STATEMENT_TIMEOUT_MS", HELD)
    broker, agent, issued, _, session = lease_holding_its_row(tmp_path, world, orders)
    worker, outcome = renewing(broker, agent, issued.lease_id)
    try:
        worker.join(30)
        finished = not worker.is_alive()
    finally:
        session.execute("ROLLBACK")
        session.close()
        worker.join()
    assert finished, "the renewal waited for the row its lease's session holds"
    assert isinstance(outcome[0], SecretError), outcome
    assert outcome[0].reason is SecretFailure.ENGINE_FAILED
    lease = broker.book.lease(issued.lease.handle)
    assert lease is not None
    assert lease.expires_at == issued.lease.expires_at  # not renewed
    with contextlib.suppress(psycopg.Error):
        broker.revoke(agent, issued.lease_id, now=pg_now())
    broker.close()
