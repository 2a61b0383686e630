"""Adversarial review of the newest layers (gates, leased secrets, signed traces): each test is
an attack through public APIs that asserts the secure behaviour. Each failed on main before its
fix (a former policy-admin's backdated bundle, a revoked admin's top revision, http-inject's
compressed and overriding requests, a tampered secret configuration, subscriptions taken with
made-up authorities)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.gates import ADMIN, TOOLS, GatesWorld, T
from tests.support.gates import make_world as make_gates_world
from tests.support.leases import CANARY, Leaks, LeaseWorld, make_world, open_broker
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.upstreams import serving
from troth import limits
from troth.credentials import CredentialChain, RevocationKind, issue_credential
from troth.errors import PolicyError, PolicyFailure, SecretError, SecretFailure
from troth.gates import BundleStore, SqliteBundleTable, bundles, create_bundle
from troth.node.control import perform
from troth.node.services import call
from troth.node.services.node_policies import NodeFeeds, NodePolicies
from troth.node.services.policy import POLICY
from troth.secrets import AllowListPolicy, Broker, HttpRequest, HttpResponse, IssuedLease
from troth.storage import SqliteDatabase

DAY = 86_400


# -- gates: a policy-admin whose role lapsed still signs bundles --------------------------------


def _short_lived_admin_chain(world: GatesWorld, ttl: int) -> bytes:
    """The authority grants the admin `troth.role=policy-admin` for `ttl` seconds only."""
    credential = issue_credential(
        world.authority.signer,
        subject=world.admin.identifier,
        attributes=ADMIN,
        now=T,
        ttl=ttl,
        depth=0,
    )
    return CredentialChain((credential,), (world.authority.identity.history,)).encode()


@pytest.mark.parametrize("ttl", [60 * DAY, 3000])
def test_an_expired_policy_admin_cannot_backdate_a_new_bundle(
    ttl: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain is checked at the signer-chosen issued_at, so a bundle may not outlive it:
    backdated into the lapsed grant's window, it is either past the chain (refused) or
    already expired."""
    world = make_gates_world()
    chain = _short_lived_admin_chain(world, ttl=3600)  # the role lapses at T + 3600
    store = BundleStore(world.verifier)
    store.accept(world.bundle(revision=1), feeds=world.feeds(), now=T + 5)  # the authority's

    # ten days after the grant expired, the former admin signs "revision 2" dated T + 60
    later = T + 10 * DAY
    world.refresh_feed(later)  # nothing revoked: the grant simply expired
    permit_all = '@id("own") permit(principal, action, resource);'
    # the attacker signs with a tool of its own that skips create_bundle's refusal
    monkeypatch.setattr(bundles, "_check_admin_chain", lambda *_: 2**62)
    forged = create_bundle(
        world.admin.signer,
        authority=world.authority.identifier,
        policies=permit_all,
        schema="",
        tools=TOOLS,
        revision=2,
        now=T + 60,  # backdated into the window of the lapsed grant
        ttl=ttl,
        chain=chain,
    )
    with pytest.raises(PolicyError) as caught:
        store.accept(forged, feeds=world.feeds(), now=later)
    wanted = PolicyFailure.SIGNER_INVALID if ttl > 3600 else PolicyFailure.EXPIRED
    assert caught.value.reason is wanted


def test_a_policy_admin_cannot_sign_a_bundle_that_outlives_its_chain() -> None:
    world = make_gates_world()
    with pytest.raises(PolicyError) as caught:
        create_bundle(
            world.admin.signer,
            authority=world.authority.identifier,
            policies='@id("own") permit(principal, action, resource);',
            schema="",
            tools=TOOLS,
            revision=2,
            now=T + 60,
            ttl=7 * DAY,
            chain=_short_lived_admin_chain(world, ttl=3600),
        )
    assert caught.value.reason is PolicyFailure.EXPIRED


def test_a_revoked_admin_cannot_lock_the_authority_out_with_the_top_revision(
    tmp_path: Path,
) -> None:
    """A policy-admin signs the highest revision a member may; once it is revoked, the
    authority replaces that bundle with a revision above the member range."""
    world = make_gates_world()
    store = BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(tmp_path / "node.db")))
    top = limits.MAX_MEMBER_POLICY_REVISION
    store.accept(world.bundle(revision=top, by_admin=True), feeds=world.feeds(), now=T + 5)
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 10)
    with pytest.raises(PolicyError) as caught:
        world.bundle(revision=top + 1, by_admin=True)  # above the member range: refused
    assert caught.value.reason is PolicyFailure.NOT_POLICY_ADMIN

    store.accept(world.bundle(revision=top + 1), feeds=world.feeds(), now=T + 20)
    store.engine(world.authority.identifier, feed=world.feed, now=T + 21)  # in force again
    with pytest.raises(PolicyError) as caught:
        world.bundle(revision=limits.MAX_POLICY_REVISION + 1)
    assert caught.value.reason is PolicyFailure.MALFORMED


# -- secrets: http-inject redacts only the literal secret ---------------------------------------


@dataclass
class Injecting:
    """A broker holding http-inject secret `payments-api` and agent A's lease of it."""

    world: LeaseWorld
    broker: Broker
    issued: IssuedLease

    def forward(self, request: HttpRequest) -> HttpResponse:
        credential = self.world.credential_a()
        return self.broker.forward(credential, self.issued.lease_id, request, now=NOW + 1)


def injecting(path: Path, upstream: str, rule: dict[str, Any]) -> Injecting:
    """Agent A leases `payments-api` (secret `Bearer CANARY`, one `rule`) from a new broker."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments-api": None}})
    _db, broker = open_broker(path, now=NOW, policy=policy)
    config = {
        "scopes": ["refunds:write"],
        "ttl": 120,
        "max_ttl": 600,
        "upstream": upstream,
        "header": "Authorization",
        "rules": [rule],
    }
    broker.put_secret("payments-api", "http-inject", config, f"Bearer {CANARY}".encode(), now=NOW)
    return Injecting(world, broker, broker.issue(world.credential_a(), "payments-api", now=NOW))


@pytest.fixture
def gzip_echo() -> Iterator[str]:
    """An upstream that echoes the request headers, gzip-compressed when the client accepts it
    (what any server with response compression on does)."""

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(dict(self.headers.items())).encode()
            headers = {"Content-Type": "application/json"}
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Echo) as url:
        yield url


def test_http_inject_never_hands_the_agent_the_secret_through_compression(
    tmp_path: Path, gzip_echo: str
) -> None:
    rule = {"methods": ["GET"], "path": "/v1/orders/*"}
    setup = injecting(tmp_path / "node.db", gzip_echo, rule)
    response = setup.forward(HttpRequest("GET", "/v1/orders/1", (("Accept-Encoding", "gzip"),)))
    assert response.status == 200
    leaks = Leaks()
    body = response.body
    encoding = {k.lower(): v for k, v in response.headers}.get("content-encoding", "")
    leaks.add(gzip.decompress(body) if encoding == "gzip" else body, response.headers)
    leaks.assert_clean(CANARY)


def test_http_inject_refuses_an_encoded_answer_it_cannot_search(tmp_path: Path) -> None:
    """An upstream that compresses whatever the client asked for: the broker cannot look for
    the secret in the body, so it refuses the answer (fail closed)."""

    class Always(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = gzip.compress(json.dumps(dict(self.headers.items())).encode())
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Always) as url:
        setup = injecting(tmp_path / "node.db", url, {"methods": ["GET"], "path": "/v1/orders/*"})
        with pytest.raises(SecretError) as caught:
            setup.forward(HttpRequest("GET", "/v1/orders/1", ()))
    assert caught.value.reason is SecretFailure.UPSTREAM_FAILED
    assert CANARY not in str(caught.value)


@pytest.fixture
def header_echo() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An upstream that keeps the headers of every request it receives."""
    seen: list[dict[str, str]] = []

    class Echo(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Echo) as url:
        yield url, seen


OVERRIDES = (
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-HTTP-Method", "DELETE"),
    ("X-Method-Override", "DELETE"),
    ("X-Original-URL", "/v1/admin/export"),
    ("X-Rewrite-URL", "/v1/admin/export"),
    ("X-Forwarded-Host", "admin.internal"),
    ("Forwarded", "host=admin.internal"),
    ("Range", "bytes=0-9"),  # a partial body could split the secret past the redaction
)


@pytest.mark.parametrize(("name", "value"), OVERRIDES)
def test_http_inject_forwards_no_method_or_path_override(
    tmp_path: Path, header_echo: tuple[str, list[dict[str, str]]], name: str, value: str
) -> None:
    url, seen = header_echo
    setup = injecting(tmp_path / "node.db", url, {"methods": ["POST"], "path": "/v1/refunds"})
    request = HttpRequest("POST", "/v1/refunds", ((name, value),), b"{}")
    refused: SecretFailure | None = None
    try:
        setup.forward(request)
    except SecretError as exc:  # refusing the request is as good as dropping the header
        refused = exc.reason
    assert refused in (None, SecretFailure.FORBIDDEN_REQUEST)
    assert all(name.lower() not in headers for headers in seen)


def test_a_tampered_secret_config_never_sends_the_secret_elsewhere(
    tmp_path: Path, header_echo: tuple[str, list[dict[str, str]]]
) -> None:
    attacker_url, seen = header_echo
    path = tmp_path / "node.db"
    real = "http://127.0.0.1:9/payments"  # the real API (never reached here)
    setup = injecting(path, real, {"methods": ["POST"], "path": "/v1/refunds"})

    # someone who can write the database file, but holds no vault key, redirects the upstream
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        (stored,) = raw.execute("SELECT config FROM secret_store").fetchone()
        tampered = stored.replace(real, attacker_url)
        raw.execute("UPDATE secret_store SET config = ?", (tampered,))

    with pytest.raises(SecretError) as caught:  # the seal binds the configuration
        setup.forward(HttpRequest("POST", "/v1/refunds", (), b"{}"))
    assert caught.value.reason is SecretFailure.CONFIG_INVALID
    leaks = Leaks()
    leaks.add("(nothing reached the attacker)", *(json.dumps(h) for h in seen))
    leaks.assert_clean(CANARY)


# -- node: one member fills every policy subscription ---------------------------------------------


def test_one_member_cannot_take_every_policy_subscription(tmp_path: Path) -> None:
    async def attack(net: MemNet) -> None:
        authority, hub = net.authority.identifier, net.hub
        assert hub is not None
        mallory = await net.member("mallory")
        end = await mallory.channel_to(route(HUB))
        for n in range(limits.MAX_POLICY_SUBSCRIBERS):  # made-up authorities, never held
            fake = n.to_bytes(4, "big") + b"\x5a" * 28
            await call(mallory.router, (end.enc, POLICY), "get", [fake, 0])
        honest = await net.member("agent-b")
        await honest.maintain()  # pulls (nothing yet) and asks to be subscribed
        data = create_bundle(
            hub.node.identities.signer("hub", now=net.clock.now()),
            authority=authority,
            policies='@id("all") permit(principal, action, resource);',
            schema="",
            tools=TOOLS,
            revision=1,
            now=net.clock.now(),
            ttl=3600,
        )
        feeds = NodeFeeds(hub.node, net.clock)
        other = NodePolicies(hub.node, feeds)
        other.trust(feeds.anchors(), now=net.clock.now())
        other.accept(data, now=net.clock.now())
        await perform(hub, "policy.reload", {})  # what `troth policy push` does
        async with asyncio.timeout(5):  # pushed to a subscriber at once
            while (held := honest.policies.held(authority)) is None or (
                held.bundle.body.revision != 1
            ):
                await asyncio.sleep(0.01)

    run_memnet(attack, tmp_path)


@pytest.mark.parametrize(
    ("revision", "by_admin", "reason"),
    [
        (limits.MAX_MEMBER_POLICY_REVISION + 1, True, PolicyFailure.NOT_POLICY_ADMIN),
        (limits.MAX_POLICY_REVISION + 1, False, PolicyFailure.OVER_LIMIT),
    ],
)
def test_a_hand_made_bundle_past_the_revision_ranges_is_refused(
    revision: int, by_admin: bool, reason: PolicyFailure, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_gates_world()
    monkeypatch.setattr(bundles, "_check_revision", lambda *_, **__: None)  # the signer's tool
    forged = world.bundle(revision=revision, by_admin=by_admin)
    monkeypatch.undo()
    with pytest.raises(PolicyError) as caught:
        world.store(forged)
    assert caught.value.reason is reason
