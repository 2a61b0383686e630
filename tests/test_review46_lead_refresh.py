"""`troth credential refresh` and a pending enrollment that can never complete (left by review
45e, address 2): a record an earlier version stored, whose ticket does not parse or whose
address is neither `node:NAME` nor a route. The running node drops such a record at its next
round (`troth.node.membership`); the command reported it as "could not complete now ... it
stays pending", and sent it to the node each time."""

from __future__ import annotations

import json

from tests.test_resilience_enrollment import now, prepare, troth
from troth.authority import Ticket
from troth.node import open_node
from troth.storage import PendingEnrollmentRecord


def test_refresh_drops_an_enrollment_that_can_never_complete() -> None:
    """Dropped and reported (`dropped` in --json, a line on stderr), never "stays pending".
    Was a strict xfail until `credential refresh` called `drop_unusable` first."""
    setup = prepare("node:acme")
    troth("enroll", setup.ticket, "--as", "agent", "--node", "agent")
    parsed = Ticket.parse(setup.ticket)
    unusable = str(Ticket(parsed.code, parsed.authority_history, "hub:4000"))
    with open_node("acme") as acme:
        authority = acme.authority().identifier
    record = PendingEnrollmentRecord(
        setup.member.digest, authority.digest, unusable, "hub:4000", now()
    )
    with open_node("agent") as agent:
        agent.wallet.store.put_pending(record)
    said = troth("credential", "refresh", "agent", "--node", "agent").stderr
    assert "dropped: it can never complete" in said
    assert "stays pending" not in said
    with open_node("agent") as agent:
        assert agent.wallet.pending_enrollments("agent") == []
        agent.wallet.store.put_pending(record)
    refreshed = troth("credential", "refresh", "agent", "--node", "agent", "--json")
    data = json.loads(refreshed.stdout)
    assert data["pending"] == []
    assert [entry["authority"] for entry in data["dropped"]] == [str(authority)]
    assert "neither node:NAME nor a route" in data["dropped"][0]["error"]
    with open_node("agent") as agent:
        assert agent.wallet.pending_enrollments("agent") == []
