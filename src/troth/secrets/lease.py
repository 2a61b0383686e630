"""Leases: what the broker lent to whom, for how long, and why (docs/secrets.md, "Leases").

A lease id is 32 bytes, handed to the agent once (text: "lease_" + base64url) and never stored:
its *locator* (8 bytes: the issue second and 28 random bits, the row's key in the book) then 24
random bytes. With H = SHA-256("troth.lease.handle/2" 0x00 || lease id), the book keeps the
lease's *handle*, locator || H[:8], and its *proof*, H[8:24]. The handle is public (a token's
`jti`, what `list` shows and what audit records name); the lease id is the agent's proof, next
to its identity, that a lease is its own. Holding the database yields handles and proofs, never
lease ids (docs/formats.md, "Leases").
"""

from __future__ import annotations

import binascii
import enum
import os
import re
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.crypto import sha256
from troth.dataclass_init import quick_init
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier

__all__ = [
    "LEASE_ID_SIZE",
    "EndReason",
    "Lease",
    "LeaseCredential",
    "LeaseHandle",
    "LeaseId",
    "LeaseRequest",
    "LeaseState",
    "SecretValue",
    "b64url",
    "b64url_decode",
    "check_scope",
    "check_secret_name",
]

LEASE_ID_SIZE: Final = 32
HANDLE_SIZE: Final = 16
LOCATOR_SIZE: Final = 8
PROOF_SIZE: Final = 16
_HANDLE_DOMAIN: Final = b"troth.lease.handle/2\x00"
_LOCATOR_RANDOM_BITS: Final = 28
_LOCATOR_MAX_SECOND: Final = (1 << (63 - _LOCATOR_RANDOM_BITS)) - 1
_LEASE_ID_PREFIX: Final = "lease_"
_REQUEST_DOMAIN: Final = b"troth.lease.request/1\x00"
REQUEST_ID_SIZE: Final = 16
MAX_REQUEST_ATTEMPT: Final = (1 << 31) - 1
"""The highest attempt number a lease request may carry."""
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URL = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", b"", b"==", b"=")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode unpadded, canonical base64url strictly (ValueError for anything else)."""
    rest = len(text) % 4
    if (
        rest == 1
        or not _B64URL.fullmatch(text)
        or (rest == 2 and text[-1] not in "AQgw")  # the unused low bits must be zero
        or (rest == 3 and text[-1] not in "AEIMQUYcgkosw048")
    ):
        raise ValueError("not canonical unpadded base64url")
    return binascii.a2b_base64(text.encode().translate(_TO_STANDARD) + _PADDING[rest])


class SecretValue:
    """Bytes that must not be shown: repr, str and format never reveal them."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The bytes themselves (to seal, to inject, to hand to a driver; never to log)."""
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self._value)} bytes hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True, init=False)
class LeaseHandle:
    """The public name of a lease (16 bytes; text: base64url, the token's `jti`)."""

    digest: bytes

    def __init__(self, digest: bytes) -> None:
        if len(digest) != HANDLE_SIZE:
            raise ValueError(f"a lease handle is {HANDLE_SIZE} bytes")
        _set_handle(self, digest)  # frozen: through the slot (one per issue and validation)

    def __str__(self) -> str:
        return b64url(self.digest)

    @property
    def locator(self) -> int:
        """The row key: the first 8 bytes as a signed 64-bit integer (a handle not made here
        may be negative, and then names no row)."""
        return int.from_bytes(self.digest[:LOCATOR_SIZE], "big", signed=True)

    @classmethod
    def parse(cls, text: str) -> LeaseHandle:
        try:
            return cls(b64url_decode(text))
        except ValueError:
            raise SecretError(SecretFailure.NO_SUCH_LEASE, "not a lease handle") from None


_set_handle = vars(LeaseHandle)["digest"].__set__  # the slot descriptor


def locator_floor(second: int) -> int:
    """The least locator of a lease issued at `second` or later (clamped as `LeaseId.new`
    clamps): the rows of leases issued before `second` are the rowid range below it."""
    return min(max(second, 0), _LOCATOR_MAX_SECOND) << _LOCATOR_RANDOM_BITS


def locator_second(locator: int) -> int:
    """The issue second a locator starts with (`LeaseId.new`)."""
    return locator >> _LOCATOR_RANDOM_BITS


class LeaseId(SecretValue):
    """The secret that proves a lease is the caller's (hidden in repr; only its handle shows)."""

    __slots__ = ()

    @classmethod
    def new(cls, now: int) -> LeaseId:
        """A fresh lease id whose locator starts with second `now` (clamped to 0-2^35-1), so
        the book's rows are appended in issue order."""
        second = min(max(now, 0), _LOCATOR_MAX_SECOND)
        raw = os.urandom(LEASE_ID_SIZE)
        rand = int.from_bytes(raw[:4], "big") >> (32 - _LOCATOR_RANDOM_BITS)
        locator = (second << _LOCATOR_RANDOM_BITS) | rand
        return cls(locator.to_bytes(LOCATOR_SIZE, "big") + raw[LOCATOR_SIZE:])

    @classmethod
    def parse(cls, text: str) -> LeaseId:
        """The text form "lease_<base64url>" (SecretError NO_SUCH_LEASE otherwise)."""
        try:
            if not text.startswith(_LEASE_ID_PREFIX):
                raise ValueError
            raw = b64url_decode(text[len(_LEASE_ID_PREFIX) :])
            if len(raw) != LEASE_ID_SIZE:
                raise ValueError
        except ValueError:
            raise SecretError(SecretFailure.NO_SUCH_LEASE, "not a lease id") from None
        return cls(raw)

    def text(self) -> str:
        """The text form to give the agent (once, at issue)."""
        return _LEASE_ID_PREFIX + b64url(self.reveal())

    @property
    def handle(self) -> LeaseHandle:
        return self.handle_and_proof()[0]

    def handle_and_proof(self) -> tuple[LeaseHandle, bytes]:
        """The public handle (locator || H[:8]) and the stored proof (H[8:24])."""
        raw = self.reveal()
        digest = sha256(_HANDLE_DOMAIN + raw)
        tag = HANDLE_SIZE - LOCATOR_SIZE
        return LeaseHandle(raw[:LOCATOR_SIZE] + digest[:tag]), digest[tag : tag + PROOF_SIZE]


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """An agent's name for one lease request (`id`: `REQUEST_ID_SIZE` random bytes it chose)
    and which attempt at it this is (review 45i, secrets 2; docs/secrets.md, "Retried
    requests"): an agent that gave up waiting for an answer asks again with the same id and
    the next attempt, and the broker revokes the lease an earlier attempt was issued (held by
    no one) instead of leaving it live beside the new one; an attempt older than one already
    served is refused. The broker files it per identity (`key`): another agent's request
    never names this one's leases."""

    id: bytes
    attempt: int = 1

    def __post_init__(self) -> None:
        if type(self.id) is not bytes or len(self.id) != REQUEST_ID_SIZE:
            raise SecretError(
                SecretFailure.BAD_REQUEST, f"a lease request id is {REQUEST_ID_SIZE} bytes"
            )
        if type(self.attempt) is not int or not 1 <= self.attempt <= MAX_REQUEST_ATTEMPT:
            raise SecretError(
                SecretFailure.BAD_REQUEST, f"a request's attempt is 1-{MAX_REQUEST_ATTEMPT}"
            )

    @classmethod
    def new(cls) -> LeaseRequest:
        """A fresh request (a random id), its first attempt."""
        return cls(os.urandom(REQUEST_ID_SIZE))

    def retry(self) -> LeaseRequest:
        """The next attempt at the same request."""
        return LeaseRequest(self.id, self.attempt + 1)

    def key(self, identity: Identifier) -> bytes:
        """What the broker stores with the lease: SHA-256(domain || identity || id)[:16]."""
        return sha256(_REQUEST_DOMAIN + identity.digest + self.id)[:HANDLE_SIZE]


class LeaseState(enum.IntEnum):
    """Where a lease is in its life (stored as these numbers)."""

    PENDING = 1  # written, the engine has not confirmed the upstream credential yet
    ACTIVE = 2
    REVOKING = 3  # no longer valid; the engine's revocation has not finished
    REVOKED = 4


LIVE_STATES: Final = (LeaseState.PENDING, LeaseState.ACTIVE)
OPEN_STATES: Final = (LeaseState.PENDING, LeaseState.ACTIVE, LeaseState.REVOKING)


class EndReason(enum.IntEnum):
    """Why a lease ended (stored as these numbers)."""

    REVOKED = 1  # by its agent or an operator
    EXPIRED = 2
    IDENTITY_REVOKED = 3  # the revocation feed names the identity, a delegator or a link
    ABORTED = 4  # the engine failed or the broker stopped before the lease was confirmed
    SECRET_REMOVED = 5


@quick_init  # the issue path makes one per lease
@dataclass(frozen=True, slots=True)
class Lease:
    """The broker's record of one lease (never holds the lease id nor any credential)."""

    handle: LeaseHandle
    identity: Identifier
    secret: str
    engine: str
    scope: tuple[str, ...]
    chain_hash: bytes
    authority: Identifier
    issued_at: int
    expires_at: int
    ttl: int
    max_ttl: int
    cap_at: int  # renewals never pass this: issued_at + max_ttl, the credential's expiry
    state: LeaseState
    state_at: int
    end_reason: EndReason | None
    engine_ref: str | None

    def live_at(self, now: int) -> bool:
        """Whether the lease is active and not yet expired at `now`."""
        return self.state is LeaseState.ACTIVE and now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (no lease id, no credential: the broker holds neither)."""
        return {
            "handle": str(self.handle),
            "identity": str(self.identity),
            "secret": self.secret,
            "engine": self.engine,
            "scope": list(self.scope),
            "credential": self.chain_hash.hex(),
            "authority": str(self.authority),
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "ttl": self.ttl,
            "max_ttl": self.max_ttl,
            "renewable_until": self.cap_at,
            "state": self.state.name.lower(),
            "state_at": self.state_at,
            "end_reason": None if self.end_reason is None else self.end_reason.name.lower(),
        }


class LeaseCredential:
    """What an engine hands the agent for one lease: a token, a database login, a proxy grant.
    Its values are hidden from repr; `reveal()` gives them to the caller that asked."""

    __slots__ = ("_fields", "digest_input")

    def __init__(self, fields: dict[str, str | int], digest_input: bytes) -> None:
        self._fields = dict(fields)
        self.digest_input = digest_input  # what the audit log HMACs (the token, the password)

    def reveal(self) -> dict[str, str | int]:
        """The credential's values (a copy): for the agent that asked, never for a log."""
        return dict(self._fields)

    def __repr__(self) -> str:
        return f"LeaseCredential(<{', '.join(sorted(self._fields))} hidden>)"

    __str__ = __repr__


def check_secret_name(name: str) -> str:
    """`name` if it is a valid secret name, else SecretError(BAD_REQUEST)."""
    if not 0 < len(name) <= limits.MAX_SECRET_NAME or not _NAME.fullmatch(name):
        raise SecretError(
            SecretFailure.BAD_REQUEST,
            f"a secret name is 1-{limits.MAX_SECRET_NAME} characters a-z 0-9 . _ -",
        )
    return name


def check_scope(scope: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Scopes as a sorted tuple of distinct RFC 6749 scope tokens, within the limits."""
    if len(scope) > limits.MAX_LEASE_SCOPES:
        raise SecretError(SecretFailure.BAD_REQUEST, f"at most {limits.MAX_LEASE_SCOPES} scopes")
    for item in scope:
        if (
            not isinstance(item, str)
            or len(item) > limits.MAX_ATTRIBUTE_TEXT
            or not _SCOPE.fullmatch(item)
        ):
            raise SecretError(SecretFailure.BAD_REQUEST, "a scope is a token without spaces")
    return tuple(sorted(set(scope)))
