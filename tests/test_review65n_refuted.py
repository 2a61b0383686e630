"""Review 65n: attacks on the secret broker that did not work (each test fails if the defence
it names breaks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.brokers import PAYMENTS
from tests.support.leases import LeaseWorld, make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.engine import parse_spec
from troth.secrets.engines.http_inject import HttpInjectEngine, HttpRequest
from troth.secrets.lease import b64url, b64url_decode

F = SecretFailure


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def _broker(tmp_path: Path, world: LeaseWorld) -> Broker:
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", PAYMENTS, b"", now=NOW)
    return broker


def _refused(call: object, reason: SecretFailure) -> SecretError:
    with pytest.raises(SecretError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_a_scope_is_matched_exactly_not_by_case_wildcard_or_lookalike(
    tmp_path: Path, world: LeaseWorld
) -> None:
    broker = _broker(tmp_path, world)
    try:
        for asked in (["REFUNDS"], ["refunds*"], ["*"], ["refund"], ["refunds", "admin"]):
            _refused(
                lambda a=asked: broker.issue(world.credential_b(), "payments", now=NOW, scope=a),
                F.BAD_REQUEST,
            )
        for asked in (["r\u00e9funds"], ["refunds\u200b"], ["refunds charges"], [""]):
            error = _refused(
                lambda a=asked: broker.issue(world.credential_b(), "payments", now=NOW, scope=a),
                F.BAD_REQUEST,
            )
            assert "token" in error.detail
    finally:
        broker.close()


def test_a_ttl_past_the_max_is_refused_and_renewals_never_pass_it(
    tmp_path: Path, world: LeaseWorld
) -> None:
    broker = _broker(tmp_path, world)
    try:
        credential = world.credential_b()
        max_ttl = PAYMENTS["max_ttl"]
        assert isinstance(max_ttl, int)
        _refused(
            lambda: broker.issue(credential, "payments", now=NOW, ttl=max_ttl + 1), F.BAD_REQUEST
        )
        issued = broker.issue(credential, "payments", now=NOW, ttl=max_ttl)
        _refused(
            lambda: broker.renew(credential, issued.lease_id, now=NOW + 1, ttl=max_ttl + 1),
            F.BAD_REQUEST,
        )
        last = NOW
        for step in range(1, 5):  # renewed again and again: capped at issued_at + max_ttl
            at = NOW + step * (max_ttl // 4) - 1
            lease, _token = broker.renew(credential, issued.lease_id, now=at, ttl=max_ttl)
            assert lease.expires_at <= NOW + max_ttl
            last = lease.expires_at
        assert last == NOW + max_ttl
        _refused(lambda: broker.renew(credential, issued.lease_id, now=last), F.EXPIRED)
    finally:
        broker.close()


def test_a_token_with_another_alg_or_a_reencoded_signature_does_not_validate(
    tmp_path: Path, world: LeaseWorld
) -> None:
    broker = _broker(tmp_path, world)
    try:
        issued = broker.issue(world.credential_b(), "payments", now=NOW, scope=["refunds"])
        token = str(issued.credential.reveal()["token"])
        head, body, tail = token.split(".")
        broker.validate_token(token, audience="payments", now=NOW + 1)
        header = json.loads(b64url_decode(head))
        for alg in ("none", "ES256", "HS256", "eddsa"):
            forged = b64url(json.dumps({**header, "alg": alg}).encode())
            _refused(
                lambda f=forged: broker.validate_token(
                    f"{f}.{body}.{tail}", audience="payments", now=NOW + 1
                ),
                F.JWT_UNKNOWN_KEY,
            )
        # the signature's spare low bits set: the same bytes under another text
        spare = tail[:-1] + chr(ord(tail[-1]) + 1)
        _refused(
            lambda: broker.validate_token(f"{head}.{body}.{spare}", audience="payments", now=NOW),
            F.JWT_BAD_SIGNATURE,
        )
        # claims widened (another scope) under the same signature
        claims = json.loads(b64url_decode(body))
        wider = b64url(json.dumps({**claims, "scope": "refunds charges"}).encode())
        _refused(
            lambda: broker.validate_token(f"{head}.{wider}.{tail}", audience="payments", now=NOW),
            F.JWT_BAD_SIGNATURE,
        )
    finally:
        broker.close()


def test_http_inject_never_sends_to_another_host() -> None:
    engine = HttpInjectEngine()
    spec = parse_spec(
        "api",
        engine,
        {
            "scopes": ["read"],
            "upstream": "https://api.example.com/v1",
            "header": "Authorization",
            "rules": [{"methods": ["GET"], "path": "/**", "scope": "read"}],
        },
    )
    for target in (
        "http://evil.example/x",
        "https://evil.example/x",
        "//evil.example/x",
        "@evil.example/x",
        "/x/../../evil",
        "/%2e%2e/evil",
    ):
        _refused(
            lambda t=target: engine.check_request(spec, ("read",), HttpRequest("GET", t)),
            F.FORBIDDEN_REQUEST,
        )
    target, headers = engine.check_request(
        spec,
        ("read",),
        HttpRequest(
            "GET",
            "/x?next=https://evil.example",
            (("Host", "evil.example"), ("X-Forwarded-Host", "evil.example"), ("Accept", "a")),
        ),
    )
    assert target == "/v1/x?next=https://evil.example"  # a path on the configured host only
    assert headers == [("Accept", "a")]
    _refused(lambda: engine.check_request(spec, (), HttpRequest("GET", "/x")), F.FORBIDDEN_REQUEST)
