"""Review 61e: attacks on the secrets broker and its leases that did not work (each test fails
if the defence it shows breaks)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.support.secret_checks import lease_state, refusal, token_broker
from troth.errors import DecodeError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, validate_token
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.jwt import canonical_json
from troth.secrets.lease import LeaseId, LeaseRequest, LeaseState, b64url

_F = SecretFailure
CONFIG: dict[str, Any] = {
    "audience": "payments",
    "scopes": ["refunds", "charges"],
    "ttl": 60,
    "max_ttl": 300,
}


def _token(broker: Broker, credential: Any, *, scope: list[str] | None = None) -> str:
    issued = broker.issue(credential, "payments", now=NOW, scope=scope)
    return str(issued.credential.reveal()["token"])


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from troth.secrets.lease import b64url_decode

    head, body, _ = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    return f"{b64url(canonical_json(header))}.{b64url(canonical_json(claims))}.{b64url(signature)}"


def test_alg_confusion_is_refused(tmp_path: Path) -> None:
    """A broker token re-headed `none`, HS256 keyed with the broker's public key (raw and as
    its JWK), the broker's kid under another alg, or an embedded key of the forger's: every
    one refused by the standalone validator and by the broker, scopes widened or not."""
    world = make_world(NOW)
    broker = token_broker(tmp_path / "node.db", [world.agent_b.identifier], CONFIG, now=NOW)
    token = _token(broker, world.credential_b(), scope=["refunds"])
    header, claims = _parts(token)
    claims["scope"] = "refunds charges"  # what a forger wants
    jwks = broker.jwks(NOW)
    jwk = jwks.keys[header["kid"]]
    raw_key = jwk.key.data
    forgeries = [
        _forged({**header, "alg": "none"}, claims, b""),
        _forged({"alg": "none", "typ": "JWT"}, claims, b""),
    ]
    for key in (raw_key, canonical_json(jwk.to_json()), json.dumps(jwks.to_json()).encode()):
        hs = {**header, "alg": "HS256"}
        signing_input = f"{b64url(canonical_json(hs))}.{b64url(canonical_json(claims))}"
        mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
        forgeries.append(f"{signing_input}.{b64url(mac)}")
    forgeries.append(_forged({**header, "alg": "ES256"}, claims, bytes(64)))
    forgeries.append(
        _forged({**header, "jwk": jwk.to_json(), "kid": "attacker"}, claims, bytes(64))
    )
    for forged in forgeries:
        for check in (
            lambda t=forged: validate_token(t, jwks, audience="payments", now=NOW + 1),
            lambda t=forged: broker.validate_token(t, audience="payments", now=NOW + 1),
        ):
            assert refusal(check) in {_F.JWT_UNKNOWN_KEY, _F.JWT_MALFORMED}
    # the genuine token passes both (the checks above can fail)
    validate_token(token, jwks, audience="payments", now=NOW + 1)
    broker.validate_token(token, audience="payments", now=NOW + 1)


def test_a_token_replayed_at_another_broker_is_refused(tmp_path: Path) -> None:
    """Two brokers (two nodes) with the same issuer name, secret and audience: one's token is
    refused by the other, with and without its lease states."""
    world = make_world(NOW)
    holders = [world.agent_b.identifier]
    one = token_broker(tmp_path / "one.db", holders, CONFIG, now=NOW)
    other = token_broker(tmp_path / "other.db", holders, CONFIG, now=NOW)
    _token(other, world.credential_b())  # a lease there too
    token = _token(one, world.credential_b())
    assert one.issuer == other.issuer
    jwks = other.jwks(NOW)
    refused = refusal(lambda: other.validate_token(token, audience="payments", now=NOW))
    assert refused is _F.JWT_UNKNOWN_KEY
    assert (
        refusal(lambda: validate_token(token, jwks, audience="payments", now=NOW))
        is _F.JWT_UNKNOWN_KEY
    )


def test_time_edges_of_a_token(tmp_path: Path) -> None:
    """exp is exclusive; iat in the future is not yet valid; a relying party's clock set back
    revives no token its broker saw end; audience and issuer are checked."""
    world = make_world(NOW)
    broker = token_broker(tmp_path / "node.db", [world.agent_b.identifier], CONFIG, now=NOW)
    token = _token(broker, world.credential_b())
    jwks = broker.jwks(NOW)
    _, claims = _parts(token)
    expires = claims["exp"]
    validate_token(token, jwks, audience="payments", now=expires - 1)
    assert refusal(lambda: validate_token(token, jwks, audience="payments", now=expires)) is (
        _F.EXPIRED
    )
    assert refusal(lambda: validate_token(token, jwks, audience="payments", now=NOW - 1)) is (
        _F.JWT_NOT_YET_VALID
    )
    assert refusal(lambda: validate_token(token, jwks, audience="orders", now=NOW)) is (
        _F.JWT_WRONG_AUDIENCE
    )
    assert (
        refusal(lambda: validate_token(token, jwks, audience="payments", now=NOW, issuer="x"))
        is _F.JWT_WRONG_ISSUER
    )
    broker.sweep(expires + 5)  # the broker saw it end
    states = broker.revoked_leases()
    ended = {_F.EXPIRED, _F.REVOKED}
    for now in (expires - 30, NOW):  # a relying party's clock behind

        def standalone(at: int = now) -> object:
            return validate_token(token, jwks, audience="payments", now=at, revoked=states)

        def by_broker(at: int = now) -> object:
            return broker.validate_token(token, audience="payments", now=at)

        assert refusal(standalone) in ended
        assert refusal(by_broker) in ended


def test_renewing_forever_stops_at_max_ttl(tmp_path: Path) -> None:
    """A holder renewing before every expiry never passes issued_at + max_ttl; at the cap the
    renewal is refused and the lease ends there, its tokens with it."""
    world = make_world(NOW)
    broker = token_broker(tmp_path / "node.db", [world.agent_b.identifier], CONFIG, now=NOW)
    credential = world.credential_b()
    issued = broker.issue(credential, "payments", now=NOW)
    now, last, made = NOW, issued.lease, issued.credential
    while now + 50 < NOW + CONFIG["max_ttl"]:
        now += 50
        last, made = broker.renew(credential, issued.lease_id, now=now, ttl=300)
        assert last.expires_at <= NOW + CONFIG["max_ttl"]
    refused = refusal(lambda: broker.renew(credential, issued.lease_id, now=now + 50, ttl=300))
    assert refused is _F.EXPIRED
    assert last.expires_at == NOW + CONFIG["max_ttl"]
    token = str(made.reveal()["token"])
    assert refusal(
        lambda: broker.validate_token(token, audience="payments", now=NOW + CONFIG["max_ttl"])
    ) in {_F.EXPIRED, _F.REVOKED}


def test_another_agents_request_id_revokes_nothing(tmp_path: Path) -> None:
    """Agent a's retried-request id, replayed by agent b as a retry, supersedes none of a's
    leases (requests are filed per identity)."""
    world = make_world(NOW)
    holders = [world.agent_a.identifier, world.agent_b.identifier]
    broker = token_broker(tmp_path / "node.db", holders, CONFIG, now=NOW)
    request = LeaseRequest.new()
    mine = broker.issue(world.credential_a(), "payments", now=NOW, request=request)
    theirs = broker.issue(world.credential_b(), "payments", now=NOW, request=request.retry())
    assert lease_state(broker, mine.lease.handle) is LeaseState.ACTIVE
    assert theirs.lease.identity == world.agent_b.identifier
    # and a's own retry does supersede it (the check above can fail)
    broker.issue(world.credential_a(), "payments", now=NOW, request=request.retry())
    assert lease_state(broker, mine.lease.handle) is not LeaseState.ACTIVE


VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**64,
    1.5,
    "",
    "x" * 300,
    "payments",
    b"\x00" * 32,
    [],
    [None],
    ["refunds"],
    ["a b"],
    {},
    {"a": 1},
    "lease_" + "A" * 43,
]
KEYS = ["secret", "scope", "ttl", "request", "attempt", "lease_id", "method", "target"]
KEYS += ["headers", "body", "ended", "identity"]
METHODS = ["issue", "renew", "revoke", "list", "jwks", "forward", "revoke-identity"]


@pytest.mark.parametrize("seed", range(2))
def test_malformed_requests_get_typed_answers(tmp_path: Path, seed: int) -> None:
    """Random request shapes to every method of the served broker's endpoint, by a caller with
    a credential (a live lease id among them): a refusal or DecodeError, never another
    exception (no untyped error escapes to the node)."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    caller = BrokerCaller(world.agent_a.identifier, (world.credential_a(),))
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    values = [*VALUES, issued.lease_id.text(), LeaseId.new(NOW).text()]
    endpoint = BrokerEndpoint(broker)
    rng = random.Random(seed)
    answered = 0
    for _ in range(150):
        method = rng.choice(METHODS)
        arguments = {k: rng.choice(values) for k in rng.sample(KEYS, rng.randint(0, 5))}
        try:
            endpoint.handle(method, arguments, caller, NOW + 1)
            answered += 1
        except DecodeError:
            pass
    assert answered  # some were answered (refusals included)
