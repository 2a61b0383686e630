"""Review 53t: attacks on the secrets broker that failed (the code was right), pinned.

http-inject (docs/secrets.md, "http-inject"): the secret goes only to the configured upstream —
a redirect is handed back, not followed; the proxy variables of the environment are not read;
a target in absolute form, with `//`, a userinfo-looking `@` segment, percent-escaped CR/LF,
`%25` (an IPv6 zone id's escape) or non-ASCII text never names another host; `Host`,
`Forwarded` and `X-Forwarded-*` from the agent are dropped, and a header `Connection` names
goes with it.

Leases and tokens: a lease the sweep ended stays over when the broker's clock is set back;
renewals at the edge stop at `issued_at + max_ttl`; a token is refused for another secret's
audience and carries only the scopes its lease was issued.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.engine import SecretSpec, parse_spec
from troth.secrets.engines.http_inject import HttpInjectEngine, HttpRequest
from troth.secrets.lease import SecretValue

_SECRET = b"Bearer s3cr3t-53t-token-value"


class _Server:
    """A local HTTP server recording what it was sent; its answer is `answer(self)`."""

    def __init__(self, location: str | None = None) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state.seen.append((self.command, self.path, dict(self.headers.items())))
                if location is None:
                    self.send_response(200)
                else:
                    self.send_response(302)
                    self.send_header("Location", location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_CONNECT = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[_Server]:
    server = _Server()
    yield server
    server.close()


def _spec(upstream: str) -> SecretSpec:
    config = {
        "upstream": upstream,
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/**"}],
        "timeout": 5,
    }
    return parse_spec("api", HttpInjectEngine(), config)


def _forward(spec: SecretSpec, request: HttpRequest) -> Any:
    return HttpInjectEngine().forward(spec, (), request, SecretValue(_SECRET))


def test_a_redirect_is_handed_back_not_followed(elsewhere: _Server) -> None:
    redirecting = _Server(location=elsewhere.url + "/steal")
    try:
        response = _forward(_spec(redirecting.url), HttpRequest("GET", "/x"))
    finally:
        redirecting.close()
    assert response.status == 302
    assert ("Location", elsewhere.url + "/steal") in response.headers
    assert len(redirecting.seen) == 1
    assert elsewhere.seen == []


def test_the_proxy_variables_are_not_read(
    elsewhere: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = _Server()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, elsewhere.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        assert _forward(_spec(upstream.url), HttpRequest("GET", "/x")).status == 200
    finally:
        upstream.close()
    assert elsewhere.seen == []
    assert len(upstream.seen) == 1
    assert upstream.seen[0][2]["Authorization"] == _SECRET.decode()


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/x",
        "//evil.example/x",
        "/x/../../evil",
        "/%2e%2e/evil",
        "/x%0d%0aHost:%20evil.example",
        "/x%25eth0/y",
        "/x?%0d%0aHost: evil",
        "/\u0435vil",
        "/x y",
        "/x#@evil.example",
        "/x\\@evil.example",
        "",
    ],
)
def test_a_target_naming_another_host_is_refused(target: str) -> None:
    spec = _spec("http://127.0.0.1:9/api")
    with pytest.raises(SecretError) as caught:
        HttpInjectEngine().check_request(spec, (), HttpRequest("GET", target))
    assert caught.value.reason is SecretFailure.FORBIDDEN_REQUEST


def test_an_at_sign_segment_stays_a_path_on_the_upstream() -> None:
    """`/@evil.example/x` is origin-form: the path under the configured upstream's base."""
    spec = _spec("http://127.0.0.1:9/api")
    target, _ = HttpInjectEngine().check_request(spec, (), HttpRequest("GET", "/@evil.example/x"))
    assert target == "/api/@evil.example/x"


def test_the_agents_host_and_forwarding_headers_are_dropped() -> None:
    spec = _spec("http://127.0.0.1:9/api")
    headers = (
        ("Host", "evil.example"),
        ("Forwarded", "host=evil.example"),
        ("X-Forwarded-Host", "evil.example"),
        ("x-forwarded-proto", "http"),
        ("X-Host", "evil.example"),
        ("Connection", "X-Target"),
        ("X-Target", "evil.example"),
        ("authorization", "Bearer mine"),
        ("Accept", "application/json"),
    )
    _, kept = HttpInjectEngine().check_request(spec, (), HttpRequest("GET", "/x", headers))
    assert kept == [("Accept", "application/json")]


@pytest.mark.parametrize(
    "header",
    [("Host ", "evil"), ("Host:", "evil"), ("X-A", "v\r\nHost: evil"), ("X-A", "v\nHost: e")],
)
def test_a_header_smuggling_another_line_is_refused(header: tuple[str, str]) -> None:
    spec = _spec("http://127.0.0.1:9/api")
    with pytest.raises(SecretError) as caught:
        HttpInjectEngine().check_request(spec, (), HttpRequest("GET", "/x", (header,)))
    assert caught.value.reason is SecretFailure.FORBIDDEN_REQUEST


# -- leases and tokens: a clock set back, renewals at the cap, another audience ----------------


def _token_broker(tmp_path: Path, world: LeaseWorld) -> Broker:
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None, "other": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    config = {"audience": "payments", "scopes": ["read", "write"], "ttl": 60, "max_ttl": 100}
    broker.put_secret("api", "token", config, b"", now=NOW)
    broker.put_secret("other", "token", {**config, "audience": "billing"}, b"", now=NOW)
    return broker


def test_a_swept_lease_stays_over_when_the_clock_is_set_back(tmp_path: Path) -> None:
    """The sweep ends an expired lease's state: a broker clock moved back before its expiry
    neither validates its token nor renews it."""
    world = make_world(NOW)
    broker = _token_broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), "api", now=NOW)
    token = str(issued.credential.reveal()["token"])
    broker.sweep(NOW + 61)
    with pytest.raises(SecretError) as caught:
        broker.validate_token(token, audience="payments", now=NOW + 10)
    # judged at the broker's clock's high-water mark, NOW + 61 (review 54e, secrets 3): the
    # token's own exp is past before its lease's state is read
    assert caught.value.reason is SecretFailure.EXPIRED
    with pytest.raises(SecretError) as caught:
        broker.renew(world.credential_a(), issued.lease_id, now=NOW + 10)
    assert caught.value.reason is SecretFailure.EXPIRED  # it ended by expiring (64c2, api 1)


def test_renewals_never_pass_max_ttl_from_the_issue(tmp_path: Path) -> None:
    """Renewing each time just before the expiry, with the longest ttl, stops at
    issued_at + max_ttl; past it the lease ends."""
    world = make_world(NOW)
    broker = _token_broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), "api", now=NOW)
    now, expires = NOW, issued.lease.expires_at
    for _ in range(5):
        now = expires - 1
        lease, _made = broker.renew(world.credential_a(), issued.lease_id, now=now, ttl=100)
        expires = lease.expires_at
        assert expires <= NOW + 100
    assert expires == NOW + 100
    with pytest.raises(SecretError) as caught:
        broker.renew(world.credential_a(), issued.lease_id, now=NOW + 100)
    assert caught.value.reason is SecretFailure.EXPIRED


def test_a_token_is_not_valid_for_another_secrets_audience(tmp_path: Path) -> None:
    """A token of secret `api` (audience payments) is refused for `billing`, the audience of
    another secret the same agent may lease, and its scope cannot be widened: a token for
    `read` carries `read` alone."""
    world = make_world(NOW)
    broker = _token_broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), "api", scope=["read"], now=NOW)
    token = str(issued.credential.reveal()["token"])
    with pytest.raises(SecretError) as caught:
        broker.validate_token(token, audience="billing", now=NOW + 1)
    assert caught.value.reason is SecretFailure.JWT_WRONG_AUDIENCE
    assert broker.validate_token(token, audience="payments", now=NOW + 1).scope == ("read",)
