"""Chapter 5: leased secrets. The hub is the authority and a broker: it keeps the payments
secret (a token engine) and, when PostgreSQL is installed, the orders database's admin
password, sealed by its vault. The billing and the support agent (two identities on one desk
node) each prove who they are over a secure channel and get their own scoped payments token;
the support agent's refund tool receives a 2-minute token through gate 3, which the local
payments service validates with troth's `validate_token` over the broker's JWKS (it runs beside
the broker, so it also sees the broker's lease states); the support agent's database lease
reads orders. Then the hub revokes the support agent: its open database session is terminated,
its token stops validating and it cannot lease again, while billing's token still validates."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from troth.bench.secrets_bench import PgCluster, throwaway_postgres
from troth.clock import Clock
from troth.credentials import Attributes
from troth.demo.story import Story, quiet
from troth.errors import ConfigError, Denied, SecretError, TrothError
from troth.gates import (
    BundleStore,
    DecisionPoint,
    Tool,
    ToolGate,
    create_bundle,
    schema_from_function,
)
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.broker import BrokerClient, RemoteLeases, local_broker, put_secret
from troth.routing import parse_route
from troth.secrets import Jwks, ToolLease, ToolLeases, needs_secret, validate_token

PAYMENTS = {"scopes": ["refunds", "charges"], "ttl": 300, "max_ttl": 3600, "audience": "payments"}
POLICIES = """\
@id("support-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("agents.team") && principal.getTag("agents.team").contains("support")
         && ["refunds"].containsAll(context.scope) && context.ttl <= 300 };
@id("billing-charges") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("agents.team") && principal.getTag("agents.team").contains("billing")
         && ["charges"].containsAll(context.scope) };
@id("support-orders") permit(principal, action == Action::"lease", resource == Secret::"orders-db")
  when { principal.hasTag("agents.team") && principal.getTag("agents.team").contains("support") };
@id("support-refund-tool") permit(principal, action == Action::"invoke:refund", resource)
  when { principal.hasTag("agents.team") && principal.getTag("agents.team").contains("support") };
"""


class PaymentsService:
    """The local payments service: it holds the broker's JWKS (fetched once) and validates
    each token itself with troth's `validate_token`; beside the broker it also checks the
    broker's lease states (elsewhere, a revoked token would pass until its `exp`)."""

    def __init__(self, jwks: Jwks, revoked: Any, clock: Clock) -> None:
        self.jwks = jwks
        self.revoked = revoked
        self.clock = clock

    def check(self, token: str) -> str:
        """Whether `token` validates now, and for which scope."""
        try:
            valid = validate_token(
                token, self.jwks, audience="payments", now=self.clock.now(), revoked=self.revoked
            )
        except SecretError as exc:
            return f"refused: {exc}"
        return (
            f"valid (scope {' '.join(valid.scope)}, {valid.expires_at - self.clock.now()} s left)"
        )

    def refund(self, token: str, order: str, amount: str) -> str:
        """Refund `amount` on `order` for the bearer of `token` (it needs scope refunds)."""
        try:
            valid = validate_token(
                token, self.jwks, audience="payments", now=self.clock.now(), revoked=self.revoked
            )
        except SecretError as exc:
            return f"refused: {exc}"
        if "refunds" not in valid.scope:
            return f"refused: the token's scope is {' '.join(valid.scope)}, not refunds"
        return f"accepted: refund {amount} on order {order}"


def _refund_signature(order: str, amount: str) -> str:
    """The refund tool's arguments (its schema in the policy bundle)."""
    return f"{order} {amount}"


def _refund_tool(payments: PaymentsService, tokens: list[str]) -> Callable[..., str]:
    @needs_secret("payments", scope=["refunds"], ttl=120)
    def refund(order: str, amount: str, *, lease: ToolLease) -> str:
        """Refund part of an order (the payments service does it, with the lease's token)."""
        tokens.append(lease.token)
        return payments.refund(lease.token, order, amount)

    return refund


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(5, "Leased secrets: each agent its own short-lived, scoped secret")
    with quiet(), _orders_cluster() as cluster:
        asyncio.run(_run(story, home, clock, cluster))


@contextmanager
def _orders_cluster() -> Iterator[PgCluster | None]:
    """A throwaway PostgreSQL cluster holding the orders table, or None without PostgreSQL."""
    with throwaway_postgres(os.urandom(16).hex()) as cluster:
        if cluster is not None:
            with cluster.connect() as admin:
                admin.execute("CREATE TABLE orders (id int, total numeric(8, 2))")
                admin.execute("INSERT INTO orders VALUES (4471, 20.00), (4472, 35.50)")
                admin.execute("CREATE ROLE orders_reader NOLOGIN")
                admin.execute("GRANT SELECT ON orders TO orders_reader")
        yield cluster


async def _run(story: Story, home: Path, clock: Clock, cluster: PgCluster | None) -> None:
    for name in ("hub", "desk"):
        init_node(name, home=home)
    hub_node, desk_node = open_node("hub", home=home), open_node("desk", home=home)
    now = clock.now()
    authority = hub_node.create_authority("hub", now=now)
    _put_secrets(story, hub_node, cluster, now)
    hub, desk = NodeRuntime(hub_node, clock=clock), NodeRuntime(desk_node, clock=clock)
    try:
        await hub.start(("127.0.0.1", 0))
        await desk.start()
        address = "/tcp/{}:{}".format(*(hub.listening or ("", 0)))
        story.say(f"hub: authority and broker at {address}/service/broker")
        bundle = create_bundle(
            hub_node.identities.signer("hub", now=now),
            authority=authority.identifier,
            policies=POLICIES,
            schema="",
            tools={"refund": schema_from_function(_refund_signature)},
            revision=1,
            now=now,
            ttl=86_400,
        )
        broker = local_broker(hub)
        await asyncio.to_thread(broker.bundles.accept, bundle, now=now)
        story.say("its policy bundle: support may lease payments for refunds (<= 5 min) and the")
        story.say("  orders database; billing may lease payments for charges; no bundle: no lease")

        for name, team in (("billing-agent", "billing"), ("support-agent", "support")):
            desk_node.identities.create(now=now, name=name)
            ticket = authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"agents.team": team}),
                address=address,
                now=now,
            )
            await desk.enroll(str(ticket), name)
        story.say("billing-agent and support-agent (both on node desk) enrolled over TCP")

        route = parse_route(address)
        billing = BrokerClient(desk, route, "billing-agent")
        support = BrokerClient(desk, route, "support-agent")
        keys = await support.jwks()
        payments = PaymentsService(keys, broker.started().revoked_leases(), clock)
        story.say(f"payments service: holds the broker's JWKS ({len(keys.keys)} Ed25519 key)")

        charge = await billing.issue("payments", scope=("charges",))
        story.say(
            f"billing-agent leased payments [charges]: its own token, lease {charge.lease.handle}"
        )
        try:
            await support.issue("payments", scope=("charges",))
            story.say("support-agent got a charges token (this must never happen)")
        except SecretError as exc:
            story.say(f"support-agent asks for payments [charges]: refused: {exc}")
        story.proved("each agent leases its own token, scoped by policy: never another's scope")

        token = await _refund_scene(story, desk, support, payments, bundle, now)
        refusal = payments.refund(str(charge.credential.reveal()["token"]), "4471", "20.00 EUR")
        story.say(f"  billing-agent's token used for a refund: {refusal}")
        story.proved("gate 3 hands the tool a 2-minute token that payments validates on its own")
        session = await _database_scene(story, support, cluster)
        if session is not None:
            story.proved("a database lease is a role of its own, with a random password")
        await _revocation(story, hub, desk, support, payments, token, charge, session)
        story.proved("revoking the agent ends its leases, tokens and open database session")
    finally:
        await desk.stop()
        await hub.stop()
        hub_node.close()
        desk_node.close()


def _put_secrets(story: Story, hub: Node, cluster: PgCluster | None, now: int) -> None:
    put_secret(hub, "payments", "token", json.dumps(PAYMENTS).encode(), b"", now=now)
    story.say("hub keeps payments (token engine: it signs JWTs in its vault)")
    if cluster is None:
        story.say("PostgreSQL is not installed here: the database scenes are skipped")
        return
    config = {
        "scopes": ["orders:read"],
        "ttl": 600,
        "host": cluster.socket_dir,
        "dbname": "postgres",
        "user": cluster.user,
        "templates": {"orders:read": "orders_reader"},
        "sslmode": "disable",
    }
    password = (cluster.password or "").encode()
    put_secret(hub, "orders-db", "postgres", json.dumps(config).encode(), password, now=now)
    sealed = not any(password in p.read_bytes() for p in hub.path.iterdir() if p.is_file())
    story.say("hub keeps orders-db (postgres engine: a role per lease); the admin password is")
    story.say(f"  sealed by the vault: in none of the node's files in clear: {sealed}")


async def _refund_scene(
    story: Story,
    desk: NodeRuntime,
    support: BrokerClient,
    payments: PaymentsService,
    bundle: bytes,
    now: int,
) -> str:
    """Gate 3: the refund tool declares the payments secret; the desk's tool gate decides the
    call with the same bundle, leases the secret for the caller over the desk's channel to the
    hub, and hands the tool a 2-minute token."""
    verifier = desk.trust.verifier
    if verifier is None:
        raise ConfigError("desk trusts no authority: its enrollment failed")
    bundles = BundleStore(verifier)
    bundles.accept(bundle, feeds=desk.trust.feeds, now=now)
    point = DecisionPoint(bundles, lambda authority: desk.trust.feeds.get(authority))
    (held,) = desk.node.wallet.held("support-agent")
    holder = Identifier(desk.node.identities.find("support-agent").identifier)
    credential = verifier.verify(held.chain, presenter=holder, feeds=desk.trust.feeds, now=now)
    tokens: list[str] = []
    tools = [Tool.from_function(_refund_tool(payments, tokens), name="refund")]
    source = RemoteLeases(support, holder, asyncio.get_running_loop())
    gate = ToolGate(point, tools, clock=desk.clock, leases=ToolLeases.for_tools(source, tools))
    story.say("support-agent calls its refund tool, which declares: payments [refunds], 2 min")
    arguments = {"order": "4471", "amount": "20.00 EUR"}
    result = await asyncio.to_thread(gate.invoke, credential, "refund", arguments)
    (lease,) = await support.leases()
    story.say(
        f"  gate 3 leased a token for {lease.expires_at - lease.issued_at} s (lease "
        f"{lease.handle}) and handed it to the tool"
    )
    story.say(f"  payments validated it on its own: {result.value}")
    story.say("    (troth's validate_token over the JWKS: signature, exp, aud, scope refunds)")
    again = await asyncio.to_thread(gate.invoke, credential, "refund", arguments)
    story.say(f"  a second refund reuses the live lease: same token: {tokens[0] == tokens[-1]}")
    story.say(f"  payments: {again.value}")
    return tokens[0]


async def _database_scene(story: Story, support: BrokerClient, cluster: PgCluster | None) -> Any:
    if cluster is None:
        return None
    import psycopg

    issued = await support.issue("orders-db")
    login = issued.credential.reveal()
    session = await asyncio.to_thread(
        lambda: psycopg.connect(
            host=str(login["host"]),
            user=str(login["user"]),
            password=str(login["password"]),
            dbname=str(login["dbname"]),
            autocommit=True,
        )
    )
    row = await asyncio.to_thread(
        lambda: session.execute("SELECT id, total FROM orders WHERE id = 4471").fetchone()
    ) or ("-", "-")
    story.say(f"support-agent leased orders-db: database role {login['user']}")
    story.say("  (a random password, valid 10 min; it can read orders and nothing else)")
    story.say(f"  its open session reads: order {row[0]}, {row[1]} EUR")
    return session


async def _revocation(
    story: Story,
    hub: NodeRuntime,
    desk: NodeRuntime,
    support: BrokerClient,
    payments: PaymentsService,
    token: str,
    charge: Any,
    session: Any,
) -> None:
    holder = Identifier(desk.node.identities.find("support-agent").identifier)
    story.say("the hub's authority revokes support-agent (as troth revoke identity does)")
    started = time.monotonic()
    await asyncio.to_thread(hub.node.authority().revoke_identity, holder, now=hub.clock.now())
    broker = local_broker(hub).started()
    while await asyncio.to_thread(broker.leases, holder) and time.monotonic() - started < 30:
        await asyncio.sleep(0.02)  # open leases left: the feed has not reached the broker yet
    story.say(
        f"  {time.monotonic() - started:.2f} s later the broker had revoked its leases"
        " (the hub reads its authority's feed every second)"
    )
    if session is not None:
        story.say(f"  its open database session: {await asyncio.to_thread(_probe, session)}")
    story.say(f"  its refund token at payments: {payments.refund(token, '4471', '20.00 EUR')}")
    try:
        await support.issue("payments", scope=("refunds",))
        story.say("  a new lease: granted (this must never happen)")
    except Denied as exc:
        why = "; ".join(exc.reasons).replace(str(holder), "support-agent")
        story.say(f"  a new lease: {why.replace(str(hub.identifier), 'hub')}")
    except TrothError as exc:
        story.say(f"  a new lease: refused: {exc}")
    story.say(
        f"  billing-agent's token: {payments.check(str(charge.credential.reveal()['token']))}"
    )


def _probe(session: Any) -> str:
    try:
        session.execute("SELECT 1").fetchone()
    except Exception as exc:  # psycopg.OperationalError: the server ended the session
        return f"terminated ({str(exc).splitlines()[0][:60]})"
    return "still open (this must never happen)"
