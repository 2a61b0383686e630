"""Review 57f: attacks on the secrets broker that did not work (each would fail if its defence
broke): the http-inject forward path (the bytes the upstream receives, redirects, proxy
variables), token validation (algorithm confusion, kid games, the expiry boundary), lease
lifecycle races, a lease's role granting itself (PostgreSQL, the real server), and what one
member's 10,000 requests leave behind."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.support.upstreams import serving
from tests.test_review30b_leases import TOKEN
from tests.test_secrets_postgres import SECRET as PG_SECRET
from tests.test_secrets_postgres import (
    OrdersDb,
    login,
    orders,  # noqa: F401 - a fixture
    setup,
)
from tests.test_secrets_postgres import now as pg_now
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, HttpRequest
from troth.secrets.broker import IssuedLease
from troth.secrets.denials import DENIALS_PER_ACCOUNT
from troth.secrets.lease import LeaseId, b64url

SECRET = b"sk_live_57f_" + b"9a0b7c"


@contextmanager
def raw_upstream() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP upstream that keeps every request's bytes as they arrived (headers and the body
    its Content-Length names) and answers 200 `ok`: its base URL and the requests."""
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    body += conn.recv(65536)
                seen.append(head + b"\r\n\r\n" + body)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        listener.close()


def _inject(base: str) -> dict[str, Any]:
    return {
        "scopes": ["orders"],
        "ttl": 600,
        "upstream": base + "/api",
        "header": "X-Api-Key",
        "rules": [{"methods": ["GET", "POST", "DELETE"], "path": "/v1/**"}],
    }


@contextmanager
def inject_lease(tmp_path: Path, base: str) -> Iterator[tuple[Broker, LeaseWorld, IssuedLease]]:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    try:
        broker.put_secret("api", "http-inject", _inject(base), SECRET, now=NOW)
        yield broker, world, broker.issue(world.credential_a(), "api", now=NOW)
    finally:
        broker.close()


SMUGGLING = [
    # a second request in the body: it goes as the body, framed by the broker's Content-Length
    HttpRequest(
        "POST",
        "/v1/orders",
        (("Transfer-Encoding", "chunked"), ("Content-Length", "0")),
        b"0\r\n\r\nGET /api/admin HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    # Host, absolute-form's authority and the proxy headers of the agent's making are dropped
    HttpRequest("GET", "/v1/orders", (("Host", "evil.example"), ("Forwarded", "host=evil"))),
    # a Content-Length of the agent's making on a GET without body is dropped
    HttpRequest("GET", "/v1/orders", (("Content-Length", "40"),)),
    # Connection naming the injected header: both dropped, the broker's one injected
    HttpRequest("GET", "/v1/orders", (("Connection", "X-Api-Key"), ("X-Api-Key", "mine"))),
]


@pytest.mark.parametrize("request_", SMUGGLING)
def test_the_upstream_reads_one_request_to_its_own_host(
    tmp_path: Path, request_: HttpRequest
) -> None:
    """What the upstream receives: one request line to the configured host's path, its own
    Host, the secret injected once, the body framed by a Content-Length the broker computed
    (no Transfer-Encoding), nothing of the agent's Host, framing or copy of the header."""
    with raw_upstream() as (base, seen), inject_lease(tmp_path, base) as (broker, world, issued):
        broker.forward(world.credential_a(), issued.lease_id, request_, now=NOW)
        (raw,) = seen
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == request_.method.encode() + b" /api" + request_.target.encode() + b" HTTP/1.1"
    names = [line.partition(b":")[0].lower() for line in lines[1:]]
    assert names.count(b"host") == 1
    assert f"Host: {base[7:]}".encode() in lines
    assert lines.count(b"X-Api-Key: " + SECRET) == 1
    assert names.count(b"x-api-key") == 1
    assert b"transfer-encoding" not in names
    assert b"forwarded" not in names
    assert b"evil" not in head
    assert b"mine" not in head
    assert body == request_.body
    if request_.body:
        assert f"Content-Length: {len(request_.body)}".encode() in lines


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("http://evil.example/v1/orders", ()),  # absolute-form
        ("//evil.example/v1/orders", ()),  # a network-path reference
        ("/v1/orders%0d%0aHost:%20evil", ()),  # CRLF through a percent-escape
        ("/v1/%2e%2e/admin", ()),
        ("/v1/orders", (("X-Note", "a\r\nX-Api-Key: mine"),)),  # CRLF in a value
        ("/v1/orders", (("X-Note\r\nHost", "evil"),)),  # ... in a name
        ("/v1/orders", (("X-Api-Key ", "mine"),)),  # a name with trailing space
    ],
)
def test_a_request_line_or_header_injection_is_refused_unsent(
    tmp_path: Path, target: str, headers: tuple[tuple[str, str], ...]
) -> None:
    with raw_upstream() as (base, seen), inject_lease(tmp_path, base) as (broker, world, issued):
        request = HttpRequest("GET", target, headers)
        with pytest.raises(SecretError) as raised:
            broker.forward(world.credential_a(), issued.lease_id, request, now=NOW)
        assert raised.value.reason is SecretFailure.FORBIDDEN_REQUEST
        assert seen == []


def test_a_redirect_is_not_followed_and_proxy_variables_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream answers 307 to another host (the attacker's listener); the process has
    proxy variables naming that listener too. Nothing reaches it: the agent reads the 307."""
    with raw_upstream() as (elsewhere, stolen):
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, elsewhere)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(307)
                self.send_header("Location", elsewhere + "/steal")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        with serving(Redirect) as base, inject_lease(tmp_path, base) as (broker, world, issued):
            request = HttpRequest("GET", "/v1/orders")
            answer = broker.forward(world.credential_a(), issued.lease_id, request, now=NOW)
        assert answer.status == 307
        assert stolen == []


# -- tokens ---------------------------------------------------------------------------------


@contextmanager
def token_lease(tmp_path: Path) -> Iterator[tuple[Broker, LeaseWorld, IssuedLease]]:
    """Agent A's lease of a token secret (audience `payments`) at NOW."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"pay": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    try:
        broker.put_secret("pay", "token", TOKEN, b"", now=NOW)
        yield broker, world, broker.issue(world.credential_a(), "pay", now=NOW)
    finally:
        broker.close()


def _token(issued: IssuedLease) -> str:
    token = issued.credential.reveal()["token"]
    assert isinstance(token, str)
    return token


def _forged(token: str, header: dict[str, Any], sign: Any) -> str:
    head = b64url(json.dumps(header).encode())
    claims = token.split(".")[1]
    return f"{head}.{claims}.{b64url(sign(f'{head}.{claims}'.encode()))}"


def test_algorithm_confusion_and_kid_games_are_refused(tmp_path: Path) -> None:
    """The broker's claims re-signed under alg `none`, under HS256 with the published key as
    the HMAC key (the classic confusion), with the broker's kid but another alg, with a kid
    that is a list or names no key: each refused, as a bit flipped in the signature."""
    with token_lease(tmp_path) as (broker, _world, issued):
        token = _token(issued)
        (jwk,) = broker.jwks(NOW).to_json()["keys"]
        public = jwk["x"].encode()
        kid = jwk["kid"]
        forged = [
            _forged(token, {"alg": "none", "kid": kid, "typ": "JWT"}, lambda _m: b""),
            _forged(
                token,
                {"alg": "HS256", "kid": kid, "typ": "JWT"},
                lambda m: hmac.new(public, m, hashlib.sha256).digest(),
            ),
            _forged(token, {"alg": "ES256", "kid": kid}, lambda _m: bytes(64)),
            _forged(token, {"alg": "EdDSA", "kid": [kid]}, lambda _m: bytes(64)),
            _forged(token, {"alg": "EdDSA", "kid": kid + "x"}, lambda _m: bytes(64)),
            _forged(token, {"alg": "EdDSA", "kid": kid, "crit": ["x"]}, lambda _m: bytes(64)),
        ]
        head, body, tail = token.split(".")
        flipped = tail[:-2] + ("A" if tail[-2] != "A" else "B") + tail[-1]
        for bad in [*forged, f"{head}.{body}.{flipped}"]:
            with pytest.raises(SecretError) as raised:
                broker.validate_token(bad, audience="payments", now=NOW)
            assert raised.value.reason in (
                SecretFailure.JWT_UNKNOWN_KEY,
                SecretFailure.JWT_MALFORMED,
                SecretFailure.JWT_BAD_SIGNATURE,
            )
        broker.validate_token(token, audience="payments", now=NOW)  # the real one passes


def test_a_token_ends_at_its_exp_and_other_audiences_never_pass(tmp_path: Path) -> None:
    with token_lease(tmp_path) as (broker, _world, issued):
        token = _token(issued)
        expires = issued.lease.expires_at
        broker.validate_token(token, audience="payments", now=expires - 1)
        with pytest.raises(SecretError) as raised:
            broker.validate_token(token, audience="payments", now=expires)
        assert raised.value.reason is SecretFailure.EXPIRED
        # and the clock set back afterwards revives nothing (the broker's mark, moved by the
        # broker's own calls, not by validate_token's `now`: review 58d, secrets 1)
        broker.sweep(expires)
        with pytest.raises(SecretError):
            broker.validate_token(token, audience="payments", now=NOW)
        for audience in ("payment", "payments ", "PAYMENTS", "*"):
            with pytest.raises(SecretError):
                broker.validate_token(token, audience=audience, now=NOW)


# -- lease lifecycle -------------------------------------------------------------------------


def test_renew_after_revoke_and_after_expiry_is_refused(tmp_path: Path) -> None:
    """A revoked lease is not renewed back to life; an expired one (not swept yet) is not
    renewed either, and its agent may still revoke it; a token lease renewed after its revoke
    mints nothing that validates."""
    with token_lease(tmp_path) as (broker, world, issued):
        agent = world.credential_a()
        broker.revoke(agent, issued.lease_id, now=NOW + 1)
        with pytest.raises(SecretError) as raised:
            broker.renew(agent, issued.lease_id, now=NOW + 2)
        assert raised.value.reason is SecretFailure.REVOKED
        with pytest.raises(SecretError):
            broker.validate_token(_token(issued), audience="payments", now=NOW)
        other = broker.issue(agent, "pay", now=NOW + 3)
        late = other.lease.expires_at
        with pytest.raises(SecretError) as raised:
            broker.renew(agent, other.lease_id, now=late)
        assert raised.value.reason is SecretFailure.EXPIRED
        assert broker.revoke(agent, other.lease_id, now=late + 1).state.name == "REVOKED"
        with pytest.raises(SecretError):  # and renewing it now: refused as revoked
            broker.renew(agent, other.lease_id, now=late + 2)


# -- 10,000 requests of one member ------------------------------------------------------------


def test_ten_thousand_requests_of_one_member_leave_a_bounded_trace(tmp_path: Path) -> None:
    """One member sends 10,000 requests the broker refuses or answers without a lease being
    made (forwards no rule allows, revokes and renewals of leases that do not exist, bad
    tokens, lists), a few a second: the audit log holds at most the denial budget's records
    and summaries, no lease row is added, and the broker's in-memory tables stay one entry
    per caller."""
    with raw_upstream() as (base, seen), inject_lease(tmp_path, base) as (broker, world, issued):
        agent = world.credential_a()
        db = broker.store.db
        before = db.fetch_one("SELECT count(*) FROM secret_leases")[0]
        audit_before = db.fetch_one("SELECT count(*) FROM secret_audit")[0]
        refused = 0

        def requests(now: int, path: str) -> Iterator[Callable[[], object]]:
            yield lambda: broker.prepare_forward(
                agent, issued.lease_id, HttpRequest("GET", path), now=now
            )
            yield lambda: broker.revoke(agent, LeaseId.new(now), now=now)
            yield lambda: broker.renew(agent, LeaseId.new(now), now=now)
            yield lambda: broker.validate_token("a.b.c", audience="payments", now=now)

        for round_ in range(2_500):
            for call in requests(NOW + round_ // 5, f"/admin/{round_}"):
                try:
                    call()
                except SecretError:
                    refused += 1
            broker.leases(agent)
        assert refused == 10_000
        assert seen == []
        assert db.fetch_one("SELECT count(*) FROM secret_leases")[0] == before
        written = db.fetch_one("SELECT count(*) FROM secret_audit")[0] - audit_before
        assert written <= DENIALS_PER_ACCOUNT  # one window of 600 s: 8 of this caller
        assert len(broker.issues.members) <= 1
        assert len(broker.forwards.members) <= 1


# -- postgres ------------------------------------------------------------------------------


def test_a_lease_role_cannot_grant_itself_to_a_template(
    tmp_path: Path,
    orders: OrdersDb,  # noqa: F811 - the fixture
) -> None:
    """PostgreSQL 15's GRANT documentation still says a role "may grant or revoke membership in
    itself from a database session where the session user matches the role": agent A, leased
    `orders:write`, tries `GRANT <its role> TO <the reader template>` (every later read lease
    would copy A's write privilege, or, A's role owning a temporary table, the reader template
    would be one no lease can copy). The server refuses it (ADMIN OPTION needed: 15.18 here);
    agent B's read lease then reads and cannot write."""
    import psycopg

    world = make_world(pg_now())
    broker = setup(tmp_path, world, orders)
    try:
        a = broker.issue(world.credential_a(), PG_SECRET, scope=["orders:write"], now=pg_now())
        session = login(orders, a.credential.reveal())
        session.execute("CREATE TEMP TABLE mine (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="admin option"):
            session.execute(f"GRANT {a.credential.reveal()['user']} TO {orders.reader}")
        b = broker.issue(world.credential_b(), PG_SECRET, scope=["orders:read"], now=pg_now())
        reader = login(orders, b.credential.reveal())
        assert reader.execute("SELECT id FROM orders").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("INSERT INTO orders VALUES (1, 1)")
    finally:
        broker.close()


def test_a_lease_role_cannot_outlive_its_lease_by_its_own_hand(
    tmp_path: Path,
    orders: OrdersDb,  # noqa: F811 - the fixture
) -> None:
    """Agent A's lease's role tries to stretch its own life or rights: VALID UNTIL infinity,
    LOGIN past a NOLOGIN, a CONNECTION LIMIT, CREATEROLE, a built-in role that signals other
    sessions (pg_signal_backend: it could end the admin's revocation session). Each is refused
    (a role may change only its own password and settings); its revocation then drops it."""
    import psycopg

    world = make_world(pg_now())
    broker = setup(tmp_path, world, orders)
    try:
        a = broker.issue(world.credential_a(), PG_SECRET, scope=["orders:read"], now=pg_now())
        role = a.credential.reveal()["user"]
        session = login(orders, a.credential.reveal())
        for statement in (
            f"ALTER ROLE {role} VALID UNTIL 'infinity'",
            f"ALTER ROLE {role} LOGIN",
            f"ALTER ROLE {role} CONNECTION LIMIT 100",
            f"ALTER ROLE {role} CREATEROLE",
            f"GRANT pg_signal_backend TO {role}",
            f"GRANT {orders.writer} TO {role}",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.execute(statement)
        session.execute(f"ALTER ROLE {role} PASSWORD 'mine-now'")  # what it may do
        broker.revoke(world.credential_a(), a.lease_id, now=pg_now())
        assert role not in orders.lease_roles()
    finally:
        broker.close()
