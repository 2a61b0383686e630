"""Review 64r, the postgres engine's leases across failures (PostgreSQL tests: TROTH_REQUIRE_PG=1).

postgres 1: a member's lease revoked while the broker could not log in to PostgreSQL as its
admin (the admin's password changed on the server: a rotation, a DBA's reset) stays REVOKING,
its role able to log in and read, and each failed retry doubles the wait, up to
`REVOKE_RETRY_MAX` (30 minutes). The operator then stores the admin's new password
(`put_secret`, same server): docs/secrets.md promises an operator's `put_secret` tries the
stuck revocations at once, but it only did so when the secret moved to another server; at the
same server nothing was tried, and the revoked member's role kept logging in until its next
retry came, up to 30 minutes after the fix. `put_secret` now tries the secret's REVOKING leases
at once (an operator's call: `early`, within the batch's budget of engine time) after storing
the new value; a failure leaves them REVOKING with their backoff, as before.

postgres 2: the admin's connection took whatever authentication the server asked for, and with
sslmode `prefer` (the default) or `disable` whoever answered at the configured host and port (a
machine in the path, one squatting the address) could ask for the password in clear: libpq sent
the admin password, the upstream secret, to it. The admin now authenticates with SCRAM-SHA-256
only (`require_auth`, libpq 16 and later) unless sslmode is `verify-full`; the tests' server
uses scram-sha-256 instead of pytest-postgresql's cleartext `password` method.

postgres 3 (strict xfail, the lead's call): node.db put back from a copy taken before a postgres
secret was stored leaves every role leased under that secret since in the server: the rollback
guard revokes the copy's open leases, and the orphan sweep lists only the servers of the
copy's secrets, so nothing ever drops them (their VALID UNTIL ends new logins; an open session
keeps its privileges, and what the role owns stays).
"""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backups import copy_db, restore_db
from tests.support.leases import LeaseWorld, open_broker
from tests.support.postgres import ADMIN_PASSWORD, PgServer
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.book import REVOKE_RETRY_MAX, revoke_backoff


@pytest.fixture
def admin(pg_server: PgServer) -> Iterator[str]:
    """A superuser of this test alone (its password changed by the test), dropped after it."""
    name = f"adm_{uuid.uuid4().hex[:10]}"
    with pg_server.connect() as conn:
        conn.execute(f"CREATE ROLE {name} SUPERUSER LOGIN PASSWORD 'first-{name}'")
    try:
        yield name
    finally:
        with pg_server.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_put_secret_with_the_fixed_password_ends_a_stuck_revocation_at_once(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    pg_server: PgServer,
    admin: str,
) -> None:
    """postgres 1: the admin's password changes on the server; agent a's lease is revoked and
    its retries fail until the backoff is at its cap; the operator stores the new password:
    the role is gone at once, not at the next retry 30 minutes later."""
    import psycopg

    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    _db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy)
    config = orders.config(user=admin)
    broker.put_secret(SECRET, "postgres", config, f"first-{admin}".encode(), now=now())
    issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    role = str(issued.credential.reveal()["user"])
    at = now()
    try:
        with pg_server.connect() as conn:  # rotated on the server, its sessions ended
            conn.execute(f"ALTER ROLE {admin} PASSWORD 'second-{admin}'")
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                (admin,),
            )
        broker.revoke(world.credential_a(), issued.lease_id, now=at)
        attempts = 1
        while revoke_backoff(attempts) < REVOKE_RETRY_MAX:  # each due retry fails
            at += revoke_backoff(attempts)
            assert broker.sweep(at).failed == 1
            attempts += 1
        lease = broker.book.lease(issued.lease_id.handle)
        assert lease is not None
        assert lease.state is LeaseState.REVOKING
        login(orders, issued.credential.reveal()).close()  # the revoked lease still logs in

        broker.put_secret(SECRET, "postgres", config, f"second-{admin}".encode(), now=at)
        broker.sweep(at)  # the node's next maintenance round
        lease = broker.book.lease(issued.lease_id.handle)
        assert lease is not None
        assert lease.state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        with pytest.raises(psycopg.OperationalError):
            login(orders, issued.credential.reveal()).close()
    finally:  # cleanup: the role dropped whatever failed above
        with pg_server.connect() as conn:
            conn.execute(f"ALTER ROLE {admin} PASSWORD 'second-{admin}'")
        broker.put_secret(SECRET, "postgres", config, f"second-{admin}".encode(), now=at)
        broker.revoke_lease(issued.lease_id.handle, now=at)
        broker.close()
        _db.close()


class _PasswordTrap:
    """A server on 127.0.0.1 that answers as PostgreSQL would to a client (SSL refused, then
    `AuthenticationCleartextPassword`) and keeps what the client sends as its password: what a
    machine in the path to the real server, or one squatting its address, does."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.received = b""
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():  # (an aborted lease's revocation connects again)
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                while True:
                    size = struct.unpack("!I", _exactly(conn, 4))[0]
                    body = _exactly(conn, size - 4)
                    if body[:4] in (b"\x04\xd2\x16\x2f", b"\x04\xd2\x16\x30"):  # SSL, GSS
                        conn.sendall(b"N")
                        continue
                    break
                conn.sendall(b"R" + struct.pack("!II", 8, 3))  # cleartext password, please
                kind = _exactly(conn, 1)
                size = struct.unpack("!I", _exactly(conn, 4))[0]
                self.received += kind + _exactly(conn, size - 4)
            except (OSError, struct.error):
                return

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


def _exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def test_the_admin_password_is_never_sent_in_clear_to_whoever_answers(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
) -> None:
    """postgres 2: the admin's connection asks for SCRAM: a server (or a machine in the path)
    asking for the password in clear gets nothing, and the issue fails ENGINE_FAILED."""
    trap = _PasswordTrap()
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy)
    try:
        config = {
            "scopes": ["orders:read"],
            "ttl": 60,
            "host": "127.0.0.1",
            "port": trap.port,
            "dbname": "orders",
            "user": "admin",
            "templates": {"orders:read": "reader"},
            "connect_timeout": 2,
        }  # sslmode "prefer", the default: the trap refuses SSL
        broker.put_secret(SECRET, "postgres", config, b"the-admin-password", now=now())
        with pytest.raises(SecretError) as failed:
            broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        assert failed.value.reason is SecretFailure.ENGINE_FAILED
        trap.close()
        assert b"the-admin-password" not in trap.received
    finally:
        trap.close()
        broker.close()
        db.close()


@pytest.mark.xfail(
    strict=True,
    reason="64r postgres 3: a restored copy that predates a postgres secret never revokes the "
    "roles leased under it (its server is in no configuration the orphan sweep lists); needs "
    "a record of the servers outside node.db or the rollback guard's help (lead's call)",
)
def test_a_copy_from_before_the_secret_leaves_no_role_behind(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    pg_server: PgServer,
) -> None:
    """postgres 3: node.db is put back from a copy taken before the postgres secret was stored
    (a lease of another secret in it, revoked since: the restore is found). The lease roles issued
    since stay in the server, able to log in until VALID UNTIL and their open sessions for as
    long as they last: no lease of the copy names them, and no secret of the copy reaches
    their server."""
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"api": None}, world.agent_b.identifier: {SECRET: None}}
    )
    db, broker = open_broker(path, now=now(), policy=policy)
    broker.put_secret(
        "api", "token", {"scopes": ["read"], "ttl": 300, "audience": "x"}, b"", now=now()
    )
    token = broker.issue(world.credential_a(), "api", scope=["read"], now=now())
    broker.close()
    db.close()
    copy_db(path, copy)
    db, broker = open_broker(path, now=now(), policy=policy)
    broker.revoke_lease(token.lease.handle, now=now())  # counted: the restore is found
    broker.put_secret(SECRET, "postgres", orders.config(), ADMIN_PASSWORD.encode(), now=now())
    leased = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    role = str(leased.credential.reveal()["user"])
    broker.close()
    db.close()
    restore_db(path, copy)
    db, broker = open_broker(path, now=now(), policy=policy)
    try:
        assert broker.restored is not None
        broker.recover(now())
        assert role not in orders.lease_roles()
    finally:
        broker.close()
        db.close()
        with pg_server.connect(dbname=orders.dbname) as conn:  # cleanup
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
