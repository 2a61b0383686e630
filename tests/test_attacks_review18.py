"""Review 18's attacks: the surfaces reviewed least recently (gates' bundles and decisions, the
broker's token keys, its engines' revocation, the served broker's thread):

1. a policy bundle signed under a history the feed has since superseded (a policy-admin or the
   authority rotated after its key was stolen) stays in force at every decision, and at the top
   revision a stolen authority key locks the rotated authority out for good;
2. a `VerifiedCredential` held by a gate is re-checked against the current feed for
   revocations only: a chain whose delegator rotated (superseded) keeps being allowed;
3. `Broker.validate_token` accepts a token its retired (rotated-out) key minted after the
   retirement, with any subject, audience and scope, on any active lease's public handle;
4. `put_secret` over a secret with open leases changes how those leases are revoked: a postgres
   lease revoked after its secret was re-stored with another engine keeps its database role and
   its open session;
5. the served broker runs http-inject's upstream calls on its one thread: a forward to a slow
   upstream holds back every other lease's revocation until the upstream answers.

Each test asserts the secure behaviour and is marked xfail (strict) while main has the bug.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - read: http-inject's target checks: `//`, `.`/`..`/`...` segments, `;`, `%2e %2f %5c %25`
#   and control escapes, `#`, `\`, absolute-form and scheme-relative targets, non-ASCII and
#   CR/LF are refused before any rule is matched; `%uXXXX` fails the segment grammar; a rule
#   matches segments literally, so `%6f`-style escapes never match a literal segment.
# - read: http-inject headers: names are tokens, values free of CR/LF/NUL; Host, framing,
#   hop-by-hop, Connection-named, credential, override and `X-Forwarded-*` headers are dropped;
#   Accept-Encoding is forced to identity and an encoded answer is refused; redirects are not
#   followed (http.client); the secret (and its credential part) is redacted in headers, reason
#   and body; the response is read up to its limit only.
# - read: `validate_token`: kid and alg must both match a JWKS key (no `none`, no alg confusion
#   between EdDSA and ES256), `crit` refused, strict canonical base64url (no signature
#   malleability through trailing bits), ES256 high-s refused, exp/nbf/iat/aud/iss checked;
#   claims are parsed only after the signature verified; a scope cannot carry a space.
# - read: the served broker's renew and forward need the chain that issued the lease
#   (`_justifying`), so a token's `act` claims always follow the lease's chain there.
# - ran: gate 2 denies (`arguments`) an integer argument given as 5.0, 1e3, True, "5" or
#   2^53, and an extra `lease` argument (records are closed).
# - read: the tool gate judges, records and runs the same filled arguments; tool, service,
#   method and secret names are checked before they reach a Cedar uid; argument names never
#   start with `__` (no `__entity` smuggling).
# - ran: `troth node create` + `node start` (umask 022): every directory 0700, vault.key,
#   node.db(-wal/-shm), node.json, node.log, status.json, node.lock, node.pid and control.sock
#   0600; a `--json` usage error is one JSON object on stdout.
# - read: CLI output files go through a 0600 O_EXCL temp file and a rename (a symlink at the
#   target is replaced, never followed); node.db is created 0600 before SQLite opens it.

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.brokers import (
    POLICIES,
    broker_of,
    client,
    hub_bundle,
    install_bundle,
    run_broker,
)
from tests.support.feeds import entries, pages
from tests.support.gates import POLICIES as GATE_POLICIES
from tests.support.gates import TOOLS, T, rotate, superseding
from tests.support.gates import make_world as make_gates_world
from tests.support.leases import make_world, open_broker
from tests.support.nodes import MemNet
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` is a fixture
    SECRET,
    OrdersDb,
    assert_session_ended,
    login,
    now,
    orders,
)
from tests.test_secrets_postgres import setup as pg_setup
from troth import limits
from troth.credentials import (
    RevocationKind,
    verify_feed,
)
from troth.errors import CredentialError, SecretError, SecretFailure
from troth.gates import Outcome, ToolCall, create_bundle
from troth.secrets import AllowListPolicy, HttpRequest, LeaseState
from troth.secrets.engines.token import claims_json
from troth.secrets.jwt import encoded_header
from troth.secrets.lease import b64url
from troth.vault import KeyHandle

DAY = 86_400
ALL = '@id("all") permit(principal, action in Action::"invoke", resource);'
LOOKUP = ToolCall("lookup_order", {"order_id": "4471"})


# -- 1. a bundle signed under a superseded history stays in force ---------------------------------


def test_a_bundle_whose_signer_the_feed_supersedes_is_no_longer_in_force() -> None:
    """A thief with a backup of the policy-admin's key signs a permit-all bundle (a higher
    revision) and pushes it; nodes accept it (the admin's history is current then). The admin
    notices and rotates; the authority's feed says the admin's one-change history is superseded.
    A bundle signed under that history is refused from then on (`verify_bundle`:
    SIGNER_SUPERSEDED, tests/test_gates_bundles.py), as is every credential the old key signed
    (docs/credentials.md) — but the one already accepted keeps deciding every call for as long
    as the admin's chain lives (30 days here)."""
    world = make_gates_world()
    store = world.store(world.bundle(revision=1))
    stolen = create_bundle(
        world.admin.signer,  # the admin's signing key, from the thief's backup
        authority=world.authority.identifier,
        policies=ALL,
        schema="",
        tools=TOOLS,
        revision=2,
        now=T + 1,
        ttl=7 * DAY,
        chain=world.admin_chain,
    )
    store.accept(stolen, feeds=world.feeds(), now=T + 5)
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    assert point.decide(member, ToolCall("export_customers", {}), now=T + 10).allowed

    superseded = entries(
        world.authority, [(RevocationKind.SUPERSEDED, world.admin.identifier.digest)], at=T + 20
    )
    (page,) = pages(world.authority, superseded, now=T + 20, per_page=10)
    world.feed = verify_feed(
        page, authority=world.authority.identifier, now=T + 20, max_staleness=60
    )

    decision = point.decide(member, ToolCall("export_customers", {}), now=T + 25)
    assert (decision.allowed, decision.outcome) == (False, Outcome.NOT_IN_FORCE)


def test_a_rotated_authority_replaces_the_top_revision_bundle_its_stolen_key_signed() -> None:
    """The authority's key leaks (a stolen backup). The thief signs a permit-all bundle at
    MAX_POLICY_REVISION for MAX_POLICY_BUNDLE_TTL and pushes it. The authority rotates — the
    documented recovery from a stolen authority key — and its feed supersedes the old history.
    The thief's bundle stays in force (finding 1) and, worse, no bundle the rotated authority
    signs can ever replace it: every revision is `<=` the one held, so the store refuses it as
    a rollback, today and after the thief's bundle expires (then every call is denied, for
    good, on every node that took it)."""
    world = make_gates_world()
    store = world.store(world.bundle(revision=1))
    stolen = create_bundle(
        world.authority.signer,  # the authority's key, from the thief's backup
        authority=world.authority.identifier,
        policies=ALL,
        schema="",
        tools=TOOLS,
        revision=limits.MAX_POLICY_REVISION,
        now=T,
        ttl=limits.MAX_POLICY_BUNDLE_TTL,
    )
    store.accept(stolen, feeds=world.feeds(), now=T + 5)

    rotated, authority = rotate(world, world.authority, T + 20)
    world.feed = superseding(authority, rotated, world.authority, T + 30)
    repaired = create_bundle(
        authority.signer,
        authority=world.authority.identifier,
        policies=GATE_POLICIES,
        schema="",
        tools=TOOLS,
        revision=2,
        now=T + 61,  # more than the clock skew after the thief's (review 35c, gates 1)
        ttl=DAY,
    )
    store.accept(repaired, feeds=world.feeds(), now=T + 62)
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.body.revision == 2


def world_policies() -> str:
    from tests.support.gates import POLICIES as GATES_POLICIES

    return GATES_POLICIES


# -- 2. a held VerifiedCredential ignores its delegator's rotation --------------------------------


def test_a_held_credential_whose_delegator_rotated_is_denied() -> None:
    """docs/policy.md: a `VerifiedCredential` caller is "checked against the current feed at
    each decision". The support agent's key is stolen and the thief delegates to a sub-agent
    (here: the world's sub-agent chain, signed with support's first key); a gate holds the
    sub-agent's verified credential. Support rotates and the feed supersedes its one-change
    history: verifying the chain again now fails (`superseded history`), but the gate's
    per-decision check looks at revocations only and keeps allowing the thief's delegate."""
    world = make_gates_world()
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    assert point.decide(sub, LOOKUP, now=T + 20).allowed

    rotated, _ = rotate(world, world.support, T + 30)
    world.feed = superseding(world.authority, rotated, world.authority, T + 40)
    with pytest.raises(CredentialError, match="superseded"):
        world.credential(world.sub_chain, world.sub, now=T + 45)  # what a fresh check says
    decision = point.decide(sub, LOOKUP, now=T + 45)
    assert (decision.allowed, decision.outcome) == (False, Outcome.CREDENTIAL)


# -- 3. a retired token key keeps minting valid tokens --------------------------------------------


def test_a_token_minted_by_a_retired_key_after_its_retirement_is_refused(tmp_path: Path) -> None:
    """The broker's token key leaks (a vault backup); the operator rotates it
    (`broker.keys.rotate_signing_key`). The retired key stays published for 30 days so that the
    tokens it signed before still validate — and the broker, which knows when the key retired
    and what each lease is, accepts anything it signs meanwhile: a token dated after the
    retirement, for another audience, another subject and a scope no secret offers, riding on
    the public handle (`jti`) of any active lease."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"reports": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    config = {"scopes": ["read"], "ttl": 300, "audience": "reports-api"}
    broker.put_secret("reports", "token", config, b"", now=NOW)
    issued = broker.issue(world.credential_a(), "reports", now=NOW)
    (old,) = broker.store.signing_keys()
    broker.keys.rotate_signing_key(NOW + 10)

    claims = claims_json(
        issuer=broker.issuer,
        subject=world.agent_b.identity.identifier.did,
        audience="payments-api",
        issued_at=NOW + 100,  # after the retirement
        expires_at=NOW + 20 * DAY,
        jti=str(issued.lease.handle),  # public: `lease list`, audit records
        scope="payments:admin",
        act=None,
    )
    signing_input = f"{encoded_header('EdDSA', old.kid)}.{b64url(claims)}"
    signature = broker.vault.sign(KeyHandle.parse(old.handle), signing_input.encode())
    forged = f"{signing_input}.{b64url(signature)}"
    with pytest.raises(SecretError) as raised:
        broker.validate_token(forged, audience="payments-api", now=NOW + 200)
    assert raised.value.reason is SecretFailure.JWT_UNKNOWN_KEY


# -- 4. re-storing a secret changes how its open leases are revoked -------------------------------


def test_a_lease_revoked_after_its_secret_was_restored_loses_its_database_role(
    tmp_path: Path,
    orders: OrdersDb,  # noqa: F811 - the fixture of tests/test_secrets_postgres.py
) -> None:
    """An agent holds a postgres lease of `orders-db` and has a session open. The operator
    re-stores `orders-db` (`put_secret`, "store or replace") with another engine — or moves it
    to another server: the same code path takes the new `host`. The lease stays ACTIVE (nothing
    revokes it), and when it is revoked the broker runs the *current* engine's revocation on the
    lease's role name: the token engine's no-op here (a new server's "role already gone"
    there). The lease reads REVOKED; the role keeps LOGIN, its memberships and its open
    session, and no orphan sweep ever looks for it again."""
    world = make_world(now())
    broker = pg_setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    credential = issued.credential.reveal()
    session = login(orders, credential)
    assert session.execute("SELECT count(*) FROM orders").fetchone() == (1,)

    token = {"scopes": ["orders:read", "orders:write"], "ttl": 60, "audience": "orders"}
    broker.put_secret(SECRET, "token", token, b"", now=now())
    lease = broker.revoke(agent, issued.lease_id, now=now())
    assert lease.state is LeaseState.REVOKED
    broker.sweep(now())
    assert credential["user"] not in orders.roles("tl_")
    assert_session_ended(session)


# -- 5. one slow upstream holds the served broker's thread ----------------------------------------


@pytest.fixture
def stalled_upstream() -> Iterator[tuple[str, threading.Event, threading.Event]]:
    """An upstream that answers only when released (or after 20 s): its URL, the event set
    when a request arrived, and the release."""
    arrived, release = threading.Event(), threading.Event()

    class Stall(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived.set()
            release.wait(20)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stall)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", arrived, release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_slow_upstream_does_not_hold_back_the_brokers_revocations(
    tmp_path: Path, stalled_upstream: tuple[str, threading.Event, threading.Event]
) -> None:
    """Any agent with an http-inject lease can pick a slow path of its upstream (a long poll,
    a large export, a stream that trickles; `timeout` bounds each socket read only, 1-120 s).
    While its forward waits, the broker's one thread (SQLite, signing *and* upstream calls,
    docs/secrets.md "Its own thread") does nothing else: here an operator's
    `troth lease revoke --holder` of another agent waits for it; so do the feed's revocations
    (the 1 s bound), the sweep and every other agent's issue. Queued forwards add up."""
    url, arrived, release = stalled_upstream
    config = {
        "scopes": ["orders:read"],
        "upstream": url,
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/orders/*"}],
        "timeout": 30,
    }
    policies = POLICIES + (
        '@id("orders-api") permit(principal, action == Action::"lease", '
        'resource == Secret::"orders-api");\n'
    )
    order: list[str] = []

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=policies))
        slow, victim = await net.member("slow"), await net.member("victim")
        held = await client(victim).issue("payments", scope=("refunds",))
        lease = await client(slow).issue("orders-api")
        forward = asyncio.create_task(
            client(slow).forward(lease.lease_id, HttpRequest("GET", "/orders/1"))
        )
        assert await asyncio.to_thread(arrived.wait, 5), "the forward never reached upstream"
        revoke = asyncio.create_task(
            broker_of(net.hub).local("revoke-identity", {"identity": str(net.identifier(victim))})
        )
        done, _ = await asyncio.wait({revoke}, timeout=5)  # the forward's call waits 10 s
        order.append("revoked" if done else "still waiting")
        release.set()
        assert (await forward).status == 204
        answer = await revoke
        assert [row["handle"] for row in answer["leases"]] == [str(held.lease.handle)]

    run_broker(
        test,
        tmp_path,
        secrets={
            "payments": ("token", {"scopes": ["refunds"], "audience": "payments"}, b""),
            "orders-api": ("http-inject", config, b"Bearer upstream-secret"),
        },
    )
    assert order == ["revoked"]  # while the upstream had not answered yet
