"""The broker served by a node (`/service/broker`): agents lease over secure channels as their
own identities, the node's policy bundle decides (no bundle: deny), leases are per agent, 100
concurrent issues give exactly 100 leases, revoking an identity in the feed revokes its leases
within the bound and no lease races the revocation, and the JWKS the node serves validates
tokens in PyJWT."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest

from tests.support.brokers import (
    PAYMENTS,
    POLICIES,
    broker_of,
    client,
    hub_bundle,
    install_bundle,
    jwks,
    run_broker,
)
from tests.support.leases import CANARY, Leaks, captured_logs
from tests.support.nodes import HUB, MemNet
from tests.support.postgres import ADMIN_PASSWORD, PgServer
from tests.test_secrets_http_inject import SECRET_HEADER, Upstream, upstream  # noqa: F401
from troth.errors import Denied, RemoteError, SecretError, SecretFailure
from troth.identity import Identifier
from troth.node.runtime import HOSTED_FEED_POLL, NodeRuntime
from troth.node.services import call
from troth.node.services.broker import BROKER_ADDRESS
from troth.routing import parse_route
from troth.secrets import HttpRequest, LeaseId, LeaseState, validate_token
from troth.trace.dsse import parse_envelope
from troth.trace.record import Kind
from troth.trace.record_decode import decode_payload
from troth.trace.verify import verify_log

F = SecretFailure


async def agent_identity(net: MemNet, node: NodeRuntime, name: str, team: str) -> None:
    """Local identity `name` on `node`, enrolled with the hub as a member of `team`."""
    node.node.identities.create(now=net.clock.now(), name=name)
    await node.enroll(net.ticket(**{"agents.team": team}), name)


def test_an_agent_leases_as_itself_and_the_token_validates_in_pyjwt(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        assert net.hub is not None
        desk = await net.node("desk")
        await agent_identity(net, desk, "support-agent", "support")
        await agent_identity(net, desk, "billing-agent", "billing")
        support, billing = client(desk, "support-agent"), client(desk, "billing-agent")
        refund = await support.issue("payments", scope=("refunds",), ttl=120)
        charge = await billing.issue("payments", scope=("charges",))
        keys = await support.jwks()
        assert keys == await jwks(net.hub)
        document = keys.to_json()
        for issued, who, scope in (
            (refund, "support-agent", "refunds"),
            (charge, "billing-agent", "charges"),
        ):
            token = str(issued.credential.reveal()["token"])
            claims = pyjwt.decode(
                token,
                key=pyjwt.PyJWKSet.from_dict(document).keys[0].key,
                algorithms=["EdDSA"],
                audience="payments",
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
            holder = desk.node.identities.find(who).identifier
            assert claims["sub"] == "did:troth:" + bytes(holder).hex()
            assert claims["scope"] == scope
            assert claims["jti"] == str(issued.lease.handle)
            validated = validate_token(token, keys, audience="payments", now=net.clock.now())
            assert validated.scope == (scope,)
        assert refund.lease.expires_at == net.clock.now() + 120
        # the policy decides per agent: support may not charge, billing may not refund
        with pytest.raises(SecretError) as refused:
            await support.issue("payments", scope=("charges",))
        assert refused.value.reason is F.DENIED
        with pytest.raises(SecretError) as refused:
            await billing.issue("payments", scope=("refunds",))
        assert refused.value.reason is F.DENIED
        with pytest.raises(SecretError) as refused:  # the bundle caps support's ttl at 300 s
            await support.issue("payments", scope=("refunds",), ttl=400)
        assert refused.value.reason is F.DENIED
        assert "no policy permits" in refused.value.detail

    run_broker(test, tmp_path)


def test_the_served_brokers_audit_is_signed_records_in_the_nodes_trace(tmp_path: Path) -> None:
    """Issue 12's audit goes to issue 13's log when it exists: each issue, denial and
    revocation a record signed by the broker's node; the log verifies; no secret value in it."""
    vendor = {
        "upstream": "https://api.example/",
        "header": "X-Key",
        "rules": [{"methods": ["GET"], "path": "/a"}],
        "scopes": ["r"],
        "ttl": 60,
        "max_ttl": 60,
    }
    canary = {  # a token secret has no value (review 66s, secrets 1): the canary another's
        "payments": ("token", PAYMENTS, b""),
        "vendor": ("http-inject", vendor, CANARY.encode()),
    }

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        agent = await net.member("support")
        issued = await client(agent).issue("payments", scope=("refunds",), ttl=120)
        with pytest.raises(SecretError) as raised:
            await client(agent).issue("payments", scope=("charges",))
        assert raised.value.reason is SecretFailure.DENIED
        await client(agent).revoke(issued.lease_id)
        log = net.hub.traces.log()
        report = verify_log(log)
        kinds = [
            decode_payload(parse_envelope(stored.envelope).payload) for stored in log.records()
        ]
        hub = Identifier(net.hub.node.identities.find(net.hub.name).identifier)
        audited = [(r.kind, r.decision.outcome if r.decision else None) for r in kinds]
        assert (Kind.LEASE, "issue") in audited
        assert (Kind.DENIAL, "deny") in audited
        assert (Kind.LEASE, "revoke") in audited
        assert all(r.agent == hub for r in kinds if r.kind in (Kind.LEASE, Kind.DENIAL))
        assert report.size == log.size()
        trace_db = (net.hub.node.path / "trace.db").read_bytes()
        assert CANARY.encode() not in trace_db

    run_broker(test, tmp_path, secrets=canary)


def test_without_a_policy_bundle_every_lease_is_denied(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        agent = await net.member("support")
        with pytest.raises(SecretError) as refused:
            await client(agent).issue("payments", scope=("refunds",))
        assert refused.value.reason is F.DENIED
        assert "no policy bundle" in refused.value.detail
        assert await client(agent).leases() == []

    run_broker(test, tmp_path, bundle=False)


def test_leases_are_per_agent_over_channels(tmp_path: Path) -> None:
    """B cannot list, renew, revoke or use A's lease, even holding A's lease id."""

    async def test(net: MemNet) -> None:
        desk = await net.node("desk")
        await agent_identity(net, desk, "agent-a", "support")
        await agent_identity(net, desk, "agent-b", "support")
        a, b = client(desk, "agent-a"), client(desk, "agent-b")
        issued = await a.issue("payments", scope=("refunds",))
        assert [lease.handle for lease in await a.leases()] == [issued.lease.handle]
        assert await b.leases() == []
        for attempt in (b.renew(issued.lease_id), b.revoke(issued.lease_id)):
            with pytest.raises(SecretError) as refused:
                await attempt
            assert refused.value.reason is F.NO_SUCH_LEASE
        renewed, _ = await a.renew(issued.lease_id, ttl=60)
        assert renewed.expires_at == net.clock.now() + 60
        revoked = await a.revoke(issued.lease_id)
        assert revoked.state in (LeaseState.REVOKING, LeaseState.REVOKED)
        with pytest.raises(SecretError) as refused:
            await a.renew(issued.lease_id)
        assert refused.value.reason is F.REVOKED

    run_broker(test, tmp_path)


def test_a_hundred_concurrent_issues_over_channels_give_exactly_a_hundred(tmp_path: Path) -> None:
    """110 issues at once from one agent (quota 100): exactly 100 leases, 10 refusals."""

    async def test(net: MemNet) -> None:
        agent = await net.member("support")
        broker = client(agent)
        results = await asyncio.gather(
            *(broker.issue("payments", scope=("refunds",)) for _ in range(110)),
            return_exceptions=True,
        )
        granted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, SecretError)]
        assert len(granted) == 100
        assert len(refused) == 10
        assert {r.reason for r in refused} == {F.QUOTA_EXCEEDED}
        assert len({r.lease.handle for r in granted}) == 100
        assert len(await broker.leases()) == 100

    run_broker(test, tmp_path, budget=120)


def test_revoking_the_identity_revokes_its_leases_within_the_bound(tmp_path: Path) -> None:
    """The hub's authority revokes the agent (as `troth revoke identity` does, from its store):
    within HOSTED_FEED_POLL the node holds the feed and the broker has revoked every lease of
    the agent; its tokens stop validating against the broker's state and it cannot lease."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        hub = net.hub
        agent = await net.member("support")
        broker = client(agent)
        issued = [await broker.issue("payments", scope=("refunds",)) for _ in range(3)]
        service = broker_of(hub)
        assert service.broker is not None
        lookup = service.broker.revoked_leases()
        tokens = [str(i.credential.reveal()["token"]) for i in issued]
        keys = await jwks(hub)
        for token in tokens:
            validate_token(token, keys, audience="payments", now=net.clock.now(), revoked=lookup)
        started = time.monotonic()
        await asyncio.to_thread(
            hub.node.authority().revoke_identity, net.identifier(agent), now=net.clock.now()
        )
        handles = [i.lease.handle for i in issued]
        while any(
            (lease := service.broker.book.lease(h)) is None or lease.state is LeaseState.ACTIVE
            for h in handles
        ):
            assert time.monotonic() - started < HOSTED_FEED_POLL + 5, "not revoked in the bound"
            await asyncio.sleep(0.05)
        for token in tokens:
            with pytest.raises(SecretError) as refused:
                validate_token(
                    token, keys, audience="payments", now=net.clock.now(), revoked=lookup
                )
            assert refused.value.reason is F.REVOKED
        with pytest.raises(
            Denied, match=r"denied: hub refused"
        ):  # the node's decision point refuses a revoked identity
            await broker.issue("payments", scope=("refunds",))

    run_broker(test, tmp_path)


def test_a_revoked_identity_cannot_lease_even_racing_the_revocation(tmp_path: Path) -> None:
    """Issues fired while the revocation lands: whatever was granted is revoked by the scan,
    and nothing is granted after it."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        hub = net.hub
        agent = await net.member("support")
        broker = client(agent)
        service = broker_of(hub)
        assert service.broker is not None

        async def keep_issuing() -> list[object]:
            results: list[object] = []
            for _ in range(60):
                try:
                    results.append(await broker.issue("payments", scope=("refunds",), ttl=60))
                except (SecretError, Denied) as exc:
                    results.append(exc)
            return results

        async def revoke() -> None:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(
                hub.node.authority().revoke_identity, net.identifier(agent), now=net.clock.now()
            )

        results, _ = await asyncio.gather(keep_issuing(), revoke())
        deadline = time.monotonic() + HOSTED_FEED_POLL + 5
        holder = net.identifier(agent)
        while service.broker.book.leases_of(holder) and any(
            lease.state is LeaseState.ACTIVE for lease in service.broker.book.leases_of(holder)
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        granted = [r for r in results if not isinstance(r, BaseException)]
        assert granted, "the race never granted a lease before the revocation: no race tested"
        assert all(
            lease.state is not LeaseState.ACTIVE
            for lease in service.broker.book.leases_of(holder, include_ended=True)
        )
        with pytest.raises(Denied, match=r"denied: hub refused"):
            await broker.issue("payments", scope=("refunds",))

    run_broker(test, tmp_path)


def test_revoke_identity_is_for_the_brokers_operators(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        assert net.hub is not None
        agent = await net.member("support")
        admin = await net.member("ops", **{"troth.broker": "admin"})
        issued = await client(agent).issue("payments", scope=("refunds",))
        holder = net.identifier(agent)
        with pytest.raises(Denied) as denied:
            await client(agent).revoke_identity(holder)
        assert "troth.broker" in denied.value.reasons[0]
        (revoked,), count = await client(admin).revoke_identity(holder)
        assert revoked.handle == issued.lease.handle
        assert count == 1
        answer = await broker_of(net.hub).local("revoke-identity", {"identity": str(holder)})
        assert answer == {"leases": []}

    run_broker(test, tmp_path)


def test_malformed_requests_are_refused_without_a_lease(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        agent = await net.member("support")
        end = await agent.channel_to(parse_route(HUB))
        for method, arguments in (
            ("issue", {"secret": "payments"}),
            ("issue", {"secret": 7, "scope": None, "ttl": None}),
            ("issue", {"secret": "payments", "scope": "refunds", "ttl": None}),
            ("issue", {"secret": "payments", "scope": None, "ttl": 0}),
            ("renew", {"lease_id": "lease_nope", "ttl": None}),
            ("list", {"ended": 1}),
            ("jwks", {"x": 1}),
        ):
            with pytest.raises(RemoteError) as failed:
                await call(agent.router, (end.enc, BROKER_ADDRESS), method, arguments)
            assert "malformed broker request" in str(failed.value)
        assert await client(agent).leases() == []
        with pytest.raises(SecretError) as refused:
            await client(agent).renew(LeaseId.new(net.clock.now()))
        assert refused.value.reason is F.NO_SUCH_LEASE

    run_broker(test, tmp_path)


def test_a_newer_bundle_changes_who_may_lease(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        assert net.hub is not None
        agent = await net.member("support")
        await client(agent).issue("payments", scope=("refunds",))
        await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=""))
        with pytest.raises(SecretError) as refused:
            await client(agent).issue("payments", scope=("refunds",))
        assert refused.value.reason is F.DENIED

    run_broker(test, tmp_path)


@pytest.fixture
def orders_db(pg_server: PgServer) -> dict[str, Any]:
    """A fresh database with an `orders` table and a reader template role; its lease config."""
    tag = uuid.uuid4().hex[:10]
    dbname, reader = f"served_{tag}", f"served_reader_{tag}"
    with pg_server.connect() as admin:
        admin.execute(f"CREATE DATABASE {dbname}")
    with pg_server.connect(dbname=dbname) as conn:
        conn.execute(
            "CREATE TABLE orders (id int, total int); INSERT INTO orders VALUES (4471, 20)"
        )
        conn.execute(f"CREATE ROLE {reader} NOLOGIN; GRANT SELECT ON orders TO {reader}")
    return {
        "scopes": ["orders:read"],
        "ttl": 300,
        "max_ttl": 600,
        "host": pg_server.host,
        "port": pg_server.port,
        "dbname": dbname,
        "user": pg_server.user,
        "templates": {"orders:read": reader},
        "sslmode": "disable",
    }


def test_revoking_the_identity_ends_its_open_database_session(
    tmp_path: Path, orders_db: dict[str, Any]
) -> None:
    """End to end: the support agent's postgres lease over a channel reads orders; the hub's
    authority revokes the agent; within the bound its open session is terminated and its role
    is gone. The admin password (the upstream secret) appears in no answer and no log line."""
    import psycopg

    leaks = Leaks()

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        agent = await net.member("support")
        issued = await client(agent).issue("orders-db")
        login = issued.credential.reveal()
        leaks.add(issued, issued.to_json(), await client(agent).leases())

        def connect() -> Any:
            return psycopg.connect(
                host=str(login["host"]),
                port=int(login["port"]),
                dbname=str(login["dbname"]),
                user=str(login["user"]),
                password=str(login["password"]),
                autocommit=True,
                sslmode="disable",
            )

        session = await asyncio.to_thread(connect)
        rows = await asyncio.to_thread(lambda: session.execute("SELECT * FROM orders").fetchall())
        assert rows == [(4471, 20)]
        started = time.monotonic()
        await asyncio.to_thread(
            net.hub.node.authority().revoke_identity, net.identifier(agent), now=net.clock.now()
        )

        def ended() -> bool:
            try:
                session.execute("SELECT 1").fetchone()
            except psycopg.OperationalError:
                return True
            return False

        while not await asyncio.to_thread(ended):
            assert time.monotonic() - started < HOSTED_FEED_POLL + 10, "the session lives on"
            await asyncio.sleep(0.05)
        service = broker_of(net.hub)
        assert service.broker is not None
        while (lease := service.broker.book.lease(issued.lease.handle)) is None or (
            lease.state is not LeaseState.REVOKED  # the role is dropped after the session ends
        ):
            assert time.monotonic() - started < HOSTED_FEED_POLL + 10, "the role lives on"
            await asyncio.sleep(0.05)
        with pytest.raises(
            psycopg.OperationalError,
            match="password authentication failed",
        ):
            await asyncio.to_thread(connect)

    with captured_logs(leaks):
        run_broker(
            test,
            tmp_path,
            secrets={
                "payments": ("token", PAYMENTS, b""),
                "orders-db": ("postgres", orders_db, ADMIN_PASSWORD.encode()),
            },
        )
    leaks.assert_clean(ADMIN_PASSWORD)
    for path in (tmp_path / "nodes" / "hub").iterdir():
        if path.is_file():
            assert ADMIN_PASSWORD.encode() not in path.read_bytes(), path


def test_forward_over_a_channel_injects_the_secret_and_returns_none_of_it(
    tmp_path: Path,
    upstream: Upstream,  # noqa: F811 - the echoing server of tests/test_secrets_http_inject.py
) -> None:
    """An http-inject lease used over a channel: the echoing upstream gets the secret header;
    the agent gets the answer with the secret redacted; a path no rule allows never leaves the
    broker; another agent holding the lease id cannot use it. Nothing the agent receives, nor
    any log line, holds the canary."""
    leaks = Leaks()
    config = {
        "scopes": ["orders:read"],
        "upstream": upstream.url,
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/orders/*"}],
    }
    orders_policy = POLICIES + (
        '@id("orders-api") permit(principal, action == Action::"lease", '
        'resource == Secret::"orders-api");\n'
    )

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=orders_policy))
        desk = await net.node("desk")
        await agent_identity(net, desk, "agent-a", "support")
        await agent_identity(net, desk, "agent-b", "support")
        a, b = client(desk, "agent-a"), client(desk, "agent-b")
        issued = await a.issue("orders-api")
        request = HttpRequest("GET", "/orders/4471", (("Authorization", "Bearer mine"),))
        answer = await a.forward(issued.lease_id, request)
        assert answer.status == 200
        assert upstream.seen[-1]["path"] == "/api/orders/4471"
        assert ["Authorization", SECRET_HEADER] in upstream.seen[-1]["headers"]
        assert b"[redacted]" in answer.body
        leaks.add(answer.body, answer.headers, answer.reason, issued.to_json())
        seen = len(upstream.seen)
        with pytest.raises(SecretError) as refused:
            await a.forward(issued.lease_id, HttpRequest("DELETE", "/orders/4471"))
        assert refused.value.reason is F.FORBIDDEN_REQUEST
        leaks.add(refused.value)
        with pytest.raises(SecretError) as refused:
            await b.forward(issued.lease_id, request)
        assert refused.value.reason is F.NO_SUCH_LEASE
        assert len(upstream.seen) == seen

    with captured_logs(leaks):
        run_broker(
            test,
            tmp_path,
            secrets={
                "payments": ("token", PAYMENTS, b""),
                "orders-api": ("http-inject", config, SECRET_HEADER.encode()),
            },
        )
    leaks.assert_clean(CANARY)
