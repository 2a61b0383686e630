"""A delegated link to revoke, shared by the revocation reviews (47s, 48c, 48p)."""

from __future__ import annotations

import troth


def delegated_to_sub(
    acme: troth.Authority, agents: troth.Node, sub: troth.Node, *, at: str | None = None
) -> troth.Credential:
    """`agents` enrolled with acme (tickets `at` the given address), `sub` holding a chain
    `agents` delegated to it, and a member credential of its own under `other` (so that sub
    trusts acme; its own identity shows the chain): the chain."""
    agents.enroll(acme.ticket({"orders.access": "read"}, at=at))
    chain = agents.delegate(
        agents.identity,
        to=sub.identity,
        attributes={"orders.access": "read"},
        ttl=600,
        purpose="p",
    )
    sub.hold(sub.identity, chain)
    sub.identities.create("other")
    sub.enroll(acme.ticket({"orders.access": "none"}, at=at), identity="other")
    return chain
