"""The postgres engine against a real PostgreSQL server: a lease is a role that can read what its
template may, revocation (by the agent, by expiry, by the revocation feed) ends its open
sessions, the broker survives SIGKILL at any point without losing a lease or leaving a role
behind, and the admin password (the upstream secret) appears nowhere."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import Leaks, LeaseWorld, captured_logs, make_world, open_broker
from tests.support.postgres import ADMIN_PASSWORD, PgServer
from troth.credentials import RevocationKind
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, LeaseHandle, LeaseState

F = SecretFailure
SECRET = "orders-db"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class OrdersDb:
    server: PgServer
    dbname: str
    reader: str
    writer: str

    def config(self, **changes: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "scopes": ["orders:read", "orders:write"],
            "ttl": 60,
            "max_ttl": 600,
            "host": self.server.host,
            "port": self.server.port,
            "dbname": self.dbname,
            "user": self.server.user,
            "templates": {"orders:read": self.reader, "orders:write": self.writer},
            "sslmode": "disable",
        }
        settings.update(changes)
        return settings

    def roles(self, prefix: str) -> set[str]:
        with self.server.connect() as conn:
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)
            ).fetchall()
        return {name for (name,) in rows}


@pytest.fixture
def orders(pg_server: PgServer) -> OrdersDb:
    """A fresh database with an `orders` table and two template roles (roles are per cluster,
    so their names are per test)."""
    tag = uuid.uuid4().hex[:10]
    db = OrdersDb(pg_server, f"orders_{tag}", f"reader_{tag}", f"writer_{tag}")
    with pg_server.connect() as admin:
        admin.execute(f"CREATE DATABASE {db.dbname}")
    with pg_server.connect(dbname=db.dbname) as conn:
        conn.execute(
            "CREATE TABLE orders (id int, total int); INSERT INTO orders VALUES (4471, 20)"
        )
        conn.execute(f"CREATE ROLE {db.reader} NOLOGIN; GRANT SELECT ON orders TO {db.reader}")
        conn.execute(f"CREATE ROLE {db.writer} NOLOGIN; GRANT INSERT ON orders TO {db.writer}")
    return db


def now() -> int:
    return int(time.time())  # PostgreSQL checks VALID UNTIL against its own clock


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(now())


def setup(tmp_path: Path, world: LeaseWorld, orders: OrdersDb, **config: Any) -> Broker:
    policy = AllowListPolicy(
        {world.agent_a.identifier: {SECRET: None}, world.agent_b.identifier: {SECRET: None}}
    )
    _db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy)
    broker.put_secret(
        SECRET, "postgres", orders.config(**config), ADMIN_PASSWORD.encode(), now=now()
    )
    return broker


def login(orders: OrdersDb, credential: dict[str, Any]) -> Any:
    import psycopg

    return psycopg.connect(
        host=str(credential["host"]),
        port=int(credential["port"]),
        dbname=str(credential["dbname"]),
        user=str(credential["user"]),
        password=str(credential["password"]),
        autocommit=True,
        sslmode="disable",
    )


def assert_session_ended(session: Any) -> None:
    import psycopg

    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1").fetchone()


def test_lease_reads_and_revocation_ends_open_sessions(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb
) -> None:
    import psycopg

    leaks = Leaks()
    with captured_logs(leaks):
        broker = setup(tmp_path, world, orders)
        agent = world.credential_a()
        issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
        credential = issued.credential.reveal()
        session = login(orders, credential)
        assert session.execute("SELECT id, total FROM orders").fetchall() == [(4471, 20)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            session.execute("INSERT INTO orders VALUES (1, 1)")
        lease = broker.revoke(agent, issued.lease_id, now=now())
    assert lease.state is LeaseState.REVOKED
    assert_session_ended(session)
    with pytest.raises(psycopg.OperationalError):
        login(orders, credential)
    assert credential["user"] not in orders.roles("tl_")
    leaks.add(issued.lease, broker.secrets(), *(e.to_json() for _s, e in broker.audit_log.read()))  # type: ignore[union-attr]
    leaks.assert_clean(ADMIN_PASSWORD, str(credential["password"]))
    broker.close()
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert ADMIN_PASSWORD.encode() not in data
        assert str(credential["password"]).encode() not in data


def test_expiry_sweep_ends_open_sessions_and_renew_moves_valid_until(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb
) -> None:
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    start = now()
    issued = broker.issue(agent, SECRET, ttl=30, now=start)
    session = login(orders, issued.credential.reveal())
    lease, _made = broker.renew(agent, issued.lease_id, ttl=300, now=start + 1)
    assert lease.expires_at == start + 301
    with orders.server.connect() as admin:
        (valid_until,) = admin.execute(
            "SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = %s",
            (lease.engine_ref,),
        ).fetchone()
    assert valid_until == start + 301
    report = broker.sweep(start + 302)  # the broker's clock says it expired; the session lives
    assert report.expired == 1
    assert report.failed == 0
    assert_session_ended(session)
    assert lease.engine_ref not in orders.roles("tl_")
    broker.close()


def test_feed_revocation_ends_every_session_of_the_identity(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb
) -> None:
    broker = setup(tmp_path, world, orders)
    a, b = world.credential_a(), world.credential_b()
    sessions = [
        login(orders, broker.issue(a, SECRET, now=now()).credential.reveal()) for _ in range(3)
    ]
    kept = login(orders, broker.issue(b, SECRET, now=now()).credential.reveal())
    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_a.identifier.digest)], now()
    )
    revoked = broker.revoke_for_feed(feed, now=now())
    assert len(revoked) == 3
    for session in sessions:
        assert_session_ended(session)
    assert kept.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    with pytest.raises(SecretError) as caught:
        broker.issue(a, SECRET, now=now())
    assert caught.value.reason is F.REVOKED
    broker.close()


def test_engine_failure_aborts_and_reveals_nothing(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb
) -> None:
    leaks = Leaks()
    with captured_logs(leaks):
        broker = setup(
            tmp_path,
            world,
            orders,
            templates={"orders:read": "no_such_role", "orders:write": orders.writer},
        )
        with pytest.raises(SecretError) as caught:
            broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        assert caught.value.reason is F.ENGINE_FAILED
        ended = broker.leases(world.credential_a(), include_ended=True)
        assert [lease.state for lease in ended] == [LeaseState.REVOKED]
        broker.put_secret(
            SECRET, "postgres", orders.config(), b"wrong-" + ADMIN_PASSWORD.encode(), now=now()
        )
        with pytest.raises(SecretError) as second:
            broker.issue(world.credential_a(), SECRET, now=now())
    leaks.add(caught.value, second.value, caught.value.__cause__, caught.value.__context__)
    leaks.assert_clean(ADMIN_PASSWORD)
    broker.close()


def test_orphan_roles_are_swept(tmp_path: Path, world: LeaseWorld, orders: OrdersDb) -> None:
    broker = setup(tmp_path, world, orders)
    live = broker.issue(world.credential_a(), SECRET, now=now())
    prefix = f"tl_{broker.keys.broker_id}_"
    orphan, stranger = prefix + "00" * 16, f"someone_else_{uuid.uuid4().hex[:6]}"
    with orders.server.connect() as admin:  # a role whose lease row was lost (a power cut)
        admin.execute(f"CREATE ROLE {orphan} LOGIN IN ROLE {orders.reader}")
        admin.execute(f"CREATE ROLE {stranger}")
    assert broker.sweep(now()).orphans == 1
    assert orders.roles(prefix) == {live.lease.engine_ref}
    assert stranger in orders.roles("someone_else_")
    broker.close()


def test_sigkill_mid_issue_and_mid_revoke(tmp_path: Path, orders: OrdersDb) -> None:
    """>= 20 broker processes killed at random moments and at every crash point: after each
    restart no acknowledged lease is lost, acknowledged revocations stay revoked; at the end,
    every expired lease is revoked and no role is left that no lease accounts for."""
    db_path = tmp_path / "node.db"
    world = make_world(now())
    _db, broker = open_broker(db_path, now=now(), policy=AllowListPolicy({}))
    broker.put_secret(SECRET, "postgres", orders.config(), ADMIN_PASSWORD.encode(), now=now())
    prefix = f"tl_{broker.keys.broker_id}_"
    broker.close()
    _db.close()
    del world
    rng = random.Random(1234)
    points = ["before-create", "after-create", "before-drop", "after-drop", "after-revoking"]
    issued: dict[str, int] = {}
    revoked: set[str] = set()
    crashed: list[str] = []
    kills = 0
    for round_no in range(26):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env["TROTH_CRASH_AT"] = points[round_no % len(points)] if round_no % 2 == 0 else ""
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.support.lease_worker", str(db_path), str(round_no)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        first = worker.stdout.readline()
        if first.strip() == "ready":
            try:  # a crash point kills the worker itself; else SIGKILL at a random moment
                worker.wait(timeout=5 if env["TROTH_CRASH_AT"] else rng.uniform(0.05, 0.6))
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGKILL)
        out, err = worker.communicate(timeout=60)  # (a crash point may fire during recovery)
        out = first + out
        assert worker.returncode == -signal.SIGKILL, err
        kills += 1
        for line in out.splitlines():
            words = line.split()
            if words[0] == "issued":
                issued[words[1]] = int(words[2])
            elif words[0] == "revoked":
                revoked.add(words[1])
            elif words[0] == "crash":
                crashed.append(words[1])
        # every acknowledged lease is in the book, every acknowledged revocation holds
        _check, check = open_broker(db_path, now=now())
        for handle in issued:
            lease = check.book.lease(LeaseHandle.parse(handle))
            assert lease is not None, f"lease {handle} lost"
            assert lease.state is not LeaseState.PENDING
            if handle in revoked:
                assert lease.state in (LeaseState.REVOKING, LeaseState.REVOKED)
        check.close()
        _check.close()
    assert kills >= 20
    assert len(issued) >= 20
    assert revoked
    assert set(crashed) == set(points), crashed  # every crash point was hit at least once
    later = max(issued.values()) + 1
    while now() < later:
        time.sleep(0.1)
    _db, final = open_broker(db_path, now=now())
    report = final.recover(now())
    assert report.failed == 0
    leases = [final.book.lease(LeaseHandle.parse(h)) for h in issued]
    assert all(lease is not None and lease.state is LeaseState.REVOKED for lease in leases)
    assert orders.roles(prefix) == set()  # every role of every lease, and every orphan, is gone
    final.close()
