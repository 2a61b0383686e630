"""Review 53t (secrets): attacks on the http-inject engine's answer cleaning that worked.

1. The secret in a response header's *name*: `_clean_response` redacted header values, the
   reason and the body, never the names, so an upstream that reflects what it was sent into a
   header name (`X-Seen-<token>: 1`, a debugging echo) handed the agent the secret whole,
   against docs/secrets.md, "http-inject" ("every occurrence of the secret ... in headers and
   body"). A header whose name carries the secret is now dropped (a name is not text to edit).
2. A transfer-coded answer: http.client decodes `Transfer-Encoding: chunked` alone, so an
   upstream answering `gzip, chunked` (or `gzip`) had its raw compressed bytes handed to the
   agent, where the redaction cannot find the secret and the agent can decompress it. An answer
   with any transfer-coding but `chunked` is refused, as one with a `Content-Encoding` was.
3. A forward under a lease of another engine (a token lease) was refused BAD_REQUEST with no
   audit record, where every other refusal of a forward is audited `deny` (within the denial
   budget). It is audited now.
4. A folded response header (obs-fold): http.client keeps `\r\n ` in the value, so a fold
   inside the secret hid it from the redaction. Such an answer is refused, as RFC 9112 section
   5.2 has a gateway do.
5. A method override by parameter: the broker drops `X-HTTP-Method-Override` and its kin,
   but `_method` in the query or a form body (Laravel, Symfony, Rails, Express's
   method-override) turned a POST a rule allowed into a DELETE or PUT upstream. A query or body
   naming a `_method` parameter is refused.
6. Chunks http.client leaves framed: it decodes chunks only when the first Transfer-Encoding
   value is exactly `chunked`; under `chunked ` (a trailing space) or `identity` then
   `chunked` the chunk framing stayed in the body and split a secret sent across two chunks.
   Any Transfer-Encoding value but exactly `chunked` is refused.
7. Wide charsets: the agent's `Accept-Charset` went upstream, and an answer in UTF-16 or
   UTF-32 carries the secret as two or four bytes a character, unseen by the redaction. The
   request header is dropped and such an answer (its `Content-Type` charset) refused.

Each test asserts the correct behaviour and was a strict xfail until its fix.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy
from troth.secrets.audit import AuditEvent, AuditKind
from troth.secrets.engine import parse_spec
from troth.secrets.engines.http_inject import HttpInjectEngine, HttpRequest, _clean_response
from troth.secrets.lease import SecretValue

_TOKEN = "s3cr3tTokenValue0123456789"


@pytest.mark.parametrize(
    "secret",
    [f"Bearer {_TOKEN}", _TOKEN, "Basic " + base64.b64encode(f"user:{_TOKEN}".encode()).decode()],
)
def test_the_secret_in_a_response_header_name_is_not_returned(secret: str) -> None:
    """Review 53t, secrets 1: no header name of the cleaned answer carries the secret."""
    headers = [("X-Seen-" + _TOKEN, "1"), ("Content-Type", "text/plain")]
    cleaned = _clean_response(200, "OK", headers, b"ok", secret.encode())
    assert all(_TOKEN not in name for name, _ in cleaned.headers)
    assert ("Content-Type", "text/plain") in cleaned.headers


class _RawUpstream:
    """A TCP server answering each connection with `answer` (raw bytes), then closing."""

    def __init__(self, answer: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, args=(answer,), daemon=True)
        self.thread.start()

    def _serve(self, answer: bytes) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


def _forwarded_to(answer: bytes, secret: bytes) -> SecretError:
    """The engine's refusal of a GET forwarded, with `secret` injected, to an upstream that
    answers `answer` (raw bytes)."""
    upstream = _RawUpstream(answer)
    config = {
        "upstream": upstream.url,
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/**"}],
        "timeout": 5,
    }
    spec = parse_spec("api", HttpInjectEngine(), config)
    try:
        with pytest.raises(SecretError) as caught:
            HttpInjectEngine().forward(spec, (), HttpRequest("GET", "/x"), SecretValue(secret))
    finally:
        upstream.close()
    return caught.value


@pytest.mark.parametrize("coding", ["gzip, chunked", "gzip", "deflate"])
def test_a_transfer_coded_answer_is_refused(coding: str) -> None:
    """Review 53t, secrets 2: a body under a transfer-coding other than chunked cannot be
    searched for the secret; it is refused as a content-coded one is."""
    secret = f"Bearer {_TOKEN}".encode()
    packed = gzip.compress(b"you sent: " + secret)
    if coding.endswith("chunked"):
        packed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed)
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\nConnection: close\r\n\r\n%s" % (
        coding.encode(),
        packed,
    )
    assert _forwarded_to(answer, secret).reason is SecretFailure.UPSTREAM_FAILED


class _Sink:
    """An audit sink that keeps every record."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> None:
        self.events.append(event)


def test_a_forward_under_a_lease_of_another_engine_is_audited(tmp_path: Path) -> None:
    """Review 53t, secrets 3: every other refusal of a forward (no such lease, revoked,
    expired, another chain, a request the rules forbid) is audited `deny`; asking the broker
    to forward under a token lease was refused BAD_REQUEST with no record."""
    world = make_world(NOW)
    sink = _Sink()
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, audit=sink)
    broker.put_secret("api", "token", {"audience": "x", "scopes": ["read"]}, b"", now=NOW)
    agent = world.credential_a()
    issued = broker.issue(agent, "api", now=NOW)
    before = len(sink.events)
    with pytest.raises(SecretError) as caught:
        broker.prepare_forward(agent, issued.lease_id, HttpRequest("GET", "/x"), now=NOW + 1)
    assert caught.value.reason is SecretFailure.BAD_REQUEST
    denials = [e for e in sink.events[before:] if e.kind is AuditKind.DENY]
    assert len(denials) == 1
    assert denials[0].lease == issued.lease.handle
    assert denials[0].secret == "api"


def test_a_folded_response_header_is_refused() -> None:
    """Review 53t, secrets 4: http.client keeps an obs-fold (a header line continued on the
    next, RFC 9112 section 5.2) in the value, `\\r\\n ` and all; folded inside the secret, the
    redaction found neither half and the agent joined them. A gateway discards such a message
    (RFC 9112 section 5.2): refused as UPSTREAM_FAILED."""
    secret = f"Bearer {_TOKEN}".encode()
    half = len(_TOKEN) // 2
    folded = f"X-Echo: Bearer {_TOKEN[:half]}\r\n {_TOKEN[half:]}\r\n".encode()
    answer = b"HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\nConnection: close\r\n\r\nok" % folded
    assert _forwarded_to(answer, secret).reason is SecretFailure.UPSTREAM_FAILED


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/v1/refunds?_method=DELETE", b""),
        ("/v1/refunds?a=1&%5Fmethod=DELETE", b""),
        ("/v1/refunds?_METHOD=PUT", b""),
        ("/v1/refunds", b"amount=1&_method=DELETE"),
        ("/v1/refunds", b'--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE'),
    ],
)
def test_a_method_override_parameter_is_refused(target: str, body: bytes) -> None:
    """Review 53t, secrets 5: the broker drops `X-HTTP-Method-Override` and its kin, which
    upstreams honour as another method than the one a rule allowed; their parameter form,
    `_method` (Laravel and Symfony read it from the query or a form body of a POST, Rails'
    Rack::MethodOverride and Express's method-override from a form body or the query), passed,
    so a rule allowing POST /v1/refunds let an agent DELETE it on such an upstream."""
    config = {
        "upstream": "http://127.0.0.1:9/api",
        "header": "Authorization",
        "rules": [{"methods": ["POST"], "path": "/v1/refunds"}],
    }
    spec = parse_spec("api", HttpInjectEngine(), config)
    with pytest.raises(SecretError) as caught:
        HttpInjectEngine().check_request(spec, (), HttpRequest("POST", target, (), body))
    assert caught.value.reason is SecretFailure.FORBIDDEN_REQUEST


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/v1/refunds?payment_method=pm_1", b""),
        ("/v1/refunds", b"payment_method=pm_1&amount=1"),
        ("/v1/refunds", b'{"payment_method": "pm_1", "method": "card"}'),
    ],
)
def test_another_name_ending_in_method_passes(target: str, body: bytes) -> None:
    """`payment_method` is not `_method`: such requests still pass (review 53t, secrets 5)."""
    config = {
        "upstream": "http://127.0.0.1:9/api",
        "header": "Authorization",
        "rules": [{"methods": ["POST"], "path": "/v1/refunds"}],
    }
    spec = parse_spec("api", HttpInjectEngine(), config)
    target_sent, _ = HttpInjectEngine().check_request(
        spec, (), HttpRequest("POST", target, (), body)
    )
    assert target_sent == "/api" + target


@pytest.mark.parametrize(
    "coding", [b"chunked ", b"identity\r\nTransfer-Encoding: chunked", b"Chunked\t"]
)
def test_chunks_http_client_does_not_decode_are_refused(coding: bytes) -> None:
    """Review 53t, secrets 6: http.client decodes chunks only when the first Transfer-Encoding
    value is exactly `chunked` (any case); `chunked ` with a trailing space, or `identity`
    before `chunked`, left the chunks' framing in the body, so a secret split across two
    chunks reached the agent in two halves the redaction did not see."""
    secret = f"Bearer {_TOKEN}".encode()
    first, second = secret[:12], secret[12:]
    body = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(first), first, len(second), second)
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\nConnection: close\r\n\r\n%s" % (
        coding,
        body,
    )
    assert _forwarded_to(answer, secret).reason is SecretFailure.UPSTREAM_FAILED


def test_an_answer_in_utf16_is_refused_and_accept_charset_is_dropped() -> None:
    """Review 53t, secrets 7: the agent's `Accept-Charset` went upstream, and an answer in
    UTF-16 or UTF-32 (which such an upstream sends) holds the secret as two or four bytes a
    character, which the redaction does not read: the request header is dropped (as
    `Accept-Encoding` is) and such an answer refused (`upstream failed`)."""
    secret = f"Bearer {_TOKEN}".encode()
    config = {
        "upstream": "http://127.0.0.1:9/api",
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/**"}],
    }
    spec = parse_spec("api", HttpInjectEngine(), config)
    _, kept = HttpInjectEngine().check_request(
        spec, (), HttpRequest("GET", "/x", (("Accept-Charset", "utf-16"),))
    )
    assert kept == []
    body = ("you sent: " + secret.decode()).encode("utf-16")
    for charset in ("utf-16", "UTF-16LE", '"utf-32"'):
        headers = [("Content-Type", f"text/plain; charset={charset}")]
        with pytest.raises(SecretError) as caught:
            _clean_response(200, "OK", headers, body, secret)
        assert caught.value.reason is SecretFailure.UPSTREAM_FAILED
