"""The broker's audit trail: every issue, renewal, revocation, denial, expiry and use.

Records name secrets by name and leases by handle; any secret *value* (a token, a password, a
lease id) appears only as HMAC-SHA256 under the broker's audit key, a random key kept sealed by
the vault's seal key (never stored in clear). An operator holding the audit key can tell whether
a given token was issued; a reader of the log cannot recover one.

Fail closed: the broker writes the record inside the transaction of the operation it records, so
if the sink raises, the operation does not happen (docs/secrets.md, "Audit").
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from typing import Any, Final, Protocol

from troth.identity import Identifier
from troth.secrets.lease import LeaseHandle
from troth.secrets.store import sql_blob
from troth.storage import SqliteDatabase
from troth.storage.planted import AUDIT_TABLE, AUDIT_TRIGGERS

__all__ = ["AuditEvent", "AuditHasher", "AuditKind", "AuditSink", "SqliteAuditLog"]

_HMAC_DOMAIN: Final = b"troth.secrets.audit/1\x00"


class AuditKind(enum.Enum):
    """What an audit record records."""

    ISSUE = "issue"
    RENEW = "renew"
    REVOKE = "revoke"
    DENY = "deny"
    EXPIRE = "expire"
    USE = "use"  # a request forwarded under an http-inject lease
    REVOKED = "revoked"  # the engine finished a revocation (or swept an orphan)
    PUT = "put"  # an upstream secret stored or replaced
    REMOVE = "remove"


UNCREDENTIALED: Final = Identifier(bytes(32))
"""The member a record counts for when its caller presented no valid credential (a served
revoke by a bare identity, a gate's decision on a refused credential): all such callers share
one share of a node's trace outbox, within the members' bound (TRACE_OUTBOX_SOURCE_PERCENT)."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One record; `digest` is an HMAC of a secret value, never the value."""

    at: int
    kind: AuditKind
    identity: Identifier | None
    secret: str | None
    lease: LeaseHandle | None
    detail: str
    digest: bytes | None = None
    member: Identifier | None = None
    """The member whose request made the event (the chain's first subject: `lease_account`),
    for a per-member bound of the trace (TRACE_OUTBOX_SOURCE_PERCENT); None for what the broker
    does on its own (expiry, revocation, sweeps). Not part of the record."""

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind.value,
            "identity": None if self.identity is None else str(self.identity),
            "secret": self.secret,
            "lease": None if self.lease is None else str(self.lease),
            "detail": self.detail,
            "digest": None if self.digest is None else self.digest.hex(),
        }


class AuditSink(Protocol):
    """Where audit records go (the traces log replaces the table). `append` raises on failure,
    and the broker then fails the operation."""

    def append(self, event: AuditEvent) -> None: ...


class AuditHasher:
    """HMAC-SHA256 (RFC 2104) of secret values under the audit key: HMAC(key, domain || value)."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, _HMAC_DOMAIN, "sha256")  # keyed once, domain absorbed

    def digest(self, value: bytes) -> bytes:
        mac = self._keyed.copy()  # a copy of the keyed state (hmac.digest re-keys per call)
        mac.update(value)
        return mac.digest()

    def __repr__(self) -> str:
        return "AuditHasher(<key hidden>)"


_KIND_TEXT: Final = {kind: kind.value for kind in AuditKind}  # (an enum's .value is slow)
_SCHEMA: Final = ";\n".join((AUDIT_TABLE, *AUDIT_TRIGGERS))  # its triggers: troth.storage.planted


class SqliteAuditLog:
    """The append-only audit table `secret_audit` in the node's database (triggers refuse
    UPDATE and DELETE)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        conn = db.connection()
        with db.transaction():
            for statement in _SCHEMA.split(";\n"):
                conn.execute(statement)

    def append(self, event: AuditEvent) -> None:
        self._db.run(
            "INSERT INTO secret_audit (at, kind, identity, secret, lease, detail, digest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.at,
                event.kind._value_,  # the text, without `Enum.__hash__` (a Python frame)
                None if event.identity is None else sql_blob(event.identity.digest),
                event.secret,
                None if event.lease is None else sql_blob(event.lease.digest),
                event.detail,
                None if event.digest is None else sql_blob(event.digest),
            ),
        )

    def read(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, AuditEvent]]:
        """Records with seq > `after`, oldest first, at most `limit`."""
        rows = self._db.fetch_all(
            "SELECT seq, at, kind, identity, secret, lease, detail, digest FROM secret_audit "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [
            (
                row[0],
                AuditEvent(
                    row[1],
                    AuditKind(row[2]),
                    None if row[3] is None else Identifier(bytes(row[3])),
                    row[4],
                    None if row[5] is None else LeaseHandle(bytes(row[5])),
                    row[6],
                    None if row[7] is None else bytes(row[7]),
                ),
            )
            for row in rows
        ]
