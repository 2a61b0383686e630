"""The postgres engine against a real PostgreSQL server: a lease is a role that can read what its
template may, revocation (by the agent, by expiry, by the revocation feed) ends its open
sessions, the broker survives SIGKILL at any point without losing a lease or leaving a role
behind, and the admin password (the upstream secret) appears nowhere."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import lease_worker
from tests.support.forked import ForkedCall
from tests.support.leases import Leaks, LeaseWorld, captured_logs, make_world, open_broker
from tests.support.postgres import ADMIN_PASSWORD, PgServer
from troth.credentials import RevocationKind
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, LeaseHandle, LeaseState, SweepReport

F = SecretFailure
SECRET = "orders-db"


@dataclass
class OrdersDb:
    server: PgServer
    dbname: str
    reader: str
    writer: str
    earlier: frozenset[str] = frozenset()
    """Lease roles other tests left in the cluster when this database was made (roles are per
    cluster, and tests that end a broker mid-lease leave theirs)."""

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

    def lease_roles(self) -> set[str]:
        """The lease roles (`tl_`) made since this database was: this test's."""
        return self.roles("tl_") - self.earlier


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
    db.earlier = frozenset(db.roles("tl_"))
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


def prepare_write(orders: OrdersDb, credential: dict[str, Any], gid: str) -> None:
    """The lease logged in with `credential` writes (9999, 1) into orders in a transaction it
    prepares as `gid` (left prepared: the revocation must end it)."""
    with login(orders, credential) as session:
        session.execute("BEGIN")
        session.execute("INSERT INTO orders VALUES (9999, 1)")
        session.execute(f"PREPARE TRANSACTION '{gid}'")


def assert_session_ended(session: Any) -> None:
    import psycopg

    with pytest.raises(
        psycopg.OperationalError, match=r"terminating connection due to administrator command"
    ):
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
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match=r"permission denied for table orders"
        ):
            session.execute("INSERT INTO orders VALUES (1, 1)")
        lease = broker.revoke(agent, issued.lease_id, now=now())
    assert lease.state is LeaseState.REVOKED
    assert_session_ended(session)
    with pytest.raises(
        psycopg.OperationalError,
        match="password authentication failed",
    ):
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


def _lease_worker(db_path: str, seed: str, point: str) -> None:
    """tests.support.lease_worker's run, TROTH_CRASH_AT `point` (in the forked worker)."""
    os.environ["TROTH_CRASH_AT"] = point
    lease_worker.main(db_path, seed)


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
        # a process of its own, forked from this one (an interpreter's start and imports were
        # most of each round's time), its crash point armed as lease_worker arms it
        point = points[round_no % len(points)] if round_no % 2 == 0 else ""
        worker = ForkedCall(_lease_worker, str(db_path), str(round_no), point)
        first = worker.stdout.readline()
        if first.strip() == "ready":
            try:  # a crash point kills the worker itself; else SIGKILL at a random moment
                worker.wait(timeout=5 if point else rng.uniform(0.05, 0.6))
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
    # One recovery tries the due revocations within the sweep's budgets (troth.secrets.sweep):
    # on a loaded machine it leaves some to the next sweeps (`deferred`), and a revocation that
    # failed in a worker's recovery (a lock the killed worker's session still held) waits out its
    # backoff (`revoke_backoff`). A node sweeps again; so does the test, restarting the broker
    # each time (its first sweep lists the orphans), until no lease is left unrevoked.
    deadline = time.monotonic() + 60
    reports: list[SweepReport] = []
    while True:
        _db, final = open_broker(db_path, now=now())
        reports.append(final.recover(now()))
        leases = {h: final.book.lease(LeaseHandle.parse(h)) for h in issued}
        left = {
            h: lease
            for h, lease in leases.items()
            if lease is None or lease.state is not LeaseState.REVOKED
        }
        if len(reports) == 1:  # past its printed expiry, every lease was ended by the first
            ended = (LeaseState.REVOKING, LeaseState.REVOKED)
            assert all(lease and lease.state in ended for lease in leases.values()), left
        roles = orders.roles(prefix)
        stuck = final.stuck_revocations()
        final.close()
        _db.close()
        if (not left and not roles) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(report.failed == 0 for report in reports), reports
    assert not left, (left, reports, stuck)  # every acknowledged lease ended REVOKED
    assert roles == set(), (roles, reports)  # every role of every lease, and every orphan


# -- a lease holds copies of its templates' privileges, never a membership --------------------


def _admin_sql(orders: OrdersDb, *statements: str) -> None:
    with orders.server.connect(dbname=orders.dbname) as conn:
        for statement in statements:
            conn.execute(statement)


def test_a_lease_holds_copies_of_its_templates_privileges_not_a_membership(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb
) -> None:
    """The reader template reads `orders`, `customers.city` (a column) and calls `total()` (no
    PUBLIC EXECUTE); it inherits SELECT on `items` from a group role. The lease's role holds
    each as its own grant: it is a member of no role, so SET ROLE <template> and ALTER ...
    OWNER TO <template> are refused, and it holds no grant option."""
    import psycopg

    group = f"group_{orders.reader}"
    _admin_sql(
        orders,
        "CREATE TABLE customers (card text, city text); CREATE TABLE items (sku text)",
        "CREATE FUNCTION total() RETURNS int LANGUAGE sql AS 'SELECT 20'",
        "REVOKE EXECUTE ON FUNCTION total() FROM PUBLIC",
        f"GRANT SELECT (city) ON customers TO {orders.reader}",
        f"GRANT EXECUTE ON FUNCTION total() TO {orders.reader}",
        f"CREATE ROLE {group} NOLOGIN; GRANT SELECT ON items TO {group}",
        f"GRANT {group} TO {orders.reader}",
    )
    broker = setup(tmp_path, world, orders)
    issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    role = issued.lease.engine_ref
    with login(orders, issued.credential.reveal()) as session:
        assert session.execute("SELECT id FROM orders").fetchall() == [(4471,)]
        assert session.execute("SELECT city FROM customers").fetchall() == []
        assert session.execute("SELECT total()").fetchone() == (20,)
        assert session.execute("SELECT count(*) FROM items").fetchone() == (0,)
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match=r"permission denied for table customers"
        ):
            session.execute("SELECT card FROM customers")
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege,
            match='permission denied to set role "reader_',
        ):
            session.execute(f"SET ROLE {orders.reader}")
        session.execute("CREATE TABLE scratch (x int)")
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege,
            match='must be member of role "reader_',
        ):
            session.execute(f"ALTER TABLE scratch OWNER TO {orders.reader}")
    with orders.server.connect(dbname=orders.dbname) as admin:
        member_of = admin.execute(
            "SELECT count(*) FROM pg_auth_members WHERE member = %s::regrole", (role,)
        ).fetchone()
        grant_option = admin.execute(
            "SELECT has_table_privilege(%s, 'orders', 'SELECT WITH GRANT OPTION')", (role,)
        ).fetchone()
    assert member_of == (0,)
    assert grant_option == (False,)
    broker.revoke(world.credential_a(), issued.lease_id, now=now())
    assert role not in orders.roles("tl_")
    broker.close()


@pytest.mark.parametrize(
    ("statements", "refusal"),
    [
        (["CREATE TABLE owned (x int)", "ALTER TABLE owned OWNER TO {t}"], "owns an object"),
        (["ALTER ROLE {t} CREATEDB"], "it has CREATEDB"),
        (["GRANT pg_read_all_data TO {t}"], "the built-in role pg_read_all_data"),
        (
            ["ALTER TABLE orders ENABLE ROW LEVEL SECURITY", "CREATE POLICY p ON orders TO {t}"],
            "row-level security policy",
        ),
        (["CREATE ROLE g_{t}", "ALTER ROLE {t} NOINHERIT", "GRANT g_{t} TO {t}"], "SET ROLE only"),
        (["CREATE ROLE g_{t}", "GRANT g_{t} TO {t} WITH ADMIN OPTION"], "ADMIN OPTION on g_"),
        (
            [
                "CREATE ROLE g_{t}",
                "GRANT g_{t} TO {t}",
                "CREATE TABLE owned (x int)",
                "ALTER TABLE owned OWNER TO g_{t}",
            ],
            "g_reader_",  # a role it inherits from owns an object
        ),
    ],
    ids=["owner", "attribute", "predefined", "policy", "noinherit", "admin", "group-owner"],
)
def test_a_template_whose_rights_cannot_be_copied_is_refused(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb, statements: list[str], refusal: str
) -> None:
    """An owner's rights, a role attribute, a predefined role's rights, a policy's, what only
    SET ROLE reaches, an ADMIN OPTION: none is an ACL entry a lease's role could be granted.
    The issue is refused (CONFIG_INVALID, naming why) before any role exists."""
    _admin_sql(orders, *(s.format(t=orders.reader) for s in statements))
    broker = setup(tmp_path, world, orders)
    with pytest.raises(SecretError) as caught:
        broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    assert caught.value.reason is F.CONFIG_INVALID
    assert f"template {orders.reader} cannot be copied" in caught.value.detail
    assert refusal in caught.value.detail
    assert orders.roles(f"tl_{broker.keys.broker_id}_") == set()
    # the other scope's template is fine
    broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
    broker.close()


def test_a_renewal_reconciles_the_copied_privileges(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb
) -> None:
    """The operator maps `orders:read` to a narrower template (no `customers`, but `items`):
    the renewal revokes SELECT on `customers` from the lease's role, grants SELECT on `items`,
    and ends the session that read `customers` (an open cursor keeps reading after a REVOKE).
    A renewal that takes nothing away leaves sessions alone; one whose template can no
    longer be copied is refused, the role untouched."""
    import psycopg

    narrow = f"narrow_{orders.reader}"
    _admin_sql(
        orders,
        "CREATE TABLE customers (card text); INSERT INTO customers VALUES ('4111')",
        "CREATE TABLE items (sku text)",
        f"GRANT SELECT ON customers TO {orders.reader}",
        f"CREATE ROLE {narrow} NOLOGIN; GRANT SELECT ON orders, items TO {narrow}",
    )
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    credential = issued.credential.reveal()
    session = login(orders, credential)
    assert session.execute("SELECT card FROM customers").fetchall() == [("4111",)]
    broker.renew(agent, issued.lease_id, ttl=300, now=now())  # nothing taken away
    assert session.execute("SELECT card FROM customers").fetchall() == [("4111",)]
    broker.put_secret(
        SECRET,
        "postgres",
        orders.config(templates={"orders:read": narrow, "orders:write": orders.writer}),
        ADMIN_PASSWORD.encode(),
        now=now(),
    )
    broker.renew(agent, issued.lease_id, ttl=300, now=now())
    assert_session_ended(session)
    with login(orders, credential) as again:
        assert again.execute("SELECT count(*) FROM items").fetchone() == (0,)
        assert again.execute("SELECT id FROM orders").fetchall() == [(4471,)]
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match=r"permission denied for table customers"
        ):
            again.execute("SELECT card FROM customers")
        _admin_sql(orders, f"ALTER ROLE {narrow} CREATEROLE")
        with pytest.raises(SecretError) as caught:
            broker.renew(agent, issued.lease_id, ttl=300, now=now())
        assert caught.value.reason is F.CONFIG_INVALID
        assert again.execute("SELECT count(*) FROM items").fetchone() == (0,)
    broker.close()


def test_a_privilege_the_admin_cannot_grant_fails_the_issue(
    tmp_path: Path, world: LeaseWorld, orders: OrdersDb
) -> None:
    """PostgreSQL only warns when a GRANT grants nothing (the admin holds SELECT on `orders`
    without GRANT OPTION): the engine reads the role's privileges back and fails the issue
    rather than hand out a lease narrower than its template."""
    admin = f"admin_{orders.reader}"
    _admin_sql(
        orders,
        f"CREATE ROLE {admin} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'",
        f"GRANT pg_signal_backend TO {admin}; GRANT SELECT ON orders TO {admin}",
    )
    broker = setup(tmp_path, world, orders, user=admin)
    with pytest.raises(SecretError) as caught:
        broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    assert caught.value.reason is F.ENGINE_FAILED
    assert "lacks SELECT on table public.orders" in caught.value.detail
    broker.close()
    with orders.server.connect(dbname=orders.dbname) as conn:  # a CREATEROLE admin may not
        for role in orders.roles(f"tl_{broker.keys.broker_id}_"):  # DROP OWNED (PostgreSQL 15)
            conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
