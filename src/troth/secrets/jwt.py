"""JWTs the broker mints and anyone validates: compact JWS (RFC 7515 §7.1) with EdDSA over
Ed25519 (RFC 8037 §3.1) or ES256 (RFC 7518 §3.4, raw r||s, low-s), published as a JWKS
(RFC 7517 §5) whose kids are JWK thumbprints (RFC 7638).

`validate_token` checks a token the way any relying party should (signature by a key of the
JWKS whose `alg` is the key's own, `exp`/`nbf`/`iat` against `now`, `aud`, optionally `iss`)
and additionally that its lease (`jti`) is not revoked. Its hot path is one signature
verification plus two small JSON parses (docs/secrets.md, "`token`: a JWT per lease").
"""

from __future__ import annotations

import abc
import functools
import json
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, NamedTuple, NoReturn

from troth import limits
from troth.crypto import KeyType, PublicKey, sha256, verify_signature
from troth.encoding.ijson import load_json
from troth.errors import ArgumentError, CryptoError, DecodeError, SecretError, SecretFailure
from troth.kinds import check_kind, got
from troth.secrets.lease import b64url, b64url_decode

__all__ = [
    "ALGORITHMS",
    "Jwk",
    "Jwks",
    "LeaseStates",
    "ValidatedToken",
    "canonical_json",
    "compact_jws",
    "compact_jws_encoded",
    "encoded_header",
    "jwk_of",
    "validate_token",
]

ALGORITHMS: Final = {KeyType.ED25519: "EdDSA", KeyType.P256: "ES256"}
_F = SecretFailure
_MAX_KID: Final = 128
_MAX_ACT_DEPTH: Final = limits.MAX_DELEGATION_LINKS + 1
_HEADER_CACHE: Final = 256
_CLAIMS_CACHE: Final = 4096


_CANONICAL: Final = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """JSON with sorted keys and no whitespace, UTF-8 (what the broker signs)."""
    return _CANONICAL.encode(value).encode()


def compact_jws(header: Mapping[str, Any], claims: Mapping[str, Any], sign: Any) -> str:
    """header.claims.signature, each base64url; `sign(signing input) -> raw signature`."""
    return compact_jws_encoded(b64url(canonical_json(header)), claims, sign)


@functools.lru_cache(maxsize=64)
def encoded_header(alg: str, kid: str) -> str:
    """The base64url JOSE header of a broker token: {"alg", "kid", "typ": "JWT"}."""
    return b64url(canonical_json({"alg": alg, "kid": kid, "typ": "JWT"}))


def compact_jws_encoded(header: str, claims: Mapping[str, Any], sign: Any) -> str:
    """`compact_jws` with the header already encoded (a signer's header never changes)."""
    signing_input = f"{header}.{b64url(canonical_json(claims))}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def jwk_of(key: PublicKey) -> dict[str, str]:
    """The public JWK of a signing key: its RFC 7638 required members, in order."""
    if key.key_type is KeyType.ED25519:
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url(key.data)}
    if key.key_type is KeyType.P256:
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url(key.data[1:33]),
            "y": b64url(key.data[33:]),
        }
    raise SecretError(_F.CONFIG_INVALID, f"{key.key_type.label} keys cannot sign tokens")


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 §3: SHA-256 of the required members, sorted, no whitespace."""
    return b64url(sha256(canonical_json(jwk)))


@dataclass(frozen=True, slots=True)
class Jwk:
    """One verification key of a JWKS."""

    kid: str
    alg: str
    key: PublicKey

    def to_json(self) -> dict[str, str]:
        return {**jwk_of(self.key), "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True, slots=True)
class Jwks:
    """Verification keys by kid (parse a published document once, then validate with it)."""

    keys: Mapping[str, Jwk] = field(default_factory=dict)
    _headers: dict[str, Jwk] = field(default_factory=dict, compare=False, repr=False)
    _claims: dict[str, _Claims] = field(default_factory=dict, compare=False, repr=False)

    def claims_of(self, segment: str) -> _Claims:
        """A verified token's claims segment, parsed (kept for the segments seen last: only
        call it after the segment's signature verified)."""
        parsed = self._claims.get(segment)
        if parsed is None:
            parsed = _parse_claims(segment)
            if len(self._claims) >= _CLAIMS_CACHE:
                self._claims.clear()
            self._claims[segment] = parsed
        return parsed

    def key_for_header(self, encoded: str) -> Jwk:
        """The key a JOSE header (base64url) names by kid, if its alg is that key's own (the
        answers for headers already seen are kept: a broker's tokens share a few headers)."""
        key = self._headers.get(encoded)
        if key is not None:
            return key
        header = _part(encoded, "header")
        if not isinstance(header, dict) or "crit" in header or header.get("typ", "JWT") != "JWT":
            raise SecretError(_F.JWT_MALFORMED, "unsupported JOSE header")
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None  # a list is unhashable
        if key is None or header.get("alg") != key.alg:
            raise SecretError(_F.JWT_UNKNOWN_KEY, "no key in the JWKS has this kid and alg")
        if len(self._headers) < _HEADER_CACHE:
            self._headers[encoded] = key
        return key

    def to_json(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.to_json() for k in self.keys.values()]}

    @classmethod
    def of(cls, keys: list[Jwk]) -> Jwks:
        return cls({k.kid: k for k in keys})

    @classmethod
    def parse(cls, document: Mapping[str, Any] | str | bytes) -> Jwks:
        """Read a JWKS document. Keys of other types (RSA, ...) are skipped; a malformed EdDSA or
        ES256 key, a private key, a duplicate kid or an oversized document is refused
        (SecretError CONFIG_INVALID)."""
        if isinstance(document, str | bytes):
            data = document.encode() if isinstance(document, str) else document
            try:
                document = load_json(data, max_bytes=limits.MAX_JWKS_BYTES, what="JWKS")
            except DecodeError as exc:
                raise SecretError(_F.CONFIG_INVALID, str(exc)) from None
        entries = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(entries, list) or len(entries) > limits.MAX_JWKS_KEYS:
            raise SecretError(
                _F.CONFIG_INVALID, f"a JWKS holds a list of <= {limits.MAX_JWKS_KEYS} keys"
            )
        keys: dict[str, Jwk] = {}
        for entry in entries:
            jwk = _parse_jwk(entry)
            if jwk is None:
                continue
            if jwk.kid in keys:
                raise SecretError(_F.CONFIG_INVALID, f"two keys with kid {jwk.kid!r}")
            keys[jwk.kid] = jwk
        return cls(keys)


def _parse_jwk(entry: Any) -> Jwk | None:
    bad = SecretError(_F.CONFIG_INVALID, "a malformed EdDSA/ES256 key in the JWKS")
    if not isinstance(entry, Mapping):
        raise bad
    kty, crv = entry.get("kty"), entry.get("crv")
    members: tuple[str, ...]
    if (kty, crv) == ("OKP", "Ed25519"):
        key_type, members = KeyType.ED25519, ("x",)
    elif (kty, crv) == ("EC", "P-256"):
        key_type, members = KeyType.P256, ("x", "y")
    else:  # RSA, Ed448, X25519, other curves: not keys troth's tokens are signed with
        return None
    kid, alg = entry.get("kid"), entry.get("alg", ALGORITHMS[key_type])
    if (
        "d" in entry
        or not isinstance(kid, str)
        or not 0 < len(kid) <= _MAX_KID
        or alg != ALGORITHMS[key_type]
        or entry.get("use", "sig") != "sig"
    ):
        raise bad
    try:
        parts = [b64url_decode(entry[m]) for m in members]
        if any(len(p) != 32 for p in parts):
            raise ValueError
        raw = parts[0] if key_type is KeyType.ED25519 else b"\x04" + parts[0] + parts[1]
        return Jwk(kid, alg, PublicKey(key_type, raw))
    except (KeyError, TypeError, ValueError, CryptoError):
        raise bad from None


class ValidatedToken(NamedTuple):
    """A token whose signature, times, audience and lease were checked."""

    subject: str
    actors: tuple[str, ...]  # `act` chain: the current actor's delegator first (RFC 8693 §4.1)
    scope: tuple[str, ...]
    audience: str
    issuer: str | None
    issued_at: int
    expires_at: int
    jti: str
    kid: str
    claims: Mapping[str, Any]


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number (RFC 8259 §6)")


def _part(text: str, what: str) -> Any:
    """A JOSE header or a claims set (NaN / Infinity refused, as any text not JSON: review
    54d, json 4; of a duplicated name the last is read, RFC 7519 §4)."""
    try:
        return json.loads(b64url_decode(text).decode(), parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SecretError(_F.JWT_MALFORMED, f"the {what} is not base64url JSON") from None


def _int_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if type(value) is not int:
        raise SecretError(_F.JWT_MALFORMED, f"claim {name!r} is not an integer")
    return value


def _actors(claims: Mapping[str, Any]) -> tuple[str, ...]:
    actors: list[str] = []
    act = claims.get("act")
    while act is not None:
        if not isinstance(act, Mapping) or not isinstance(act.get("sub"), str):
            raise SecretError(_F.JWT_MALFORMED, "an `act` claim without a string `sub`")
        if len(actors) == _MAX_ACT_DEPTH:
            raise SecretError(_F.JWT_MALFORMED, "`act` nested too deep")
        actors.append(act["sub"])
        act = act.get("act")
    return tuple(actors)


class _Claims(NamedTuple):
    """A claims segment, parsed and type-checked once (what every validation reads of it)."""

    claims: Mapping[str, Any]
    expires_at: int
    issued_at: int
    valid_from: int  # max(iat, nbf)
    audience: Any
    issuer: Any
    subject: str
    jti: str
    scope: tuple[str, ...]
    actors: tuple[str, ...]


def _parse_claims(segment: str) -> _Claims:
    claims = _part(segment, "claims")
    if not isinstance(claims, dict):
        raise SecretError(_F.JWT_MALFORMED, "the claims are not a JSON object")
    expires_at, issued_at = _int_claim(claims, "exp"), _int_claim(claims, "iat")
    not_before = _int_claim(claims, "nbf") if "nbf" in claims else issued_at
    subject, jti, scope = claims.get("sub"), claims.get("jti"), claims.get("scope", "")
    if not isinstance(subject, str) or not isinstance(jti, str) or not isinstance(scope, str):
        raise SecretError(_F.JWT_MALFORMED, "sub, jti and scope are strings")
    return _Claims(
        MappingProxyType(claims),
        expires_at,
        issued_at,
        max(issued_at, not_before),
        claims.get("aud"),
        claims.get("iss"),
        subject,
        jti,
        tuple(scope.split()),
        _actors(claims),
    )


class LeaseStates(Container[str]):
    """What a broker publishes of its leases for `validate_token(..., revoked=)`: which are
    revoked (`jti in states`), and more, so that a relying party reaches the broker's own
    answer (`Broker.validate_token`): a live lease's end (`not_after`: a renewal for less time
    ends the lease's earlier tokens; review 54e, secrets 1) and the latest time the broker has
    judged at (`seen`: a token or a lease ended then stays ended, however the clocks are set
    back; review 54e, secrets 3). `Broker.revoked_leases()` is one."""

    __slots__ = ()

    def __contains__(self, jti: object) -> bool:
        return not isinstance(jti, str) or self.not_after(jti) is None

    @abc.abstractmethod
    def not_after(self, jti: str) -> int | None:
        """The end of lease `jti` (its `expires_at`) while it is live; None when it is revoked,
        being revoked, pending or unknown."""

    @abc.abstractmethod
    def seen(self) -> int:
        """The latest `now` the publisher has judged at (never moved by a relying party)."""


def validate_token(
    token: str,
    jwks: Jwks | Mapping[str, Any] | str | bytes,
    *,
    audience: str,
    now: int,
    revoked: Container[str] = frozenset(),
    issuer: str | None = None,
    leeway: int = 0,
) -> ValidatedToken:
    """Validate a broker token at `now` for `audience`; SecretError with the reason otherwise.

    `revoked` holds revoked leases' handles (`jti`), e.g. `broker.revoked_leases()`: a token
    whose lease was revoked is refused even before it expires. When it is `LeaseStates` (the
    broker's are), a token is also refused EXPIRED once its lease ended (a renewal for less
    time), and every time is judged at max(`now`, `revoked.seen()`): a clock behind the
    broker's revives nothing (review 54e, secrets 1 and 3). Every call verifies the
    signature; the claims of a segment already verified and parsed are not parsed again (a
    service validates the same bearer token at each of its requests). `now` and `leeway` are
    whole numbers of seconds, `leeway` 0-MAX_TOKEN_LEEWAY_SECONDS (an ArgumentError: review
    69i, caveats 1, a NaN leeway or `now` made every time comparison false, and a token
    expired a year ago, or whose lease had ended, validated; `inf` kept every token valid, and
    so did a leeway of a year for a year: review 70i, leftovers 1)."""
    check_kind("validate_token", "now", now, int, "a whole number of seconds")
    if type(leeway) is not int or not 0 <= leeway <= limits.MAX_TOKEN_LEEWAY_SECONDS:
        expected = f"a whole number of seconds 0-{limits.MAX_TOKEN_LEEWAY_SECONDS}"
        raise ArgumentError("validate_token", "leeway", expected, got(leeway))
    states = revoked if isinstance(revoked, LeaseStates) else None
    if states is not None:
        now = max(now, states.seen())
    keys = jwks if isinstance(jwks, Jwks) else Jwks.parse(jwks)
    if not isinstance(token, str) or len(token) > limits.MAX_TOKEN_BYTES or not token.isascii():
        raise SecretError(_F.JWT_MALFORMED, "not a compact JWS of a sane size")
    pieces = token.split(".")
    if len(pieces) != 3:
        raise SecretError(_F.JWT_MALFORMED, "a compact JWS has three parts")
    head, body, tail = pieces
    key = keys.key_for_header(head)
    try:
        verify_signature(key.key, b64url_decode(tail), token[: len(head) + 1 + len(body)].encode())
    except (ValueError, CryptoError):
        raise SecretError(_F.JWT_BAD_SIGNATURE, f"kid {key.kid}") from None
    parsed = keys.claims_of(body)
    if now >= parsed.expires_at + leeway:
        raise SecretError(_F.EXPIRED, f"token expired at {parsed.expires_at}")
    if parsed.valid_from > now + leeway:
        raise SecretError(_F.JWT_NOT_YET_VALID, f"token valid from {parsed.valid_from}")
    aud = parsed.audience
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise SecretError(_F.JWT_WRONG_AUDIENCE, f"not for {audience!r}")
    iss = parsed.issuer
    if issuer is not None and iss != issuer:
        raise SecretError(_F.JWT_WRONG_ISSUER, f"not from {issuer!r}")
    if states is None:
        if parsed.jti in revoked:
            raise SecretError(_F.REVOKED, f"lease {parsed.jti}")
    else:  # one lookup: live or not, and until when
        ends = states.not_after(parsed.jti)
        if ends is None:
            raise SecretError(_F.REVOKED, f"lease {parsed.jti}")
        if now >= ends + leeway:  # renewed for less time, swept or not yet
            raise SecretError(_F.EXPIRED, f"lease {parsed.jti} ended at {ends}")
    return ValidatedToken(
        parsed.subject,
        parsed.actors,
        parsed.scope,
        audience,
        iss if isinstance(iss, str) else None,
        parsed.issued_at,
        parsed.expires_at,
        parsed.jti,
        key.kid,
        parsed.claims,
    )
