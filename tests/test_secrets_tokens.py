"""The token engine: JWTs that PyJWT validates from the JWKS alone, and `validate_token`, which
also refuses tokens of revoked leases. Attacks first: tampering, algorithm confusion, foreign
keys, malleated ES256 signatures, wrong audience/issuer, expiry."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import jwt
import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from troth.crypto import KeyType
from troth.crypto.keys import P256_ORDER
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, Jwks, validate_token
from troth.secrets.jwt import compact_jws
from troth.vault import KeyHandle

F = SecretFailure
AUDIENCE = "payments"
CONFIG = {
    "scopes": ["refunds:write", "orders:read"],
    "ttl": 120,
    "max_ttl": 600,
    "audience": AUDIENCE,
}


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def broker_for(tmp_path: Path, world: LeaseWorld, key_type: KeyType = KeyType.ED25519) -> Broker:
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"payments": None}, world.agent_b.identifier: {"payments": None}}
    )
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, key_type=key_type)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    return broker


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rejects(call: object, reason: SecretFailure) -> SecretError:
    with pytest.raises(SecretError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.reason is reason, caught.value
    return caught.value


@pytest.mark.parametrize(("key_type", "alg"), [(KeyType.ED25519, "EdDSA"), (KeyType.P256, "ES256")])
def test_pyjwt_validates_from_the_jwks_alone(
    tmp_path: Path, world: LeaseWorld, key_type: KeyType, alg: str
) -> None:
    broker = broker_for(tmp_path, world, key_type)
    issued = broker.issue(world.credential_a(), "payments", scope=["refunds:write"], now=NOW)
    token = str(issued.credential.reveal()["token"])
    document = json.loads(json.dumps(broker.jwks(NOW).to_json()))  # as published
    keys = jwt.PyJWKSet.from_dict(document)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg
    assert header["typ"] == "JWT"
    claims = jwt.decode(
        token,
        keys[header["kid"]],
        algorithms=[alg],
        audience=AUDIENCE,
        issuer="troth-broker",
        options={"require": ["exp", "iat", "sub", "aud", "jti"], "verify_iat": False},
        leeway=10**9,  # PyJWT reads the wall clock; the test world lives at NOW
    )
    assert claims["sub"] == world.agent_a.identifier.did
    # RFC 8693 §4.1: the outermost act is the nearest delegator, the earlier ones nested
    assert claims["act"] == {
        "sub": world.orchestrator.identifier.did,
        "act": {"sub": world.user.identifier.did},
    }
    assert claims["scope"] == "refunds:write"
    assert claims["exp"] == NOW + 120
    assert claims["iat"] == NOW
    assert claims["jti"] == str(issued.lease.handle)
    assert issued.lease_id.text() not in token  # the jti is the handle, never the lease id
    assert header["kid"] == thumbprint(document["keys"][0])


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 §3.2, computed here independently of troth."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    text = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64e(hashlib.sha256(text.encode()).digest())


def test_direct_credential_has_no_act(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    issued = broker.issue(world.credential_b(), "payments", now=NOW)
    claims = broker.validate_token(
        str(issued.credential.reveal()["token"]), audience=AUDIENCE, now=NOW
    )
    assert claims.actors == ()
    assert "act" not in claims.claims
    assert claims.scope == ("orders:read", "refunds:write")  # every scope when none is asked


def test_validate_token_checks_lease_state(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    jwks = broker.jwks(NOW)
    ok = validate_token(
        token, jwks, audience=AUDIENCE, now=NOW + 1, revoked=broker.revoked_leases()
    )
    assert ok.subject == world.agent_a.identifier.did
    assert ok.actors == (world.orchestrator.identifier.did, world.user.identifier.did)
    broker.revoke(credential, issued.lease_id, now=NOW + 2)
    rejects(
        lambda: validate_token(
            token, jwks, audience=AUDIENCE, now=NOW + 3, revoked=broker.revoked_leases()
        ),
        F.REVOKED,
    )
    # a relying party without the broker's state still sees a valid signature (bearer token)
    assert validate_token(token, jwks.to_json(), audience=AUDIENCE, now=NOW + 3).jti == ok.jti


def test_time_audience_issuer(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    token = str(
        broker.issue(world.credential_a(), "payments", now=NOW).credential.reveal()["token"]
    )
    jwks = broker.jwks(NOW)
    rejects(lambda: validate_token(token, jwks, audience=AUDIENCE, now=NOW + 120), F.EXPIRED)
    validate_token(token, jwks, audience=AUDIENCE, now=NOW + 119)
    rejects(
        lambda: validate_token(token, jwks, audience=AUDIENCE, now=NOW - 1), F.JWT_NOT_YET_VALID
    )
    rejects(lambda: validate_token(token, jwks, audience="billing", now=NOW), F.JWT_WRONG_AUDIENCE)
    rejects(
        lambda: validate_token(token, jwks, audience=AUDIENCE, now=NOW, issuer="evil"),
        F.JWT_WRONG_ISSUER,
    )


def test_tampering_every_part(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    token = str(
        broker.issue(world.credential_a(), "payments", now=NOW).credential.reveal()["token"]
    )
    jwks = broker.jwks(NOW)
    header, claims, signature = token.split(".")
    raw_claims = json.loads(b64d(claims))
    for change in (
        {"sub": "did:troth:" + "0" * 64},
        {"exp": NOW + 10**6},
        {"aud": "x"},
        {"scope": "admin"},
    ):
        forged = b64e(json.dumps({**raw_claims, **change}).encode())
        rejects(
            lambda f=forged: validate_token(
                f"{header}.{f}.{signature}", jwks, audience=AUDIENCE, now=NOW
            ),
            F.JWT_BAD_SIGNATURE,
        )
    raw_sig = b64d(signature)
    for index in range(len(raw_sig)):
        bad = b64e(raw_sig[:index] + bytes([raw_sig[index] ^ 1]) + raw_sig[index + 1 :])
        rejects(
            lambda b=bad: validate_token(
                f"{header}.{claims}.{b}", jwks, audience=AUDIENCE, now=NOW
            ),
            F.JWT_BAD_SIGNATURE,
        )
    for broken in (token + ".x", f"{header}.{claims}", "", "a.b.c", f"{header}.{claims}.%%%"):
        with pytest.raises(SecretError) as caught:
            validate_token(broken, jwks, audience=AUDIENCE, now=NOW)
        assert caught.value.reason in (F.JWT_MALFORMED, F.JWT_BAD_SIGNATURE)


def test_algorithm_confusion_and_foreign_keys(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    token = str(
        broker.issue(world.credential_a(), "payments", now=NOW).credential.reveal()["token"]
    )
    jwks = broker.jwks(NOW)
    header, claims, signature = token.split(".")
    kid = json.loads(b64d(header))["kid"]
    for fields in (
        {"alg": "none", "kid": kid},
        {"alg": "ES256", "kid": kid},
        {"alg": "HS256", "kid": kid},
        {"alg": "EdDSA", "kid": "another"},
        {"alg": "EdDSA"},
        {"alg": "EdDSA", "kid": [kid]},  # unhashable kids: refused, not a TypeError
        {"alg": "EdDSA", "kid": {"kid": kid}},
    ):
        forged = b64e(json.dumps(fields).encode())
        rejects(
            lambda f=forged: validate_token(
                f"{f}.{claims}.{signature}", jwks, audience=AUDIENCE, now=NOW
            ),
            F.JWT_UNKNOWN_KEY,
        )
    crit = b64e(json.dumps({"alg": "EdDSA", "kid": kid, "crit": ["exp"]}).encode())
    rejects(
        lambda: validate_token(f"{crit}.{claims}.{signature}", jwks, audience=AUDIENCE, now=NOW),
        F.JWT_MALFORMED,
    )
    # another broker's JWKS (same kid scheme, other key) does not validate this token
    (tmp_path / "other").mkdir()
    other = broker_for(tmp_path / "other", make_world(NOW))
    rejects(
        lambda: validate_token(token, other.jwks(NOW), audience=AUDIENCE, now=NOW),
        F.JWT_UNKNOWN_KEY,
    )
    # an attacker-signed token under the broker's kid fails the signature
    attacker = make_world(NOW).agent_b.signer
    forged = compact_jws(
        {"alg": "EdDSA", "kid": kid, "typ": "JWT"}, json.loads(b64d(claims)), attacker.sign
    )
    rejects(lambda: validate_token(forged, jwks, audience=AUDIENCE, now=NOW), F.JWT_BAD_SIGNATURE)


def test_es256_malleated_signature_refused(tmp_path: Path, world: LeaseWorld) -> None:
    """PyJWT accepts s -> n - s (research §4); troth's validator refuses high-s."""
    broker = broker_for(tmp_path, world, KeyType.P256)
    token = str(
        broker.issue(world.credential_a(), "payments", now=NOW).credential.reveal()["token"]
    )
    header, claims, signature = token.split(".")
    raw = b64d(signature)
    s = int.from_bytes(raw[32:], "big")
    assert s <= P256_ORDER // 2  # the vault signs low-s
    malleated = b64e(raw[:32] + (P256_ORDER - s).to_bytes(32, "big"))
    rejects(
        lambda: validate_token(
            f"{header}.{claims}.{malleated}", broker.jwks(NOW), audience=AUDIENCE, now=NOW
        ),
        F.JWT_BAD_SIGNATURE,
    )


def test_jwks_documents_refused(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    good = broker.jwks(NOW).to_json()
    key = good["keys"][0]
    for document in (
        {"keys": [{**key, "d": "AAAA"}]},  # a private key published by mistake
        {"keys": [key, key]},  # duplicate kid
        {"keys": [{**key, "alg": "ES256"}]},
        {"keys": [{**key, "x": "AAAA"}]},
        {"keys": "nope"},
        {"keys": [key] * 65},
        '{"keys": [], "keys": []}',  # duplicate member (I-JSON)
    ):
        rejects(lambda d=document: Jwks.parse(d), F.CONFIG_INVALID)
    assert Jwks.parse(
        {"keys": [{"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}, key]}
    ).keys.keys() == {key["kid"]}


def test_key_rotation_keeps_old_tokens_valid(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    old = str(broker.issue(world.credential_a(), "payments", now=NOW).credential.reveal()["token"])
    new_kid = broker.keys.rotate_signing_key(NOW + 1)
    new = str(
        broker.issue(world.credential_a(), "payments", now=NOW + 2).credential.reveal()["token"]
    )
    assert jwt.get_unverified_header(new)["kid"] == new_kid != jwt.get_unverified_header(old)["kid"]
    for token in (old, new):
        broker.validate_token(token, audience=AUDIENCE, now=NOW + 3)
    assert len(broker.jwks(NOW + 3).keys) == 2


def test_the_broker_takes_only_tokens_their_lease_carries(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """Signed by the broker's own current key, a token still passes `Broker.validate_token`
    only when its lease could carry it: its identity as `sub`, the secret's audience, scopes
    within the lease's, dated within the lease's life. (A leak of the current key is beyond
    any check; these bind a token to what the broker minted for the lease its `jti` names.)"""
    broker = broker_for(tmp_path, world)
    issued = broker.issue(world.credential_a(), "payments", scope=["orders:read"], now=NOW)
    genuine = str(issued.credential.reveal()["token"])
    head, body, _ = genuine.split(".")
    claims = json.loads(b64d(body))
    (key,) = broker.store.signing_keys()

    def signed(**changes: object) -> str:
        forged = b64e(json.dumps({**claims, **changes}, sort_keys=True).encode())
        signing_input = f"{head}.{forged}"
        signature = broker.vault.sign(KeyHandle.parse(key.handle), signing_input.encode())
        return f"{signing_input}.{b64e(signature)}"

    assert broker.validate_token(signed(), audience=AUDIENCE, now=NOW + 1).jti == claims["jti"]
    other = world.agent_b.identity.identifier.did
    for changes in (
        {"sub": other},
        {"scope": "orders:read refunds:write"},
        {"exp": issued.lease.cap_at + 1},
        {"iat": NOW - 1},
    ):
        rejects(
            lambda c=changes: broker.validate_token(signed(**c), audience=AUDIENCE, now=NOW + 1),
            F.JWT_NOT_OF_LEASE,
        )
    broker.put_secret("other", "token", {**CONFIG, "audience": "other"}, b"", now=NOW)
    rejects(
        lambda: broker.validate_token(signed(aud="other"), audience="other", now=NOW + 1),
        F.JWT_NOT_OF_LEASE,
    )


def test_a_retired_key_validates_only_what_it_signed_before_retiring(
    tmp_path: Path, world: LeaseWorld
) -> None:
    broker = broker_for(tmp_path, world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    before = str(issued.credential.reveal()["token"])
    (old,) = broker.store.signing_keys()
    broker.keys.rotate_signing_key(NOW + 5)
    broker.validate_token(before, audience=AUDIENCE, now=NOW + 6)  # signed before: valid
    head, body, _ = before.split(".")
    late = b64e(json.dumps({**json.loads(b64d(body)), "iat": NOW + 6}, sort_keys=True).encode())
    signature = broker.vault.sign(KeyHandle.parse(old.handle), f"{head}.{late}".encode())
    rejects(
        lambda: broker.validate_token(
            f"{head}.{late}.{b64e(signature)}", audience=AUDIENCE, now=NOW + 7
        ),
        F.JWT_UNKNOWN_KEY,
    )


def test_a_token_validates_only_while_its_lease_lasts(tmp_path: Path, world: LeaseWorld) -> None:
    """The agent renews its lease for a shorter time than its first token still runs: the lease
    now ends at NOW + 31, the first token says exp NOW + 120. Before any sweep, at NOW + 40,
    the broker validates neither token (the lease is over), and the new one only before."""
    broker = broker_for(tmp_path, world)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    first = str(issued.credential.reveal()["token"])
    lease, renewed = broker.renew(credential, issued.lease_id, ttl=30, now=NOW + 1)
    assert lease.expires_at == NOW + 31
    second = str(renewed.reveal()["token"])
    assert broker.validate_token(second, audience=AUDIENCE, now=NOW + 2).jti == str(
        issued.lease.handle
    )
    for token in (first, second):
        rejects(
            lambda t=token: broker.validate_token(t, audience=AUDIENCE, now=NOW + 40), F.EXPIRED
        )
