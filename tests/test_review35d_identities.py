"""Review 35d, identities: an `Identity` argument names one identity, by its identifier."""

from __future__ import annotations

import pytest

import troth
from troth.clock import FixedClock


def test_another_nodes_identity_is_not_taken_for_the_local_one_of_the_same_name(
    clock: FixedClock,
) -> None:
    """Identities 1: every argument that takes a local identity takes the `Identity` itself,
    which carries its identifier, but the API looked it up by its name: given another node's
    "worker", `enroll` had acme issue the ticket's attributes to this node's "worker" (a
    credential the caller never asked it to hold), `identities.get` answered with an identity
    of another identifier, and `rotate` (or `delegate`, `hold`, `revoke`) acted as it. An
    `Identity` that is not one of the node's is NotFound, and nothing is issued. Was a strict
    xfail until the API found an `Identity` by its identifier."""
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
        troth.Node.open("other", clock=clock) as other,
    ):
        acme = hub.create_authority()
        mine = agents.identities.create("worker")
        theirs = other.identities.create("worker")
        ticket = acme.ticket({"orders.access": "admin"})
        with pytest.raises(troth.NotFound, match=str(theirs.identifier)):
            agents.enroll(ticket, identity=theirs)
        with pytest.raises(troth.NotFound, match=str(theirs.identifier)):
            agents.identities.get(theirs)
        with pytest.raises(troth.NotFound, match=str(theirs.identifier)):
            agents.identities.rotate(theirs)
        assert agents.credentials(mine) == []
        assert agents.identities.get(mine) == mine  # the node's own, by object: as before
        assert agents.enroll(ticket, identity=mine).holder == mine.identifier
