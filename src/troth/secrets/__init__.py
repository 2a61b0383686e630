"""Leased secrets: a broker that exchanges an agent's verified credential for a short-lived,
scoped secret (docs/secrets.md). The long-lived upstream secret never leaves the broker: it is
sealed by the node's vault at rest and used only by the engines."""

from troth.secrets.audit import AuditEvent, AuditHasher, AuditKind, AuditSink, SqliteAuditLog
from troth.secrets.book import Granted, LeaseBook
from troth.secrets.broker import Broker, IssuedLease, SweepReport
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.engine import Engine, Grant, SecretSpec
from troth.secrets.engines import (
    HttpInjectEngine,
    HttpRequest,
    HttpResponse,
    PostgresEngine,
    TokenEngine,
    TokenSigner,
)
from troth.secrets.jwt import Jwk, Jwks, LeaseStates, ValidatedToken, validate_token
from troth.secrets.lease import (
    EndReason,
    Lease,
    LeaseCredential,
    LeaseHandle,
    LeaseId,
    LeaseState,
    SecretValue,
)
from troth.secrets.policy import (
    AllowListPolicy,
    DenyAllPolicy,
    GatesLeasePolicy,
    LeaseDecision,
    LeasePolicy,
    LeaseQuestion,
)
from troth.secrets.store import SqliteSecretStore
from troth.secrets.toolgate import (
    LeaseSource,
    LocalLeases,
    SecretNeed,
    ToolLease,
    ToolLeases,
    needs_secret,
    secret_need,
)

__all__ = [
    "AllowListPolicy",
    "AuditEvent",
    "AuditHasher",
    "AuditKind",
    "AuditSink",
    "Broker",
    "BrokerCaller",
    "BrokerEndpoint",
    "DenyAllPolicy",
    "EndReason",
    "Engine",
    "GatesLeasePolicy",
    "Grant",
    "Granted",
    "HttpInjectEngine",
    "HttpRequest",
    "HttpResponse",
    "IssuedLease",
    "Jwk",
    "Jwks",
    "Lease",
    "LeaseBook",
    "LeaseCredential",
    "LeaseDecision",
    "LeaseHandle",
    "LeaseId",
    "LeasePolicy",
    "LeaseQuestion",
    "LeaseSource",
    "LeaseState",
    "LeaseStates",
    "LocalLeases",
    "PostgresEngine",
    "SecretNeed",
    "SecretSpec",
    "SecretValue",
    "SqliteAuditLog",
    "SqliteSecretStore",
    "SweepReport",
    "TokenEngine",
    "TokenSigner",
    "ToolLease",
    "ToolLeases",
    "ValidatedToken",
    "needs_secret",
    "secret_need",
    "validate_token",
]
