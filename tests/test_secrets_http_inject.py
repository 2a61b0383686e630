"""The http-inject engine against a real HTTP server on 127.0.0.1 that echoes everything it
receives (the worst upstream for a secret): the secret reaches the upstream and nothing else,
only allowed methods and normalised paths pass, smuggled headers and the agent's own credentials
are dropped, and a copied node database reveals no upstream secret."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import (
    CANARY,
    KEK,
    Leaks,
    LeaseWorld,
    captured_logs,
    make_world,
    open_broker,
)
from tests.support.upstreams import trickling_upstream
from troth.errors import ConfigError, SecretError, SecretFailure
from troth.secrets import AllowListPolicy, AuditEvent, AuditSink, Broker, HttpRequest, IssuedLease

F = SecretFailure
SECRET_HEADER = f"Bearer {CANARY}"


@dataclass
class Upstream:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream("")

    class Echo(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            record = {
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"),
            }
            state.seen.append(record)
            answer = json.dumps(record).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Echo-Authorization", self.headers.get("Authorization", ""))
            self.send_header("Set-Cookie", "session=upstream-session")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_DELETE = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def config(upstream: Upstream) -> dict[str, Any]:
    return {
        "scopes": ["refunds:write", "orders:read"],
        "ttl": 120,
        "max_ttl": 600,
        "upstream": upstream.url,
        "header": "Authorization",
        "rules": [
            {"methods": ["GET"], "path": "/v1/orders/*", "scope": "orders:read"},
            {"methods": ["POST"], "path": "/v1/refunds", "scope": "refunds:write"},
            {"methods": ["GET"], "path": "/v1/docs/**"},
        ],
        "strip": ["X-Api-Key"],
    }


def setup(
    tmp_path: Path, world: LeaseWorld, upstream: Upstream, *, audit: AuditSink | None = None
) -> tuple[Broker, IssuedLease]:
    policy = AllowListPolicy(
        {
            world.agent_a.identifier: {"payments-api": None},
            world.agent_b.identifier: {"payments-api": None},
        }
    )
    _db, broker = open_broker(tmp_path / "node" / "node.db", now=NOW, policy=policy, audit=audit)
    broker.put_secret(
        "payments-api", "http-inject", config(upstream), SECRET_HEADER.encode(), now=NOW
    )
    issued = broker.issue(world.credential_a(), "payments-api", scope=["orders:read"], now=NOW)
    return broker, issued


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    (tmp_path / "node").mkdir()
    return tmp_path / "node"


def forward(broker: Broker, world: LeaseWorld, issued: IssuedLease, request: HttpRequest) -> Any:
    return broker.forward(world.credential_a(), issued.lease_id, request, now=NOW + 1)


def test_secret_is_injected_and_never_returned(
    node_dir: Path, world: LeaseWorld, upstream: Upstream
) -> None:
    leaks = Leaks()
    with captured_logs(leaks):
        broker, issued = setup(node_dir.parent, world, upstream)
        response = forward(
            broker,
            world,
            issued,
            HttpRequest(
                "GET",
                "/v1/orders/4471?expand=items",
                (("Authorization", "Bearer agent-own"), ("X-Api-Key", "k"), ("Accept", "json")),
            ),
        )
    assert response.status == 200
    seen = upstream.seen[-1]
    assert seen["path"] == "/api/v1/orders/4471?expand=items"
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["authorization"] == SECRET_HEADER  # injected, the agent's own one dropped
    assert "x-api-key" not in headers
    assert headers["accept"] == "json"
    assert [k for k, _ in seen["headers"]].count("Authorization") == 1
    names = {k.lower() for k, _ in response.headers}
    assert "set-cookie" not in names
    leaks.add(response.body, response.headers, response.reason, response, issued, issued.to_json())
    leaks.add(*(event.to_json() for _seq, event in broker.audit_log.read()))  # type: ignore[union-attr]
    leaks.assert_clean(CANARY)
    assert b"[redacted]" in response.body


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/v1/refunds"),  # not a GET rule
        ("POST", "/v1/refunds"),  # the lease lacks refunds:write
        ("DELETE", "/v1/orders/1"),
        ("get", "/v1/orders/1"),
        ("GET", "/v1/orders/1/items"),  # * is one segment
        ("GET", "/v1/orders/../admin"),
        ("GET", "/v1/orders/%2e%2e"),
        ("GET", "/v1/orders/%2E%2e/admin"),
        ("GET", "/v1/orders/..;/admin"),
        ("GET", "/v1/orders/x%2fadmin"),
        ("GET", "/v1/orders/x%5cadmin"),
        ("GET", "/v1/orders/x%00"),
        ("GET", "/v1/orders/x%25"),
        ("GET", "/v1/orders/."),
        ("GET", "/v1//orders/1"),
        ("GET", "/v1/orders/1/"),
        ("GET", "//evil.example/v1/orders/1"),
        ("GET", "http://evil.example/v1/orders/1"),
        ("GET", "/v1/orders/1#frag"),
        ("GET", "/v1/orders/1\\x"),
        ("GET", "/v1/orders/é"),
        ("GET", "/v1/orders/1 HTTP/1.1\r\nX: y"),
        ("GET", "v1/orders/1"),
        ("GET", ""),
        ("GET", "/v1/docs/" + "a" * 3000),
        ("GET", "/v1/orders/1?x=\r\n"),
    ],
)
def test_only_allowed_normalised_requests_pass(
    node_dir: Path, world: LeaseWorld, upstream: Upstream, method: str, target: str
) -> None:
    broker, issued = setup(node_dir.parent, world, upstream)
    with pytest.raises(SecretError) as caught:
        forward(broker, world, issued, HttpRequest(method, target))
    assert caught.value.reason is F.FORBIDDEN_REQUEST
    assert upstream.seen == []
    kinds = [event.kind.value for _s, event in broker.audit_log.read()]  # type: ignore[union-attr]
    assert kinds[-1] == "deny"


def test_wildcards_and_encoded_segments(
    node_dir: Path, world: LeaseWorld, upstream: Upstream
) -> None:
    broker, issued = setup(node_dir.parent, world, upstream)
    for target in ("/v1/docs", "/v1/docs/a/b/c", "/v1/orders/%41%42"):
        assert forward(broker, world, issued, HttpRequest("GET", target)).status == 200
    assert [s["path"] for s in upstream.seen] == [
        "/api/v1/docs",
        "/api/v1/docs/a/b/c",
        "/api/v1/orders/%41%42",
    ]
    with pytest.raises(SecretError) as raised:  # an escape never matches a literal segment
        forward(broker, world, issued, HttpRequest("GET", "/v1/%6frders/1"))
    assert raised.value.reason is SecretFailure.FORBIDDEN_REQUEST


@pytest.mark.parametrize(
    "headers",
    [
        (("X-Note", "a\r\nAuthorization: Bearer mine"),),
        (("X-Note", "a\nb"),),
        (("X-Note", "a\x00b"),),
        (("Bad Name", "x"),),
        (("Bad:Name", "x"),),
        (("", "x"),),
        tuple(("X-H", "v") for _ in range(65)),
        (("X-Big", "v" * 9000),),
    ],
)
def test_header_smuggling_refused(
    node_dir: Path, world: LeaseWorld, upstream: Upstream, headers: tuple[tuple[str, str], ...]
) -> None:
    broker, issued = setup(node_dir.parent, world, upstream)
    with pytest.raises(SecretError) as caught:
        forward(broker, world, issued, HttpRequest("GET", "/v1/orders/1", headers))
    assert caught.value.reason is F.FORBIDDEN_REQUEST
    assert upstream.seen == []


def test_framing_and_credential_headers_are_replaced(
    node_dir: Path, world: LeaseWorld, upstream: Upstream
) -> None:
    broker, issued = setup(node_dir.parent, world, upstream)
    headers = (
        ("Content-Length", "999"),
        ("Content-Length", "0"),
        ("Transfer-Encoding", "chunked"),
        ("Host", "evil.example"),
        ("Connection", "close, X-Hop"),
        ("X-Hop", "dropped"),
        ("Proxy-Authorization", "Basic eA=="),
        ("Cookie", "a=b"),
        ("authorization", "lower-case too"),
    )
    forward(broker, world, issued, HttpRequest("GET", "/v1/orders/1", headers, b""))
    seen = {k.lower(): v for k, v in upstream.seen[-1]["headers"]}
    assert seen["host"].startswith("127.0.0.1")
    for name in ("transfer-encoding", "x-hop", "proxy-authorization", "cookie"):
        assert name not in seen
    assert seen.get("content-length", "0") == "0"
    assert seen["authorization"] == SECRET_HEADER


def test_lease_rules_per_agent_and_state(
    node_dir: Path, world: LeaseWorld, upstream: Upstream
) -> None:
    broker, issued = setup(node_dir.parent, world, upstream)
    request = HttpRequest("GET", "/v1/orders/1")
    with pytest.raises(SecretError) as caught:
        broker.forward(world.credential_b(), issued.lease_id, request, now=NOW + 1)
    assert caught.value.reason is F.NO_SUCH_LEASE
    with pytest.raises(SecretError) as caught:
        broker.forward(world.credential_a(), issued.lease_id, request, now=NOW + 120)
    assert caught.value.reason is F.EXPIRED
    broker.revoke(world.credential_a(), issued.lease_id, now=NOW + 2)
    with pytest.raises(SecretError) as caught:
        broker.forward(world.credential_a(), issued.lease_id, request, now=NOW + 3)
    assert caught.value.reason is F.REVOKED
    assert upstream.seen == []


def test_bad_configurations_refused(node_dir: Path, world: LeaseWorld, upstream: Upstream) -> None:
    _db, broker = open_broker(node_dir / "node.db", now=NOW)
    good = config(upstream)
    changes: list[dict[str, Any]] = [
        {"upstream": "ftp://127.0.0.1/x"},
        {"upstream": "http://user:pw@127.0.0.1/"},
        {"upstream": "http://127.0.0.1/a?b=c"},
        {"upstream": "http://127.0.0.1/../x"},
        {"header": "Bad Header"},
        {"rules": []},
        {"rules": [{"methods": ["GET"], "path": "/a/../b"}]},
        {"rules": [{"methods": ["GET"], "path": "/a/**/b"}]},
        {"rules": [{"methods": ["GET"], "path": "/a", "scope": "unknown"}]},
        {"rules": [{"methods": ["get"], "path": "/a"}]},
        {"surprise": True},
        {"ttl": 0},
        {"max_ttl": 10**9},
    ]
    for change in changes:
        with pytest.raises(SecretError) as caught:
            broker.put_secret(
                "api", "http-inject", {**good, **change}, SECRET_HEADER.encode(), now=NOW
            )
        assert caught.value.reason is F.CONFIG_INVALID, change
    for value in (b"", b"Bearer a\r\nX: y", b" padded", b"\x00"):
        with pytest.raises(SecretError) as raised:
            broker.put_secret("api", "http-inject", good, value, now=NOW)
        assert raised.value.reason is SecretFailure.CONFIG_INVALID
    with pytest.raises(SecretError) as caught:
        broker.put_secret("api", "no-engine", good, b"x", now=NOW)
    assert caught.value.reason is F.CONFIG_INVALID


def test_upstream_failure_reveals_nothing(
    node_dir: Path, world: LeaseWorld, upstream: Upstream
) -> None:
    leaks = Leaks()
    with captured_logs(leaks):
        broker, issued = setup(node_dir.parent, world, upstream)
        dead = {**config(upstream), "upstream": "http://127.0.0.1:9/api"}  # discard port: refused
        broker.put_secret("payments-api", "http-inject", dead, SECRET_HEADER.encode(), now=NOW)
        with pytest.raises(SecretError) as caught:
            forward(broker, world, issued, HttpRequest("GET", "/v1/orders/1"))
    assert caught.value.reason is F.UPSTREAM_FAILED
    leaks.add(caught.value, broker.secrets(), [s.to_json() for s in broker.secrets()])
    leaks.assert_clean(CANARY)


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_trickling_upstream_ends_at_the_forwards_deadline(
    node_dir: Path, world: LeaseWorld, upstream: Upstream, where: str
) -> None:
    """`timeout` bounds the whole forward, not each read: an upstream that sends a byte at a
    time, each well within any read timeout, is cut off at the deadline (its answer would
    take 10 s; the secret's timeout is 1 s) whether it trickles its headers or its body."""
    broker, issued = setup(node_dir.parent, world, upstream)
    with trickling_upstream(where) as url:
        slow = {**config(upstream), "upstream": url, "timeout": 1}
        broker.put_secret("payments-api", "http-inject", slow, SECRET_HEADER.encode(), now=NOW)
        with pytest.raises(SecretError) as caught:
            forward(broker, world, issued, HttpRequest("GET", "/v1/orders/1"))
    assert caught.value.reason is F.UPSTREAM_FAILED
    assert "within its timeout (1 s)" in caught.value.detail


def test_a_forward_that_cannot_be_audited_is_not_sent(
    node_dir: Path, world: LeaseWorld, upstream: Upstream
) -> None:
    class Failing:
        def __init__(self) -> None:
            self.fail = False

        def append(self, event: AuditEvent) -> None:
            if self.fail:
                raise OSError("disk full")

    sink = Failing()
    broker, issued = setup(node_dir.parent, world, upstream, audit=sink)
    sink.fail = True
    request = HttpRequest("GET", "/v1/orders/1")
    for attempt in (
        lambda: forward(broker, world, issued, request),
        lambda: broker.prepare_forward(world.credential_a(), issued.lease_id, request, now=NOW),
    ):
        with pytest.raises(SecretError) as caught:
            attempt()
        assert caught.value.reason is F.AUDIT_FAILED
    assert upstream.seen == []
    sink.fail = False
    assert forward(broker, world, issued, request).status == 200
    assert len(upstream.seen) == 1


def test_copied_node_directory_reveals_no_upstream_secret(
    node_dir: Path, world: LeaseWorld, upstream: Upstream, tmp_path: Path
) -> None:
    broker, issued = setup(tmp_path, world, upstream)
    forward(broker, world, issued, HttpRequest("GET", "/v1/orders/1"))
    (node_dir / "vault.key").write_bytes(KEK)  # the node keeps its KEK beside the database
    copy = tmp_path / "stolen"
    shutil.copytree(node_dir, copy, ignore=shutil.ignore_patterns("vault.key"))
    broker.store.db.close()
    needles = [CANARY.encode(), CANARY.encode().hex().encode(), SECRET_HEADER.encode()]
    scanned = 0
    for path in copy.rglob("*"):
        if path.is_file():
            scanned += 1
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, path
    assert scanned >= 1
    # and the copy does not open without the vault key
    with pytest.raises(
        ConfigError, match=r"the vault key \(TROTH_VAULT_KEY or vault\.key\) does not open"
    ):
        open_broker(copy / "node.db", now=NOW, kek=bytes(32))
