"""A real PostgreSQL server for the postgres lease-engine tests, started from this machine's
binaries by pytest-postgresql's process fixture through `pg_ctl_as_postgres` (research notes
§3): 127.0.0.1 (the fixture's readiness check is TCP), password authentication (with `trust`,
VALID UNTIL is never checked). Skipped with a reason when PostgreSQL is not installed, unless
TROTH_REQUIRE_PG=1 (set by `make test` when the binaries are there)."""

from __future__ import annotations

import glob
import importlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

WRAPPER = Path(__file__).with_name("pg_ctl_as_postgres")
ADMIN_PASSWORD = "canary-pg-admin-" + os.urandom(12).hex()
"""The admin password: the postgres engine's upstream secret, and a canary the tests scan for."""


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def connect(self, **changes: Any) -> Any:
        import psycopg

        args: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "autocommit": True,
        }
        args.update(changes)
        return psycopg.connect(**args)

    def prepared(self, dbname: str, gid: str) -> bool:
        """Whether the prepared transaction `gid` is there (its database `dbname`)."""
        with self.connect(dbname=dbname) as admin:
            found = admin.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (gid,))
            return found.fetchone() is not None

    def end_prepared(self, dbname: str, gid: str, verb: str = "ROLLBACK") -> bool:
        """`verb` (ROLLBACK or COMMIT) PREPARED `gid`, in its database `dbname`, if it is
        there (the tests' clean-up and their applications' commits); whether it was."""
        from psycopg import sql

        with self.connect(dbname=dbname) as admin:
            found = admin.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (gid,))
            if found.fetchone() is None:
                return False
            admin.execute(sql.SQL(verb + " PREPARED {}").format(sql.Literal(gid)))
            return True


def pg_ctl_path() -> str | None:
    """The pg_ctl the wrapper will run, or None when PostgreSQL is not installed."""
    explicit = os.environ.get("TROTH_PG_CTL")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if shutil.which("pg_config"):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if bindir and os.access(os.path.join(bindir, "pg_ctl"), os.X_OK):
            return os.path.join(bindir, "pg_ctl")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return found[-1] if found else None


def _missing(message: str) -> None:
    if os.environ.get("TROTH_REQUIRE_PG") == "1":
        pytest.fail(message)
    pytest.skip(message)


def require_postgres() -> None:
    """Skip the calling test without PostgreSQL's binaries (fail under TROTH_REQUIRE_PG=1)."""
    if pg_ctl_path() is None:
        _missing("PostgreSQL is not installed")


factories: Any
try:
    factories = importlib.import_module("pytest_postgresql.factories")
except ImportError:  # the dev extra is not installed: the fixture below skips
    factories = None
else:
    troth_pg_proc = factories.postgresql_proc(
        executable=str(WRAPPER),
        host="127.0.0.1",
        port=None,
        password=ADMIN_PASSWORD,
        # two-phase commit on, as servers behind XA transaction managers run: a lease's
        # prepared transaction outlives its sessions (review 69r, leases 1). fsync off: what a
        # commit wrote still reaches the kernel before it returns (synchronous_commit is on),
        # so a killed server or session loses nothing a test sees; only a crash of the machine
        # could, and no test makes one. Each commit's and checkpoint's wait for the disk was a
        # good part of the tests' time, and of the server's stop at the end of a run (73f ci)
        postgres_options="-c max_prepared_transactions=8 -c fsync=off",
    )


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    """One PostgreSQL server for the session (its data directory under pytest's basetemp)."""
    if factories is None:
        _missing("pytest-postgresql is not installed (pip install -e '.[dev]')")
    pytest.importorskip("psycopg")
    if pg_ctl_path() is None:
        _missing(
            "PostgreSQL is not installed (apt-get install postgresql; make test does it as root)"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _missing("running as root needs runuser to start PostgreSQL as 'postgres'")
    proc = request.getfixturevalue("troth_pg_proc")
    return PgServer(proc.host, proc.port, proc.user, ADMIN_PASSWORD, "postgres")


def restart(proc: Any, pg_server: PgServer, within: float = 60.0) -> None:
    """Stop and start the session's server (`troth_pg_proc`), then wait until it takes
    connections: its start returns once the postmaster runs, while it may still refuse them
    ("the database system is starting up"; a fresh-clone CI run under load failed so, and
    every PostgreSQL test of that worker after it). AssertionError after `within` s."""
    import psycopg

    proc.stop()
    proc.start()
    deadline = time.monotonic() + within
    while True:
        try:
            with pg_server.connect():
                return
        except psycopg.OperationalError as refused:
            if time.monotonic() > deadline:
                raise AssertionError(f"no connection within {within:g} s") from refused
            time.sleep(0.05)


def postmaster(pg_server: PgServer) -> int:
    """The pid of the PostgreSQL server's postmaster: its backend's parent (proc(5))."""
    with pg_server.connect() as connection:  # read while the backend lives (it ends with it)
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
        stat = Path(f"/proc/{backend}/stat").read_bytes()
    return int(stat[stat.rfind(b")") + 2 :].split()[1])


def assert_revoked_past_holder(
    broker: Any,
    agent: Any,
    lease_id: Any,
    orders: Any,
    holder: Any,
    opened: Sequence[str],
    *,
    at: int,
    prepare_as: str | None = None,
) -> None:
    """In `holder` (another lease's session) begin a transaction running `opened`, left open or
    prepared as `prepare_as`; then revoke the lease it stands in the way of: it ends REVOKED, its
    role gone, the holder's session ended (or its prepared transaction rolled back). Reviews
    70w (schemas2 1), 70z (updaters 1), 71b (pglease 3, 5)."""
    import psycopg

    from troth.secrets import LeaseState

    holder.execute("BEGIN")
    for statement in opened:
        holder.execute(statement)
    prepared = prepare_as is not None
    if prepared:
        holder.execute(f"PREPARE TRANSACTION '{prepare_as}'")
    revoked = broker.revoke(agent, lease_id, now=at)
    assert revoked.state is LeaseState.REVOKED
    assert str(revoked.engine_ref) not in orders.lease_roles()
    if prepared:
        with orders.server.connect(dbname=orders.dbname) as admin:
            left = admin.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone()
        assert left == (0,)
        return
    with pytest.raises(psycopg.OperationalError):  # the holder's session ended
        holder.execute("SELECT 1")


def assert_commits_then_revoked(
    app: Any, orders: Any, broker: Any, handle: Any, order_id: int, *, at: int
) -> None:
    """The application's session, left alone by the lease's revocation (review 69w, wave4b 1),
    commits its write (order `order_id`), and the sweep then completes the revocation."""
    from troth.secrets import LeaseState

    app.commit()  # its session was not ended
    with orders.server.connect(dbname=orders.dbname) as admin:
        landed = admin.execute("SELECT count(*) FROM orders WHERE id = %s", (order_id,))
        assert landed.fetchone() == (1,)
    broker.sweep(at + 3600)
    assert broker.book.lease(handle).state is LeaseState.REVOKED


def drop_flooded(orders: Any, *roles: str) -> None:
    """Drop `orders`' database whole and the lease `roles` left in it (a revocation that failed
    on thousands of objects: a database drops with no lock per object)."""
    left = [role for role in roles if role in orders.lease_roles()]
    if not left:
        return
    with orders.server.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {orders.dbname} WITH (FORCE)")
        for role in left:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def two_leases(broker: Any, agent: Any, secret: str, now: int, scope: str) -> tuple[Any, Any]:
    """Two leases of `secret` issued to `agent` with `scope` (one lease's objects against the
    other's revocation)."""
    return broker.issue(agent, secret, scope=[scope], now=now), broker.issue(
        agent, secret, scope=[scope], now=now
    )
