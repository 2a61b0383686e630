"""Review 13's attacks: the newest fixes (a checkpointed ticket's authority key confirmed out of
band, its history stored before the handshake; a trace log's history windows and the bridge
across 64 silent rotations; listeners that cannot bind).

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_attacks_review11 import _past_64
from tests.test_resilience_enrollment import now
from troth import enrollment
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.errors import TrothError
from troth.identity.change import Checkpoint, UnverifiedHistory, encode_history
from troth.node import init_node, open_node

# -- 1. a confirmed key binds the key, not the identifier the ticket names ----------------------


@pytest.mark.xfail(
    strict=True,
    reason="check_ticket compares only the current key: a ticket re-labelling acme's real "
    "changes as another identifier passes with acme's confirmed key, and enrollment stores it",
)
def test_a_confirmed_key_does_not_let_a_ticket_name_another_identifier() -> None:
    """acme (past 64 changes) hands out checkpointed tickets; newbie's operator confirmed acme's
    current key with acme's operator. An attacker takes acme's public history (any peer sees
    it), keeps its changes and their signatures, and re-labels the checkpoint with beta's
    identifier (beta: another authority newbie has not met yet). check_ticket sees a history
    whose current key is the one confirmed and passes it; enrollment then stores it as beta's
    (accept_ticket, before anything is sent). Whatever happens to the enrollment, newbie now
    holds "beta" = acme's keys: beta's own genuine ticket is refused as a fork for good, and
    acme's key holder is taken for beta."""
    start = now()
    _, key, ticket, at = _past_64(start)
    init_node("beta")
    clock = FixedClock(at)
    with open_node("beta") as beta_node:
        beta = beta_node.create_authority("beta", now=at)
        beta_id = beta.identifier
        genuine = beta.create_ticket(
            creator=beta_id, attributes=Attributes(), address="node:beta", now=at
        )
    decoded = UnverifiedHistory.decode(ticket.authority_history)
    assert decoded.checkpoint is not None
    relabelled = encode_history(
        list(decoded.changes), Checkpoint(beta_id.digest, beta_id.digest, decoded.checkpoint.index)
    )
    forged = Ticket(ticket.code, relabelled, ticket.address)
    with open_node("acme") as acme_node, open_node("newbie") as newbie:
        authority = acme_node.authority()
        newbie.identities.create(now=at, name="newbie")

        def send(request: bytes) -> Any:
            return authority.enroll(request, now=clock.now()).encode()

        with pytest.raises(TrothError):
            enrollment.enroll(
                newbie.identities,
                newbie.wallet,
                "newbie",
                forged,
                clock=clock,
                send=send,
                authority_key=key,  # acme's, truly confirmed
            )
        assert newbie.identities.stored_changes(beta_id) is None  # on main: 71 (acme's)
    with open_node("beta") as beta_node, open_node("newbie") as newbie:
        host = beta_node.authority()
        enrolled = enrollment.enroll(
            newbie.identities,
            newbie.wallet,
            "newbie",
            genuine,
            clock=clock,
            send=lambda request: host.enroll(request, now=clock.now()).encode(),
        )
        assert enrolled.authority == beta_id
