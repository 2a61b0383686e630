"""Review 11's attacks: the newest fixes (an authority's self-supersession, members after their
authority rotates, authorities past 64 changes, the feed walk budget, trace fork checks, the
lease quota per account, node.lock and trust.reload).

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

from __future__ import annotations

import os

import pytest

from tests.test_attacks_review10 import _forged_continuation
from tests.test_resilience_enrollment import now, troth
from troth.authority.tickets import Ticket
from troth.credentials import Attributes
from troth.errors import IdentityError
from troth.identity import verify_history
from troth.node import init_node, open_node

# -- 1. a forged ticket impersonates an authority the node has not seen yet --------------------


@pytest.mark.xfail(
    strict=True,
    reason="_ticket_vouches attests any checkpoint naming the ticket's own identifier on first "
    "sight: a ticket with no key of the authority's stores the attacker's key as its current "
    "one (and the real authority's history is then refused as a rollback)",
)
def test_a_forged_ticket_cannot_claim_an_authority_the_node_has_not_seen() -> None:
    """acme has one change (nothing checkpointed: its ticket carries its history from change
    0). Before the victim ever meets acme, an attacker hands it a ticket "for acme": acme's
    identifier in a one-change checkpointed history at change 1, signed by the attacker's key
    alone, its checkpoint naming acme itself. On first sight the ticket vouches for it
    (review 10 kept that), so `troth enroll` stores it: to the victim the attacker's key is
    acme's current key (the identifier no longer binds the first change's key), and the real
    acme's history is "older than the stored copy": the victim can never enroll with acme."""
    start = now()
    init_node("acme")
    init_node("victim")
    with open_node("acme") as acme, open_node("victim") as victim:
        authority = acme.create_authority("acme", now=start)
        real = authority.identifier
        good = authority.create_ticket(
            creator=real,
            attributes=Attributes({"agents.team": "a"}),
            address="node:acme",
            now=start,
        )
        victim.identities.create(now=start, name="victim")
        assert victim.identities.stored_changes(real) is None  # never seen
    forged = _forged_continuation(real.digest, 1, os.urandom(32), start)
    evil = Ticket(os.urandom(len(good.code)), forged, "node:acme")
    troth("enroll", str(evil), "--as", "victim", "--node", "victim", code=None)
    with open_node("victim") as victim:
        with pytest.raises(IdentityError):  # the attacker's key is not acme's to this node
            verify_history(forged, now=start, checkpoints=victim.identities.attested_by_store)
    troth("enroll", str(good), "--as", "victim", "--node", "victim")  # on main: exit 1
