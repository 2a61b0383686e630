"""What the lease book writes to its audit sink (docs/secrets.md, "Audit"): the record of each
lease transition, written inside the transaction that makes it (fail closed: no record, no
operation); the refusals, within the denial budget (troth.secrets.denials); and the fallback
that keeps the records of the revocations the broker and its node make when the sink refuses
them. `LeaseBook` (troth.secrets.book) is a `BookAudit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets.audit import AuditEvent, AuditHasher, AuditKind, AuditSink
from troth.secrets.denials import DenialBudget, Unrecorded
from troth.secrets.lease import Lease, LeaseHandle
from troth.secrets.store import SqliteSecretStore

__all__ = ["BookAudit"]

_F = SecretFailure
_DENIALS: Final = frozenset(
    {
        _F.DENIED,
        _F.QUOTA_EXCEEDED,
        _F.REVOKED,
        _F.EXPIRED,
        _F.BAD_REQUEST,
        _F.NO_SUCH_LEASE,
        _F.NOT_CONFIGURED,
        _F.FORBIDDEN_REQUEST,
    }
)
"""The refusals the book audits (`_deny`); others are not recorded."""


class BookAudit:
    """The audit half of a lease book: its sink, the fallback, the hasher of secret values and
    the denial budget, over the book's store (a refusal is audited in its own transaction)."""

    def __init__(
        self,
        store: SqliteSecretStore,
        audit: AuditSink,
        hasher: AuditHasher,
        fallback: AuditSink | None,
    ) -> None:
        """`fallback` keeps the records of the revocations the broker and its node make when
        `audit` refuses them (`_append`); None: such a refusal fails them too."""
        self._store = store
        self._audit = audit
        self._fallback = fallback
        self._hasher = hasher
        self._denials = DenialBudget()

    def audit_other(
        self,
        kind: AuditKind,
        now: int,
        *,
        secret: str | None,
        detail: str,
        identity: Identifier | None = None,
        lease: LeaseHandle | None = None,
        value: bytes | None = None,
        member: Identifier | None = None,
        ending: bool = False,
    ) -> None:
        """Record an event that is not a lease transition (a secret stored, a request
        forwarded for `member`, an orphan swept: `ending`, see `_append`), in the caller's
        transaction if it has one."""
        digest = None if value is None else self._hasher.digest(value)
        self._append(
            AuditEvent(now, kind, identity, secret, lease, detail, digest, member), ending=ending
        )

    def _record(
        self,
        kind: AuditKind,
        now: int,
        lease: Lease,
        detail: str,
        value: bytes | None = None,
        *,
        member: Identifier | None = None,
        ending: bool = False,
    ) -> None:
        digest = None if value is None else self._hasher.digest(value)
        self._append(
            AuditEvent(
                now, kind, lease.identity, lease.secret, lease.handle, detail, digest, member
            ),
            ending=ending,
        )

    def _append(self, event: AuditEvent, *, ending: bool = False) -> None:
        """Append `event` to the sink; SecretError AUDIT_FAILED when it raises (fail closed:
        no audit record, no operation). Except for an `ending` event, the record of a
        revocation the broker or its node makes (the feed, an expiry, an operator, an abort,
        the engine's revocation finished, an orphan removed): when the sink refuses it, the
        fallback keeps it (the node's `secret_audit` table, in the same transaction) and the
        revocation goes on. A sink that cannot take records (a full trace outbox) must not
        keep a revoked agent's leases alive (review 34g, secrets 1; docs/secrets.md,
        "Audit")."""
        try:
            self._audit.append(event)
            return
        except Exception as exc:
            if not ending or self._fallback is None:
                raise SecretError(_F.AUDIT_FAILED, type(exc).__name__) from None
        try:
            self._fallback.append(event)
        except Exception as exc:
            raise SecretError(_F.AUDIT_FAILED, type(exc).__name__) from None

    def _deny(
        self,
        exc: SecretError,
        now: int,
        identity: Identifier,
        secret: str | None,
        lease: LeaseHandle | None,
        account: Identifier | None = None,
    ) -> None:
        """Audit a refusal in its own transaction (the refused one rolled back), counted for
        `account` (the member the caller's chain names; else the caller)."""
        write = self.admit_denial(exc, now, identity, secret, lease, account)
        if write is not None:
            write()

    def admit_denial(
        self,
        exc: SecretError,
        now: int,
        identity: Identifier,
        secret: str | None,
        lease: LeaseHandle | None,
        account: Identifier | None = None,
    ) -> Callable[[], None] | None:
        """`_deny` in two halves: whether the refusal is recorded, decided now within the denial
        budget (no I/O: any thread may ask), and the write of its record and of the summaries
        due, to call where the book's database is written (None: nothing to write). The node
        answers a refusal before the broker's thread is free and writes its record there
        (review 61e, secrets 1)."""
        if exc.reason not in _DENIALS:
            return None
        member = identity if account is None else account
        # at most so many a caller and an account per window (review 45b, denials 4)
        record, summaries = self._denials.admit(identity, member, now)
        if not record and not summaries:
            return None
        event = AuditEvent(now, AuditKind.DENY, identity, secret, lease, str(exc), None, member)

        def write() -> None:
            with self._store.transaction():
                self._write_unrecorded(summaries, now)
                if record:
                    self._append(event)

        return write

    deny = _deny
    """Audit a refusal made outside the book (a forward the secret's rules forbid) as the
    book's own are: within the denial budget (troth.secrets.denials; review 45k, secrets 1:
    they were written one record each)."""

    def flush_denials(self, now: int) -> int:
        """Write the summaries of the refusals not recorded in windows that ended by `now`
        (troth.secrets.denials); returns how many."""
        summaries = self._denials.due(now)
        if summaries:
            with self._store.transaction():
                self._write_unrecorded(summaries, now)
        return len(summaries)

    def _write_unrecorded(self, summaries: list[Unrecorded], now: int) -> None:
        for summary in summaries:
            self._append(
                AuditEvent(
                    now,
                    AuditKind.DENY,
                    None,
                    None,
                    None,
                    summary.detail(),
                    None,
                    summary.account,
                )
            )
