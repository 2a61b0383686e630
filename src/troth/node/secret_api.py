"""The broker's operations on a node's own store, as one library call each (the Python API's
`Node.secrets` and `troth secret ...` share them: review 61g, one implementation)."""

from __future__ import annotations

from typing import Final

from troth.identity import Identifier
from troth.node.node import Node
from troth.node.services.broker import open_broker
from troth.secrets import Jwks, Lease

__all__ = ["ENGINES", "broker_jwks", "revoke_holder"]

ENGINES: Final = ("token", "postgres", "http-inject")
"""The engines a secret is leased through (docs/secrets.md, "Engines")."""


def broker_jwks(node: Node, *, now: int) -> Jwks:
    """The token keys of node `node`'s broker (its store: the keys a running broker signs
    with and publishes)."""
    broker = open_broker(node, now=now)
    try:
        return broker.jwks(now)
    finally:
        broker.close()


def revoke_holder(node: Node, identity: Identifier, *, now: int) -> list[Lease]:
    """Every lease of `identity` at node `node`'s broker revoked, and those of the chains it
    delegated, as its operator (`Broker.revoke_identity`): the leases, newest first."""
    broker = open_broker(node, now=now)
    try:
        leases = broker.revoke_identity(identity, now=now)
    finally:
        broker.close()
    return sorted(leases, key=lambda lease: (-lease.issued_at, lease.handle.digest))
