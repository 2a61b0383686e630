"""Review 21's attacks on the newest trace and secrets code (the durable trace outbox, the
postgres engine's privilege copy, the forward pool and http-inject, the broker's token checks):

1. a postgres lease's role owns what it makes in a database the secret does not list (any
   role may create a large object in any database it may connect to, `postgres` and
   `template1` included: PUBLIC holds CONNECT): revocation runs DROP OWNED in the configured
   databases only, so DROP ROLE fails for good — the lease stays REVOKING at every sweep, the
   role is never dropped, and `remove_secret` (or moving the secret) fails until an operator
   cleans up by hand;
2. the trace outbox keeps a refused record's detail as the trace service sent it: the bound on
   what the outbox holds (TRACE_OUTBOX_BYTES) counts the record, not the detail, so a
   malicious or broken service that refuses each record with a detail of about a service
   message (1 MiB) grows the node's database by up to TRACE_OUTBOX_RECORDS MiB (64 GiB);
3. http-inject redacts the secret from the answer only as the literal bytes sent: an upstream
   that echoes the request's headers the way common servers encode text — JSON with `\\/`
   (PHP), `\\u0026` (Go), HTML entities, percent-encoding — hands the agent its secret (a
   base64 credential holds `/` and `+`; `Basic` holds the password itself);
4. the forward pool gives each caller without a credential (a stranger: any new key) a share of
   its own, though such a caller can hold no lease: a few strangers' forwards, waiting for the
   broker's thread to refuse them, fill the pool and every member's forward is refused BUSY;
5. two postgres leases that may create tables (one agent's, or two agents') each build a view
   on the other's table: `DROP OWNED BY` one fails while the other's view depends on it, and
   the other way round, so neither revocation ever completes (both roles stay, with their
   tables and what was granted on them; the secret cannot be removed);
6. a node's trace outbox is one bound for every record the node makes: a member whose
   requests the broker refuses (a `deny` record each) fills it while the trace service is
   slow or out of reach, and then every audited operation of every other member fails
   OVER_LIMIT until it drains (fixed for refusals: they may fill TRACE_OUTBOX_DENIAL_PERCENT
   of it; a member allowed to lease can still fill it by leasing, by design);
7. the postgres engine's admin sessions (a superuser on PostgreSQL 15) keep the default
   search_path (`"$user", public`) and call functions unqualified (`starts_with(rolname, ...)`
   at every sweep, `pg_terminate_backend`, ...): a lease that may create in `public` defines
   `public.starts_with(name, text)`, a closer match than `pg_catalog.starts_with(text, text)`
   for a `name` argument, and the broker's next sweep runs it as the admin — the lease makes
   its role SUPERUSER (CVE-2018-1058's pattern; on PostgreSQL 14 and older PUBLIC may create
   in `public` by default).

Each test asserts the secure behaviour and is marked xfail (strict) while main has the bug.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - read: the outbox at each crash point: `add` commits before it returns; a batch is read from
#   the stored bytes and resent as they are (answered `already`); an answer, a re-signing and a
#   set-aside are one transaction each and name rows by position and hash; one sender per
#   database (flock), writers behind BEGIN IMMEDIATE; a corrupt row is set aside (its envelope
#   or disclosures do not decode) or refused by the collector and set aside; a full disk fails
#   `add` (nothing acknowledged) or the answer's transaction (the batch goes again). A stale
#   record is one the log does not hold, except when two copies of one batch race (a resend
#   after a client timeout while the first is still appended) and the later copy is refused
#   for the time window: the record is then set aside as `replayed` though in the log
#   (conservative: nothing lost, nothing twice).
# - read: a collector's transient refusal (SIGNER_INVALID while its copy of a feed is stale,
#   CREDENTIAL_INVALID) set records aside for good: the known "set-aside records cannot be
#   re-queued". Fixed by review 48n: such refusals are `not accepted yet`, kept and sent again
#   (tests/test_review48n_retry.py).
# - read (low): a record id queued again after its first copy was set aside is kept once in
#   `trace_outbox_refused` (INSERT OR REPLACE) but counted twice in `trace_outbox_agents`.
# - read (low): another lease may grant its own objects to a lease's role: that lease's next
#   renewal REVOKEs them and so ends its sessions (no privilege kept). A login racing NOLOGIN
#   and pg_terminate_backend could slip in (a window of milliseconds): it keeps PUBLIC's rights
#   only once the REVOKEs ran, and is ended at the next try if it holds DROP OWNED up.
# - read (low): `put_secret` moving a postgres secret while an issue is in flight: the issuing
#   path revokes what it made under the spec it captured, but the old admin password no longer
#   unseals (sealed under the new configuration), so the role it made at the old location
#   stays (its password never left the broker; VALID UNTIL bounds logins; the sweep looks at
#   the new location only).
# - read (low): a renewal with a shorter ttl leaves the earlier token (exp = the old expiry)
#   valid until the sweep expires the lease (the agent's own choice).
# - read: tokens: jti binds the lease (ACTIVE, engine token), sub its identity, scope within its
#   scopes, iat/exp within its life, aud the secret's audience now; a retired key's token must
#   predate the retirement as of the JWKS read at that validation.
# - read: http-inject: no redirect is followed, the answer is bounded (512 KiB, 100 headers,
#   the deadline), a secret with CR/LF is refused at `put_secret`; an `http` upstream's address
#   is whatever DNS answers (the operator's choice; `https` verifies the name).

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW as LEASE_NOW
from tests.support.brokers import (
    broker_of,
    client,
    hub_bundle,
    install_bundle,
    run_broker,
)
from tests.support.leases import LeaseWorld, audited_broker, make_world
from tests.support.nodes import HUB, MemNet, route
from tests.support.upstreams import echoing, forward_once, held_upstream
from tests.test_secrets_forward_pool import GET, ORDERS_POLICIES, dispatcher, until
from tests.test_secrets_forward_pool import secrets as pool_secrets
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    _admin_sql,
    login,
    now,
    orders,
    world,
)
from tests.test_secrets_postgres import setup as pg_setup
from tests.test_trace_outbox import Outboxes
from tests.test_trace_service import NOW, Service, service, tool  # noqa: F401 - a fixture
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseId, LeaseState
from troth.secrets.book import REVOKE_RETRY_FIRST
from troth.trace.submit import RECEIPTS_TYPE, VERSION, Receipts

# -- 1. a postgres lease's objects in a database the secret does not list ---------------------


def test_a_lease_cannot_keep_its_role_with_an_object_in_an_unlisted_database(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """The secret lists only the orders database. The lease logs in to the cluster's main
    database instead (PUBLIC may connect) and creates a large object there (no privilege
    needed) and grants it to PUBLIC. Its revocation must still drop the role: the lease ends
    REVOKED, and the secret can be removed."""
    broker = pg_setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    role = issued.lease.engine_ref
    credential = issued.credential.reveal()
    with login(orders, {**credential, "dbname": orders.server.dbname}) as session:
        (made,) = session.execute("SELECT lo_create(0)").fetchone()
        session.execute(f"GRANT SELECT ON LARGE OBJECT {int(made)} TO PUBLIC")
    lease = broker.revoke(agent, issued.lease_id, now=now())
    if lease.state is not LeaseState.REVOKED:  # a session not ended yet: retried after the
        broker.sweep(now() + 1 + REVOKE_RETRY_FIRST)  # first back-off (review 45b)
    assert role not in orders.roles("tl_")
    assert broker.book.lease(issued.lease.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
    broker.remove_secret(SECRET, now=now())
    with orders.server.connect() as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", (made,)
        ).fetchone()
    assert left == (0,)  # dropped with the role, not handed to anyone
    broker.close()


# -- 2. a refusal's detail is stored as the trace service sent it ----------------------------


def test_a_refusals_detail_cannot_grow_the_outbox_past_its_bound(
    tmp_path: Path,
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """The service answers a batch with a refusal whose detail is 900 kB (it fits a service
    message; an honest collector cuts its details to MAX_TRACE_REFUSAL_DETAIL characters). The
    record is set aside, and what the outbox keeps of the detail is no longer than that."""
    outboxes = Outboxes(tmp_path / "node.db", service.world.support)
    outbox = outboxes.open()
    outbox.add(tool("refund"), now=NOW)
    batch = outbox.next_batch(NOW)
    assert batch is not None
    wire = [RECEIPTS_TYPE, VERSION, [[2, "malformed", "x" * 900_000]], None, None]
    outbox.answered(Receipts.from_cbor(wire, expected=1), now=NOW)
    (kept,) = outbox.store.refused()
    assert kept.reason == "malformed"
    assert len(kept.detail) <= limits.MAX_TRACE_REFUSAL_DETAIL
    outboxes.close()


# -- 3. an upstream that echoes the secret encoded --------------------------------------------

_SECRET = "Bearer sk/live+CANARY&7f<3a>9c\"2e'41=="  # what encoders escape: / + & < > " '
_ECHOES: dict[str, Callable[[str], str]] = {
    "python-json": json.dumps,
    "php-json": lambda text: json.dumps(text).replace("/", "\\/"),
    "go-json": lambda text: (
        json.dumps(text).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    ),
    "html": html.escape,
    "html-decimal": lambda text: html.escape(text).replace("&#x27;", "&#39;"),
    "percent": lambda text: urllib.parse.quote(text, safe=""),
    "percent-lower": lambda text: re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(text, safe="")
    ),
    "form": urllib.parse.quote_plus,
}
_DECODED: dict[str, Callable[[str], str]] = {
    "python-json": json.loads,
    "php-json": json.loads,
    "go-json": json.loads,
    "html": html.unescape,
    "html-decimal": html.unescape,
    "percent": urllib.parse.unquote,
    "percent-lower": urllib.parse.unquote,
    "form": urllib.parse.unquote_plus,
}


@pytest.mark.parametrize("encoding", sorted(_ECHOES))
def test_an_upstream_that_echoes_the_secret_encoded_leaks_nothing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    encoding: str,
) -> None:
    """An allowed path of the upstream echoes the request's Authorization header in its body
    and in a header, encoded as its framework does. What the agent reads, decoded the same
    way, holds neither the secret nor its credential part."""
    answer = forward_once(tmp_path, world, echoing(_ECHOES[encoding]), _SECRET.encode(), now=now())
    assert answer.status == 200
    decode = _DECODED[encoding]
    credential = _SECRET.partition(" ")[2]
    for seen in (answer.body.decode("latin-1"), dict(answer.headers)["X-Seen"]):
        try:
            plain = decode(seen)
        except ValueError:  # what the redaction left is no longer the encoding's text
            plain = seen
        assert credential not in plain


# -- 4. strangers fill the forward pool --------------------------------------------------------


def test_strangers_cannot_fill_the_forward_pool(tmp_path: Path) -> None:
    """The broker's thread is busy (a revocation, a sweep). Four strangers (nodes with no
    credential: keys are free) send MAX_FORWARDS_PER_AGENT forwards each, naming a made-up
    lease: none can be served. A member's forward that arrives meanwhile still gets a place
    and reaches the upstream once the broker's thread is free."""
    with held_upstream() as upstream:

        async def test(net: MemNet) -> None:
            assert net.hub is not None
            await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=ORDERS_POLICIES))
            member = await net.member("member")
            lease = await client(member).issue("orders-api")
            hub_id = net.identifier(net.hub)
            strangers = [await net.node(f"stranger{n}") for n in range(4)]
            for stranger in strangers:  # a channel each (the hub admits anyone authenticated)
                await stranger.channel_to(route(HUB), expect=hub_id, also_trust=frozenset({hub_id}))
            sends = [dispatcher(net, stranger) for stranger in strangers]
            service = broker_of(net.hub)
            busy, free = threading.Event(), threading.Event()

            def hold_the_broker() -> None:  # on the broker's thread
                busy.set()
                free.wait(20)

            holding = asyncio.ensure_future(service._run(hold_the_broker))
            assert await asyncio.to_thread(busy.wait, 10)
            made_up = LeaseId.new(net.clock.now())
            tries = [
                asyncio.create_task(send(made_up))
                for send in sends
                for _ in range(limits.MAX_FORWARDS_PER_AGENT)
            ]
            await until(
                lambda: (
                    service.forwards.running() >= limits.MAX_FORWARDS
                    or all(t.done() for t in tries)
                )
            )
            share = frozenset({net.identifier(member)})  # the member's share of the pool
            mine = asyncio.create_task(client(member).forward(lease.lease_id, GET))
            await until(lambda: mine.done() or service.forwards.running(share) == 1)
            free.set()
            await holding
            upstream.release.set()
            assert (await mine).status == 204  # not BUSY
            for refused in await asyncio.gather(*tries, return_exceptions=True):
                assert isinstance(refused, SecretError)

        run_broker(test, tmp_path, secrets=pool_secrets(upstream))


# -- 5. two leases' objects that depend on each other ----------------------------------------


def test_two_leases_whose_objects_depend_on_each_other_are_both_revoked(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """Lease A makes table ta, lease B table tb (each in its own schema), each readable by
    PUBLIC; A makes a view on tb, B one on ta. Both are revoked: after a sweep, both roles
    are gone and the secret can be removed."""
    broker = pg_setup(tmp_path, world, orders)
    agent = world.credential_a()
    a, b = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in range(2))
    share = 'GRANT SELECT ON {0} TO PUBLIC; GRANT USAGE ON SCHEMA "{1}" TO PUBLIC'
    with login(orders, a.credential.reveal()) as sa, login(orders, b.credential.reveal()) as sb:
        sa.execute("CREATE TABLE ta (x int); " + share.format("ta", a.lease.engine_ref))
        sb.execute("CREATE TABLE tb (x int); " + share.format("tb", b.lease.engine_ref))
        sa.execute(f'CREATE VIEW va AS SELECT * FROM "{b.lease.engine_ref}".tb')  # noqa: S608
        sb.execute(f'CREATE VIEW vb AS SELECT * FROM "{a.lease.engine_ref}".ta')  # noqa: S608
    for issued in (a, b):
        broker.revoke(agent, issued.lease_id, now=now())
    # past the first back-off: a revocation that met a session not ended yet is retried then
    broker.sweep(now() + 1 + REVOKE_RETRY_FIRST)
    assert orders.roles(f"tl_{broker.keys.broker_id}_") == set()  # this broker's roles only
    for issued in (a, b):
        lease = broker.book.lease(issued.lease.handle)
        assert lease is not None
        assert lease.state is LeaseState.REVOKED
    broker.remove_secret(SECRET, now=now())
    broker.close()


# -- 6. one member's denials fill the outbox every member's audit needs ---------------------


def test_one_members_denied_requests_cannot_stop_the_others_leases(tmp_path: Path) -> None:
    """The broker's audit goes to the node's trace outbox (a trace service named in node.json)
    and the service is out of reach for now (nothing drains; bound made small: 20 records).
    Agent B, allowed nothing, asks for the payments secret again and again: each refusal is a
    `deny` record. Agent A, allowed it, must still get its lease."""
    lease_world = make_world(LEASE_NOW)
    policy = AllowListPolicy({lease_world.agent_a.identifier: {"payments": None}})
    broker = audited_broker(tmp_path / "node.db", lease_world, policy, max_records=20)
    for _ in range(25):
        with pytest.raises(SecretError) as refused:  # denied; once B's share is full, unaudited
            broker.issue(lease_world.credential_b(), "payments", scope=["refunds"], now=LEASE_NOW)
        assert refused.value.reason in {SecretFailure.DENIED, SecretFailure.AUDIT_FAILED}
    issued = broker.issue(lease_world.credential_a(), "payments", scope=["refunds"], now=LEASE_NOW)
    assert issued.lease.state is LeaseState.ACTIVE
    broker.close()


# -- 7. the admin's unqualified function calls resolve to a lease's functions --------------


def test_a_lease_cannot_have_the_admin_run_its_function(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """PUBLIC may create in `public` for a while (its default on PostgreSQL 14 and older; an
    issue or renewal meanwhile is refused since review 70n, schemas 1 and 3). The lease
    defines `public.starts_with(name, text)`, which makes its own role SUPERUSER when a
    superuser calls it. After the broker's sweep (which lists the roles of its prefix) and a
    renewal, the role is still no superuser."""
    broker = pg_setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    role = issued.lease.engine_ref
    _admin_sql(orders, "GRANT CREATE ON SCHEMA public TO PUBLIC")
    with login(orders, issued.credential.reveal()) as session:
        session.execute(
            "CREATE FUNCTION public.starts_with(name, text) RETURNS boolean LANGUAGE plpgsql "
            "AS $$ BEGIN IF current_setting('is_superuser') = 'on' THEN "
            f"EXECUTE 'ALTER ROLE {role} SUPERUSER'; END IF; "
            "RETURN pg_catalog.starts_with($1::text, $2); END $$"
        )
    _admin_sql(orders, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # the function stays
    broker.sweep(now() + 1)
    broker.renew(agent, issued.lease_id, ttl=120, now=now())
    with orders.server.connect() as admin:
        superuser = admin.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)
        ).fetchone()
    assert superuser == (False,)
    broker.revoke(agent, issued.lease_id, now=now())
    assert role not in orders.roles("tl_")
    broker.close()
