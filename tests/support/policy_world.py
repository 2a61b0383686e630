"""For tests of `Node.policies`: acme's hub and the agents node (tests.support.public_api)
both holding revision 1 of the support-desk policies (tests.support.gates), with `writer` on
the agents node holding read and write."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.support.gates import POLICIES, export_customers, lookup_order, refund
from tests.support.public_api import Agents, acme_and_agents

WRITE = {"orders.access": ["read", "write"]}
TOOLS = {f.__name__: f for f in (lookup_order, refund, export_customers)}


@contextlib.contextmanager
def writer_world() -> Iterator[Agents]:
    """acme's hub with revision 1 of POLICIES, agents holding it too; `writer` holding read
    and write (`support`, read only; `sub`, nothing)."""
    with acme_and_agents() as made:
        made.agents.identities.create("writer")
        made.agents.enroll(made.acme.ticket(WRITE), identity="writer")
        data = made.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
        made.hub.policies.install(data)
        made.agents.policies.install(data)
        yield made
