"""For tests of the public API: a service of one method open to any authenticated caller
(`greet.hi` answers "hi"), and acme's hub with an agents node whose `support` holds a member
credential (`orders.access: read`) and whose `sub` holds nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import troth

READ = {"orders.access": "read"}

greet = troth.Service("greet")


@greet.method("hi", allow=troth.AnyAuthenticated())
async def hi(request: troth.Request) -> str:
    """Answers "hi" to anyone."""
    return "hi"


@dataclass
class Agents:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    support: troth.Identity
    sub: troth.Identity
    member: troth.Credential


@contextlib.contextmanager
def acme_and_agents() -> Iterator[Agents]:
    """The two nodes in $TROTH_HOME, closed when the block ends."""
    with troth.Node.open("acme") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        support = agents.identities.create("support")
        sub = agents.identities.create("sub")
        member = agents.enroll(acme.ticket(READ), identity=support)
        yield Agents(hub, agents, acme, support, sub, member)
