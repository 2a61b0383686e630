"""Review 22c (traces): the per-member share of the trace outbox (TRACE_OUTBOX_SOURCE_PERCENT,
af507bd) counts a gate decision under `record.credential.actor` — the last subject of the
chain presented. A member may delegate (`delegate`, no authority involved) to as many fresh
identities as it likes; each is another "member" with a share of its own. With the trace
service out of reach, one member and four delegates of its own each filling 25% fill the
whole outbox with allowed decisions, and every other member's call is refused again: the
finding the share was made for (one member's allowed operations leave every other member's
audited operation refused), back by delegation.

The test asserts the correct behaviour and is a strict xfail until its fix (count a record
under the chain's first subject — the member the authority credentialed — not the actor:
troth/trace/adapters.py TraceDecisionRecorder.record, and the broker's audit
`event.identity`, TraceAuditSink.append).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import SUPPORT, T, make_world
from tests.support.parties import make_party
from tests.test_trace_wiring import NOW, gate_for
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, delegate, issue_credential
from troth.errors import TraceError, Unreachable
from troth.node.services.trace import TraceClient
from troth.storage import SqliteDatabase
from troth.trace.adapters import TraceDecisionRecorder
from troth.trace.outbox import TraceOutbox


@pytest.mark.xfail(
    strict=True,
    reason="review 22c traces 1: a gate decision counts under the chain's actor, so a member's "
    "own delegates each get a TRACE_OUTBOX_SOURCE_PERCENT share and together fill the outbox",
)
def test_a_members_delegates_cannot_fill_the_outbox_for_it(tmp_path: Path) -> None:
    """The node's gate records every decision in its outbox (20 records; share: 5); the trace
    service is out of reach. Member `support` delegates read access to four fresh keys and
    each (and support itself) makes allowed calls until refused. Another member, credentialed
    by the same authority, must still have its allowed call recorded and allowed."""
    world = make_world()
    node = make_party(world.vault, now=T)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, node.identifier, lambda now: node.signer, max_records=20)

    async def unreachable(method: str, arguments: Any) -> Any:
        raise Unreachable("the trace service is out of reach")

    client = TraceClient(unreachable, outbox, clock=FixedClock(NOW))
    gate = gate_for(world, TraceDecisionRecorder(client))
    support = world.credential(world.support_chain, world.support)
    callers = [support]
    for _ in range(4):
        fresh = make_party(world.vault, now=T)
        chain = delegate(
            world.support.signer,
            CredentialChain.decode(world.support_chain),
            subject=fresh.identifier,
            attributes=Attributes({"orders.access": "read"}),
            now=T,
            ttl=86_400,
            purpose="look up orders",
        )
        callers.append(world.credential(chain.encode(), fresh))
    allowed = 0
    for caller in callers:
        for _ in range(5):
            try:
                allowed += gate.invoke(caller, "lookup_order", {"order_id": "o1"}).allowed
            except TraceError:
                break
    assert allowed == 20  # every record so far an allowed decision, 5 per identity
    other = make_party(world.vault, now=T)
    credential = issue_credential(
        world.authority.signer,
        subject=other.identifier,
        attributes=SUPPORT,
        now=T,
        ttl=86_400,
        depth=3,
    )
    other_chain = CredentialChain((credential,), (world.authority.identity.history,))
    member = world.credential(other_chain.encode(), other)
    try:
        assert gate.invoke(member, "lookup_order", {"order_id": "o2"}).allowed
    finally:
        db.close()
