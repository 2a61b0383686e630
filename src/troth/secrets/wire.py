"""The broker service's messages (docs/protocols.md, "Broker service"): what an agent sends to
`/service/broker` and what it gets back, as CBOR values inside the node's service protocol.

Requests are maps with exactly the fields of their method. Answers are maps too: a success
carries its result (`{"lease": ...}`, `{"leases": [...]}`, ...); a refusal of the broker
carries `{"refused": <SecretFailure name>, "detail": text}`, so the caller gets the same typed
`SecretError` the broker raised (an access decision's refusal stays a `Denied`).

Decoders here raise only DecodeError (sans-IO: the node adapter and the client both use them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets.broker import IssuedLease
from troth.secrets.engines.http_inject import HttpRequest, HttpResponse
from troth.secrets.lease import (
    REQUEST_ID_SIZE,
    EndReason,
    Lease,
    LeaseCredential,
    LeaseHandle,
    LeaseId,
    LeaseRequest,
    LeaseState,
)

__all__ = [
    "BROKER",
    "METHODS",
    "ForwardArgs",
    "IssueArgs",
    "LeaseArgs",
    "ListArgs",
    "RevokeIdentityArgs",
    "decode_credential",
    "decode_issued",
    "decode_lease",
    "decode_leases",
    "decode_response",
    "decode_revoked",
    "encode_lease",
    "encode_response",
    "mapping_of",
    "raise_refusal",
    "refusal",
]

BROKER: Final = "broker"
"""The service's name: its address is `/service/broker`."""
METHODS: Final = ("issue", "renew", "revoke", "list", "revoke-identity", "jwks", "forward")


def _map(
    value: Any, what: str, required: Iterable[str], optional: Iterable[str] = ()
) -> dict[str, Any]:
    """`value` as a map holding every `required` key and only those and `optional` ones."""
    if type(value) is not dict:
        raise DecodeError(f"{what}: expected a map")
    needed, allowed = set(required), set(required) | set(optional)
    keys = set(value)
    if not needed <= keys or not keys <= allowed:
        raise DecodeError(f"{what}: expected the fields {', '.join(sorted(allowed))}")
    return value


def _optional_int(value: Any, what: str) -> int | None:
    return None if value is None else cbor.expect_int(value, what, 1)


def _lease_id(value: Any) -> LeaseId:
    try:
        return LeaseId.parse(cbor.expect_text(value, "lease_id"))
    except SecretError:
        raise DecodeError("lease_id: not a lease id (lease_...)") from None


def _texts(value: Any, what: str, limit: int) -> tuple[str, ...]:
    items = cbor.expect_array(value, what)
    if len(items) > limit:
        raise DecodeError(f"{what}: more than {limit}", DecodeProblem.OVER_LIMIT)
    return tuple(cbor.expect_text(item, what) for item in items)


@dataclass(frozen=True, slots=True)
class IssueArgs:
    """issue: lease secret `secret`; `scope` None = every scope the secret offers; `request`
    (optional: the fields `request` and `attempt`) names the request, so that a retry after
    a lost answer replaces the lease the lost one was issued (troth.secrets.lease.LeaseRequest;
    review 45i, secrets 2)."""

    secret: str
    scope: tuple[str, ...] | None = None
    ttl: int | None = None
    request: LeaseRequest | None = None

    def to_wire(self) -> dict[str, Any]:
        scope = None if self.scope is None else list(self.scope)
        wire: dict[str, Any] = {"secret": self.secret, "scope": scope, "ttl": self.ttl}
        if self.request is not None:  # absent otherwise: what a broker before it reads
            wire["request"], wire["attempt"] = self.request.id, self.request.attempt
        return wire

    @classmethod
    def from_wire(cls, value: Any) -> IssueArgs:
        fields = _map(value, "issue", ("secret", "scope", "ttl"), ("request", "attempt"))
        scope = fields["scope"]
        request = None
        if "request" in fields or "attempt" in fields:
            if not {"request", "attempt"} <= set(fields):
                raise DecodeError("issue: a request id goes with its attempt")
            try:
                request = LeaseRequest(
                    cbor.expect_bytes(fields["request"], "request", REQUEST_ID_SIZE),
                    cbor.expect_int(fields["attempt"], "attempt", 1),
                )
            except SecretError as exc:
                raise DecodeError(f"issue: {exc.detail}") from None
        return cls(
            cbor.expect_text(fields["secret"], "secret"),
            None if scope is None else _texts(scope, "scope", limits.MAX_LEASE_SCOPES),
            _optional_int(fields["ttl"], "ttl"),
            request,
        )


@dataclass(frozen=True, slots=True)
class LeaseArgs:
    """renew and revoke: the caller's lease id (renew: optionally a new ttl)."""

    lease_id: LeaseId
    ttl: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"lease_id": self.lease_id.text(), "ttl": self.ttl}

    @classmethod
    def from_wire(cls, value: Any) -> LeaseArgs:
        fields = _map(value, "lease", ("lease_id", "ttl"))
        return cls(_lease_id(fields["lease_id"]), _optional_int(fields["ttl"], "ttl"))


@dataclass(frozen=True, slots=True)
class ListArgs:
    """list: the caller's open leases (`ended`: the ended ones too)."""

    ended: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"ended": self.ended}

    @classmethod
    def from_wire(cls, value: Any) -> ListArgs:
        ended = _map(value, "list", ("ended",))["ended"]
        if type(ended) is not bool:
            raise DecodeError("ended: expected a boolean")
        return cls(ended)


@dataclass(frozen=True, slots=True)
class RevokeIdentityArgs:
    """revoke-identity: every lease of `identity` (the broker's operators only)."""

    identity: Identifier

    def to_wire(self) -> dict[str, Any]:
        return {"identity": str(self.identity)}

    @classmethod
    def from_wire(cls, value: Any) -> RevokeIdentityArgs:
        text = cbor.expect_text(
            _map(value, "revoke-identity", ("identity",))["identity"], "identity"
        )
        try:
            return cls(Identifier.parse(text))
        except ValueError:
            raise DecodeError("identity: not an identifier") from None


@dataclass(frozen=True, slots=True)
class ForwardArgs:
    """forward: an HTTP request to send upstream under an http-inject lease."""

    lease_id: LeaseId
    request: HttpRequest

    def to_wire(self) -> dict[str, Any]:
        request = self.request
        return {
            "lease_id": self.lease_id.text(),
            "method": request.method,
            "target": request.target,
            "headers": [[name, value] for name, value in request.headers],
            "body": request.body,
        }

    @classmethod
    def from_wire(cls, value: Any) -> ForwardArgs:
        fields = _map(value, "forward", ("lease_id", "method", "target", "headers", "body"))
        body = cbor.expect_bytes(fields["body"], "body")
        if len(body) > limits.MAX_INJECT_REQUEST_BYTES:
            raise DecodeError("body: over the limit", DecodeProblem.OVER_LIMIT)
        request = HttpRequest(
            cbor.expect_text(fields["method"], "method"),
            cbor.expect_text(fields["target"], "target"),
            _headers(fields["headers"]),
            body,
        )
        return cls(_lease_id(fields["lease_id"]), request)


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    items = cbor.expect_array(value, "headers")
    if len(items) > limits.MAX_INJECT_HEADERS:
        raise DecodeError("headers: too many", DecodeProblem.OVER_LIMIT)
    pairs = []
    for item in items:
        name, text = cbor.expect_array(item, "header", 2)
        pairs.append((cbor.expect_text(name, "header name"), cbor.expect_text(text, "header")))
    return tuple(pairs)


# -- answers -----------------------------------------------------------------------------------


def refusal(exc: SecretError) -> dict[str, Any]:
    """The answer for a request the broker refused (its reason travels typed)."""
    return {"refused": exc.reason.name, "detail": exc.detail}


def raise_refusal(answer: Any) -> dict[str, Any]:
    """`answer` as a map; SecretError if it is the broker's refusal (DecodeError if neither)."""
    if type(answer) is not dict:
        raise DecodeError("a broker answer is a map")
    if "refused" in answer:
        fields = _map(answer, "refusal", ("refused", "detail"))
        name = cbor.expect_text(fields["refused"], "refused")
        if name not in SecretFailure.__members__:
            raise DecodeError(f"refused: unknown reason {name!r}")
        raise SecretError(SecretFailure[name], cbor.expect_text(fields["detail"], "detail"))
    return answer


def encode_lease(lease: Lease) -> dict[str, Any]:
    """A lease as the broker shows it to its holder (never the lease id)."""
    return lease.to_json()


_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_LEASE_FIELDS: Final = (
    "handle",
    "identity",
    "secret",
    "engine",
    "scope",
    "credential",
    "authority",
    "issued_at",
    "expires_at",
    "ttl",
    "max_ttl",
    "renewable_until",
    "state",
    "state_at",
    "end_reason",
)


def decode_lease(value: Any) -> Lease:
    """A lease from its `encode_lease` form (DecodeError if it is not one)."""
    fields = _map(value, "lease", _LEASE_FIELDS)
    try:
        state = LeaseState[cbor.expect_text(fields["state"], "state").upper()]
        end = fields["end_reason"]
        end_reason = None if end is None else EndReason[cbor.expect_text(end, "end").upper()]
        lease = Lease(
            handle=LeaseHandle.parse(cbor.expect_text(fields["handle"], "handle")),
            identity=Identifier.parse(cbor.expect_text(fields["identity"], "identity")),
            secret=cbor.expect_text(fields["secret"], "secret"),
            engine=cbor.expect_text(fields["engine"], "engine"),
            scope=_texts(fields["scope"], "scope", limits.MAX_LEASE_SCOPES),
            chain_hash=_sha256_hex(fields["credential"]),
            authority=Identifier.parse(cbor.expect_text(fields["authority"], "authority")),
            issued_at=cbor.expect_int(fields["issued_at"], "issued_at"),
            expires_at=cbor.expect_int(fields["expires_at"], "expires_at"),
            ttl=cbor.expect_int(fields["ttl"], "ttl"),
            max_ttl=cbor.expect_int(fields["max_ttl"], "max_ttl"),
            cap_at=cbor.expect_int(fields["renewable_until"], "renewable_until"),
            state=state,
            state_at=cbor.expect_int(fields["state_at"], "state_at"),
            end_reason=end_reason,
            engine_ref=None,
        )
    except (KeyError, ValueError, SecretError):
        raise DecodeError("lease: a field is malformed") from None
    if lease.to_json() != fields:  # one encoding per lease (review 54b, decoders 2)
        raise DecodeError("lease: not as the broker writes it", DecodeProblem.NON_CANONICAL)
    return lease


def _sha256_hex(value: Any) -> bytes:
    """The justifying chain's SHA-256: 64 lowercase hex digits (bytes.fromhex took any case,
    spaces and any length: review 54b, decoders 2)."""
    text = cbor.expect_text(value, "credential")
    if not _SHA256_HEX.fullmatch(text):
        raise DecodeError("lease: credential is not a SHA-256 in lowercase hex")
    return bytes.fromhex(text)


def decode_leases(value: Any) -> list[Lease]:
    """The leases of a `{"leases": [...]}` answer."""
    return _leases_answer(value, ())[0]


def decode_revoked(value: Any) -> tuple[list[Lease], int]:
    """The leases of a `revoke-identity` answer and how many it revoked: `{"leases": [...]}`,
    and `"revoked": n` when it revoked more than a list answer holds (review 48f,
    revoke-identity 1)."""
    return _leases_answer(value, ("revoked",))


def _leases_answer(value: Any, optional: tuple[str, ...]) -> tuple[list[Lease], int]:
    fields = _map(value, "leases", ("leases",), optional)
    items = cbor.expect_array(fields["leases"], "leases")
    if len(items) > limits.MAX_LEASE_LIST:
        raise DecodeError("leases: more than the list limit", DecodeProblem.OVER_LIMIT)
    leases = [decode_lease(item) for item in items]
    if "revoked" not in fields:
        return leases, len(leases)
    return leases, cbor.expect_int(fields["revoked"], "revoked", len(leases) + 1)


def decode_credential(value: Any) -> LeaseCredential:
    """An engine's credential as the broker handed it over (its values stay hidden in repr)."""
    if type(value) is not dict or len(value) > 16:
        raise DecodeError("credential: expected a small map")
    fields: dict[str, str | int] = {}
    for key, item in value.items():
        if type(key) is not str or type(item) not in (str, int):
            raise DecodeError("credential: text keys, text or integer values")
        fields[key] = item
    secret = fields.get("token", fields.get("password", ""))
    return LeaseCredential(fields, str(secret).encode())


def decode_issued(value: Any) -> IssuedLease:
    """A new lease from an issue answer: the lease id, the lease, the credential."""
    fields = _map(value, "issued", ("lease_id", "lease", "credential"))
    return IssuedLease(
        _lease_id(fields["lease_id"]),
        decode_lease(fields["lease"]),
        decode_credential(fields["credential"]),
    )


def encode_response(response: HttpResponse) -> dict[str, Any]:
    """An upstream answer, forwarded (the secret already redacted by the engine)."""
    return {
        "status": response.status,
        "reason": response.reason,
        "headers": [[name, value] for name, value in response.headers],
        "body": response.body,
    }


def decode_response(value: Any) -> HttpResponse:
    """An upstream answer from a forward answer."""
    fields = _map(value, "response", ("status", "reason", "headers", "body"))
    body = cbor.expect_bytes(fields["body"], "body")
    if len(body) > limits.MAX_INJECT_RESPONSE_BYTES:
        raise DecodeError("body: over the limit", DecodeProblem.OVER_LIMIT)
    return HttpResponse(
        cbor.expect_int(fields["status"], "status"),
        cbor.expect_text(fields["reason"], "reason"),
        _headers(fields["headers"]),
        body,
    )


def mapping_of(value: Any, what: str) -> Mapping[str, Any]:
    """`value` as a map with text keys (a JWKS document, a lease list answer)."""
    if type(value) is not dict or not all(type(k) is str for k in value):
        raise DecodeError(f"{what}: expected a map with text keys")
    return value
