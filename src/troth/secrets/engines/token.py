"""The `token` engine: a short-lived JWT per lease, signed by the broker's key in the vault.

Claims (RFC 7519 §4.1, RFC 8693 §4.1): `iss` the broker, `sub` the agent's DID, `aud` the
secret's configured audience, `iat`, `exp` = the lease's expiry, `jti` = the lease handle (its
public name, never the lease id), `scope` (space-separated, RFC 8693 §4.2) and `act`: the
delegators, the nearest one outermost (`{"sub": orchestrator, "act": {"sub": user}}`). A
renewal mints a new token with the same `jti`; revoking the lease makes `validate_token` refuse
every token of it. Nothing is created upstream, so revocation has nothing to undo.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from troth.secrets.engine import Grant, LocalEngine, config_error
from troth.secrets.jwt import canonical_json, encoded_header
from troth.secrets.lease import LeaseCredential, SecretValue, b64url

__all__ = ["TokenEngine", "TokenSigner", "claims_json"]

_MAX_AUDIENCE: Final = 256
_string: Final = json.encoder.encode_basestring  # a JSON string as ensure_ascii=False writes it


@dataclass(frozen=True, slots=True)
class TokenSigner:
    """The broker's current signing key: its kid, JWS alg and a signing call into the vault."""

    kid: str
    alg: str
    issuer: str
    sign: Callable[[bytes], bytes]
    header: str = field(init=False, repr=False, compare=False)
    """The base64url JOSE header of its tokens, encoded once with the signer (review 51c)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", encoded_header(self.alg, self.kid))


class TokenEngine(LocalEngine):
    """Mints JWTs; settings: `audience` (required)."""

    kind = "token"
    reads_upstream = False  # a token is signed by the broker's key: no upstream value

    def __init__(self, signer: Callable[[int], TokenSigner]) -> None:
        self._signer = signer  # the current key at a time (a rotation elsewhere shows at once)

    def check_settings(
        self, settings: Mapping[str, Any], scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        audience = settings.get("audience")
        if set(settings) != {"audience"} or not isinstance(audience, str):
            raise config_error("a token secret takes one setting: audience (a string)")
        if not 0 < len(audience) <= _MAX_AUDIENCE or not audience.isprintable():
            raise config_error(f"audience is 1-{_MAX_AUDIENCE} printable characters")
        return {"audience": audience}

    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        signer = self._signer(grant.issued_at)
        act: dict[str, Any] | None = None
        for delegator in reversed(grant.delegators):  # build from the innermost (oldest)
            act = {"sub": delegator.did} if act is None else {"sub": delegator.did, "act": act}
        claims = claims_json(
            issuer=signer.issuer,
            subject=grant.identity.did,
            audience=grant.spec.settings["audience"],
            issued_at=grant.issued_at,
            expires_at=grant.expires_at,
            jti=str(grant.handle),
            scope=" ".join(grant.scope),
            act=act,
        )
        signing_input = f"{signer.header}.{b64url(claims)}"
        token = f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"
        return LeaseCredential(
            {"token": token, "token_type": "Bearer", "expires_at": grant.expires_at},
            token.encode(),
        )


def claims_json(
    *,
    issuer: str,
    subject: str,
    audience: str,
    issued_at: int,
    expires_at: int,
    jti: str,
    scope: str,
    act: Mapping[str, Any] | None,
) -> bytes:
    """A broker token's claims as canonical JSON (keys sorted, no whitespace, UTF-8): exactly
    what `json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
    writes, built without a generic encoder (the equality is pinned by the tests)."""
    head = "" if act is None else f'"act":{canonical_json(act).decode()},'
    return (
        f'{{{head}"aud":{_string(audience)},"exp":{int(expires_at)},"iat":{int(issued_at)},'
        f'"iss":{_string(issuer)},"jti":{_string(jti)},"scope":{_string(scope)},'
        f'"sub":{_string(subject)}}}'
    ).encode()
