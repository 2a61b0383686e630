"""Adversarial review, round 7: what a PostgreSQL lease leaves behind or keeps, the feed sync's
continuation pages, and trace exports verified on a node that knows the signer.

Each test asserts the secure behaviour and fails on the code it was written against (marked
xfail strict until the lead fixes it)."""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.postgres import ADMIN_PASSWORD, PgServer
from tests.support.traces import DAY, NOW, Held, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.errors import RemoteError, SecretError
from troth.node import init_node, open_node
from troth.node.services import call, service_address
from troth.secrets import AllowListPolicy, Broker
from troth.trace.export import export_jsonl

# -- postgres: what a revoked lease's role owned, what a renewal keeps -------------------------

SECRET = "orders-db"


def _pg_now() -> int:
    return int(time.time())  # PostgreSQL checks VALID UNTIL against its own clock


def _database(server: PgServer, *statements: str) -> str:
    """A fresh database (roles are per cluster: the statements name theirs with a tag)."""
    dbname = f"r7_{uuid.uuid4().hex[:10]}"
    with server.connect() as admin:
        admin.execute(f"CREATE DATABASE {dbname}")
    with server.connect(dbname=dbname) as conn:
        for statement in statements:
            conn.execute(statement)
    return dbname


def _pg_config(server: PgServer, dbname: str, templates: dict[str, str]) -> dict[str, Any]:
    return {
        "scopes": sorted(templates),
        "ttl": 60,
        "max_ttl": 3600,
        "host": server.host,
        "port": server.port,
        "dbname": dbname,
        "user": server.user,
        "templates": templates,
        "sslmode": "disable",
    }


def _pg_broker(tmp_path: Path) -> tuple[LeaseWorld, Broker]:
    """A broker that leases SECRET to agent A."""
    world = make_world(_pg_now())
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    _db, broker = open_broker(tmp_path / "node.db", now=_pg_now(), policy=policy)
    return world, broker


def _put(broker: Broker, config: dict[str, Any]) -> None:
    broker.put_secret(SECRET, "postgres", config, ADMIN_PASSWORD.encode(), now=_pg_now())


def _login(server: PgServer, dbname: str, credential: dict[str, Any]) -> Any:
    import psycopg

    return psycopg.connect(
        host=str(credential["host"]),
        port=int(credential["port"]),
        dbname=dbname,
        user=str(credential["user"]),
        password=str(credential["password"]),
        autocommit=True,
        sslmode="disable",
    )


def _broad_and_narrow(
    tmp_path: Path, pg_server: PgServer, prefix: str
) -> tuple[str, str, str, LeaseWorld, Broker]:
    """A database with `orders` and `customers`, a broad template reading both and a narrow one
    reading `orders`, and a broker whose secret maps `orders:read` to the broad one."""
    tag = uuid.uuid4().hex[:10]
    broad, narrow = f"{prefix}_broad_{tag}", f"{prefix}_narrow_{tag}"
    dbname = _database(
        pg_server,
        "CREATE TABLE orders (id int); CREATE TABLE customers (card text)",
        "INSERT INTO customers VALUES ('4111-1111-1111-1111')",
        f"CREATE ROLE {broad} NOLOGIN; GRANT SELECT ON orders, customers TO {broad}",
        f"CREATE ROLE {narrow} NOLOGIN; GRANT SELECT ON orders TO {narrow}",
    )
    world, broker = _pg_broker(tmp_path)
    _put(broker, _pg_config(pg_server, dbname, {"orders:read": broad}))
    return broad, narrow, dbname, world, broker


def _migrate_world(
    tmp_path: Path, pg_server: PgServer, prefix: str
) -> tuple[str, str, str, LeaseWorld, Broker]:
    """A database with `orders`, a read template and a migrate template (INSERT on `orders`;
    a lease creates in its own schema, review 70n), and a broker whose secret maps
    `orders:read` and `orders:migrate` to them."""
    tag = uuid.uuid4().hex[:10]
    reader, migrator = f"{prefix}_reader_{tag}", f"{prefix}_migrator_{tag}"
    dbname = _database(
        pg_server,
        "CREATE TABLE orders (id int, total int)",
        f"CREATE ROLE {reader} NOLOGIN; GRANT SELECT ON orders TO {reader}",
        f"CREATE ROLE {migrator} NOLOGIN; GRANT INSERT ON orders TO {migrator}",
    )
    world, broker = _pg_broker(tmp_path)
    _put(broker, _pg_config(pg_server, dbname, {"orders:read": reader, "orders:migrate": migrator}))
    return reader, migrator, dbname, world, broker


def test_a_revoked_leases_objects_never_run_as_the_brokers_admin(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """A lease may create objects (in its own schema, which it lets PUBLIC use). The agent's
    lease creates a SECURITY DEFINER function; revoking the lease runs `REASSIGN OWNED BY
    <lease> TO <admin>`, so the function now belongs to the broker's admin (CREATEROLE, the
    right to end sessions; here a superuser) and runs with its rights. The next lease, of a
    read-only scope, calls it: code the agent wrote runs as the admin.
    What a revoked lease owned must be dropped, or handed to a role with no more rights than
    the lease had, never to the admin."""
    import psycopg

    _, _, dbname, world, broker = _migrate_world(tmp_path, pg_server, "r7")
    agent = world.credential_a()
    try:
        migrate = broker.issue(agent, SECRET, scope=["orders:migrate"], now=_pg_now())
        with _login(pg_server, dbname, migrate.credential.reveal()) as session:
            session.execute(
                "CREATE FUNCTION r7_probe() RETURNS text LANGUAGE sql SECURITY DEFINER "
                "AS 'SELECT current_user::text'; "
                f'GRANT USAGE ON SCHEMA "{migrate.lease.engine_ref}" TO PUBLIC'
            )
        broker.revoke(agent, migrate.lease_id, now=_pg_now())
        read = broker.issue(agent, SECRET, scope=["orders:read"], now=_pg_now())
        with _login(pg_server, dbname, read.credential.reveal()) as session:
            try:
                probe = f'SELECT "{migrate.lease.engine_ref}".r7_probe()'
                ran_as = session.execute(probe).fetchone()[0]
            except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName):
                ran_as = None  # dropped with the role that made it
    finally:
        broker.close()
    assert ran_as != pg_server.user


def test_a_renewal_does_not_keep_a_template_the_operator_replaced(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """The operator finds that the `orders:read` template also reads `customers` and puts the
    secret again with the scope mapped to a narrower role. An agent's open lease, made under
    the old template, is renewed (the scope is still offered, so dc2c166's check passes) and
    its role is still a member of the old template: it reads `customers` until max_ttl. A
    renewal must grant what the configuration grants now (or be refused, as for a withdrawn
    scope)."""
    import psycopg

    _, narrow, dbname, world, broker = _broad_and_narrow(tmp_path, pg_server, "r7")
    agent = world.credential_a()
    try:
        issued = broker.issue(agent, SECRET, scope=["orders:read"], now=_pg_now())
        _put(broker, _pg_config(pg_server, dbname, {"orders:read": narrow}))
        try:
            broker.renew(agent, issued.lease_id, ttl=600, now=_pg_now())
        except SecretError:
            return  # refused: the lease ends at its expiry, as for a withdrawn scope
        with (
            _login(pg_server, dbname, issued.credential.reveal()) as session,
            pytest.raises(
                psycopg.errors.InsufficientPrivilege,
                match=r"permission denied for table customers",
            ),
        ):
            session.execute("SELECT card FROM customers").fetchall()
    finally:
        broker.close()


# -- the authority service: a feed sync's continuation pages ----------------------------------


def test_one_peer_cannot_spend_the_nodes_feed_signing_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5189163 made the next page of a sync free of the peer's budget (so that a new node can
    walk a long feed). But a walk may start anywhere: mallory asks `feed [1]` (one token of
    her 8), then each page from where the last ended (free), then `feed [2]` and on. Every
    page is new (no walk starts where an honest one does), so every one is signed, from the
    node's budget alone. Once she is done, an honest node's first page is refused "busy"
    (a sync waits ~20 s, then fails): mallory must be held to her own budget. (Pages of
    ~4 KiB, so a feed of 1,000 entries is many pages, as test_attacks_review2 does.)"""
    monkeypatch.setattr(limits, "MAX_FEED_PAGE_BYTES", 4096)

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        authority = net.authority
        authority.revoke_credentials(
            [n.to_bytes(4, "big") * 8 for n in range(1000)], now=net.clock.now()
        )
        await net.hub.maintain()
        latest = authority.store.revocation_tip()[0]
        feed = service_address("authority")
        mallory = await net.member("mallory")  # each one's sync is served from the cache
        honest = await net.member("honest")
        end = await mallory.channel_to(route(HUB))
        honest_end = await honest.channel_to(route(HUB))
        net.clock.advance(60)  # every budget full again, every page signed anew
        signed = 0
        for start in range(1, limits.FEED_PAGE_SIGNS_PER_CALLER_BURST + 1):
            since = start
            try:
                while since < latest:
                    await call(mallory.router, (end.enc, feed), "feed", [since])
                    signed += 1
                    # where the page ends: what mallory reads off the page she got
                    since = authority.feed_page(now=net.clock.now(), since=since)[1]
            except RemoteError:
                continue
        # she had every page her own budget allows signed (before the fix, many more: each
        # walk's continuations were free; now one walk of the feed per window is, and hers
        # was the sync when she joined)
        assert signed >= limits.FEED_PAGE_SIGNS_PER_CALLER_BURST
        assert await call(honest.router, (honest_end.enc, feed), "feed", [0])

    run_memnet(test, tmp_path)


# -- trace exports: verified on a node that knows the agent -----------------------------------


def test_an_export_signed_by_a_fork_of_a_known_identity_is_refused(tmp_path: Path) -> None:
    """An agent's full key backup is stolen. The owner rotates (change 1); the thief forks
    at change 1 with the stolen next key and signs records as the agent in a log of its own,
    exported as JSONL. A node that stored the owner's history (change 1 = the owner's) is
    asked `troth trace verify --file export.jsonl`: each line's signer history is the fork,
    which the node's own copy shows to be one (its log's verification refuses it: known=),
    yet the export is answered "valid": the thief's records pass as the agent's."""
    agent = Held()
    thief = copy.copy(agent)  # the backup: the same keys, the next one included
    agent.rotate(NOW + DAY)
    thief.rotate(NOW + DAY + 60)
    assert thief.identifier == agent.identifier
    assert thief.identity.current_change_hash != agent.identity.current_change_hash
    init_node("verifier")
    with open_node("verifier") as node:
        node.identities.import_history(agent.identity.history, now=NOW + 2 * DAY)
    clock = FixedClock(NOW + 2 * DAY)
    log = open_log(tmp_path / "thief-trace.db", clock)
    recorder(log, thief, clock).record(tool_call("wire-transfer"))
    export = tmp_path / "export.jsonl"
    with export.open("w") as out:
        export_jsonl(log, out)
    log.close()
    run("trace", "verify", "--file", str(export), "--node", "verifier", code=1)
