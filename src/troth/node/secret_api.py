"""The broker's operations on a node's own store, as one library call each (the Python API's
`Node.secrets` and `troth secret ...` share them: review 61g, one implementation)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from troth.clock import Clock
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.node.node import Node
from troth.node.services.broker import _vault, open_broker
from troth.secrets import AuditSink, Broker, Jwks, Lease
from troth.secrets.wire import BROKER
from troth.trace.adapters import TraceAuditSink
from troth.trace.log import open_node_log
from troth.trace.recorder import TraceRecorder

__all__ = ["ENGINES", "broker_jwks", "revoke_holder", "trace_audit"]

ENGINES: Final = ("token", "postgres", "http-inject")
"""The engines a secret is leased through (docs/secrets.md, "Engines")."""


def broker_jwks(node: Node, *, now: int) -> Jwks:
    """The token keys of node `node`'s broker (its store: the keys a running broker signs
    with and publishes); SecretError NOT_CONFIGURED, nothing made, when the node is no broker
    (review 65n, secrets 2: its tables and a token key were made, and published)."""
    if BROKER not in node.config.services:
        raise SecretError(
            SecretFailure.NOT_CONFIGURED,
            f"node {node.name} is not a broker (storing a secret makes it one)",
        )
    broker = open_broker(node, now=now)
    try:
        return broker.jwks(now)
    finally:
        broker.close()


@contextlib.contextmanager
def trace_audit(node: Node, clock: Clock) -> Iterator[AuditSink]:
    """The audit sink of node `node`'s served broker, for a broker opened outside it: each
    event a record signed by the node's own identity into its trace log (`NodeTraces.
    audit_sink`), the log closed when the block ends."""
    log = open_node_log(node, clock=clock)
    try:
        name, identities = node.name, node.identities
        yield TraceAuditSink(
            TraceRecorder(log, lambda now: identities.signer(name, now=now), clock=clock)
        )
    finally:
        log.close()


def revoke_holder(node: Node, identity: Identifier, *, now: int, audit: AuditSink) -> list[Lease]:
    """Every lease of `identity` at node `node`'s broker revoked, and those of the chains it
    delegated, as its operator (`Broker.revoke_identity`): the leases, newest first. Each
    revocation goes to `audit`, as the served broker's do (the node's trace log: review 61j,
    api 6, `Node.secrets` left them in the database's audit table, out of the signed log where
    `troth lease revoke --holder` records them)."""
    broker = Broker(node.db, _vault(node), now=now, audit=audit)  # as `open_broker`, audited
    try:
        leases = broker.revoke_identity(identity, now=now)
    finally:
        broker.close()
    return sorted(leases, key=lambda lease: (-lease.issued_at, lease.handle.digest))
