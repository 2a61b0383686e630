"""Review 50c, outages 1: a member with leases of a postgres secret whose server stopped
answering cost the broker's single thread two connect timeouts (10 s each by default, up to
60 s) at every issue it asked for (the engine's, then the revocation of the aborted lease),
within its issue budget: 600 in a burst, then one a second, so one member held the thread
for hours, every other agent's issue and every feed's revocation queued behind it. A connect
that failed after a second or more now marks the server unreachable for ten times what it
cost (`troth.secrets.engines.outages`): calls to it meanwhile fail at once, so a dead server
costs at most ~10% of the thread; the aborted leases stay REVOKING for the sweeps.

No server here: `psycopg.connect` is replaced by one that costs `CONNECT_TIMEOUT` of a fake
clock and fails, or connects to nothing at all once the server is "back" (the revocations are
then stubbed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.engines.postgres import PostgresEngine

psycopg = pytest.importorskip("psycopg")

CONNECT_TIMEOUT = 10.0
CONFIG = {
    "scopes": ["read"],
    "ttl": 60,
    "max_ttl": 600,
    "host": "db.invalid",
    "port": 5432,
    "dbname": "orders",
    "user": "admin",
    "templates": {"read": "reader"},
}


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_dead_postgres_server_costs_a_member_issue_loop_a_bounded_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 issues against a server that does not answer: one connect timeout in all (the
    first issue's), not two per issue; every aborted lease stays REVOKING for the sweeps."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"db": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("db", "postgres", CONFIG, b"admin-password", now=NOW)
    clock = _Clock()
    engine = broker.engines["postgres"]
    assert isinstance(engine, PostgresEngine)
    monkeypatch.setattr("troth.secrets.engines.outages.monotonic", clock)
    connects: list[str] = []

    def dead(**kwargs: Any) -> Any:
        connects.append(str(kwargs.get("host")))
        clock.now += CONNECT_TIMEOUT
        raise psycopg.OperationalError("connection timeout expired")

    monkeypatch.setattr(psycopg, "connect", dead)
    agent = world.credential_a()
    for n in range(20):
        with pytest.raises(SecretError) as failed:
            broker.issue(agent, "db", now=NOW + n)
        assert failed.value.reason is SecretFailure.ENGINE_FAILED
        clock.now += 1.0  # (one a second: the member's issue budget refill)
    assert len(connects) <= 2, len(connects)  # (one at most when the window ended)
    states = {lease.state for lease in broker.leases(agent, include_ended=True)}
    assert states == {LeaseState.REVOKING}


def test_a_server_is_tried_again_after_its_window_and_a_fast_failure_marks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connect that failed after 10 s marks its server for 100 s (`OUTAGE_FACTOR`), then it
    is tried again; one that failed at once (refused, a wrong password) marks nothing, so no
    caller makes a server look down to the others for longer than it waited."""
    from troth.secrets.engines import outages

    clock = _Clock()
    monkeypatch.setattr(outages, "monotonic", clock)
    marks = outages.Outages()
    started = clock()
    clock.now += CONNECT_TIMEOUT
    marks.failed("a", started)
    with pytest.raises(SecretError):
        marks.check("a", "a")
    marks.check("b", "b")  # another server is tried
    clock.now += CONNECT_TIMEOUT * outages.OUTAGE_FACTOR
    marks.check("a", "a")  # tried again
    marks.failed("c", clock())  # failed at once
    marks.check("c", "c")
