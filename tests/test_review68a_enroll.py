"""Review 68a, enroll: a second review of the enrollment COPY_CONFLICT design (review 67i).

1. The operator's word was not informed (medium). A ticket whose authority history conflicts
   with a copy held only on another authority's word is refused as COPY_CONFLICT, its message
   telling the operator to ask the authority's operator "whether its history is the ticket's
   (its current key: troth authority list, on its machine)" and, if so, to enroll again with
   `--over-copy`. But nothing showed the ticket's history's current key: not the message, not
   any command. In the theft of tests/test_review67e_enroll.py (a thief holding an early
   backup of acme's keys hands desk a full ticket of its fork), desk's operator asks acme's
   operator "did you send me a ticket?", hears "yes" (acme did send one; the thief's replaced
   it in transit) and says `--over-copy`: the fork replaces acme's real later history. The
   design's promise, an explicit *informed* override (docs/formats.md, "What this costs"), had
   nothing to compare. Fixed (`troth.authority.client._copy_conflict`): the message names the
   ticket's authority pin (`IDENTIFIER:KEY`, its history's current key) and tells the operator
   to enroll again with `--over-copy --authority-pin PIN`, PIN the one the authority's
   operator reads from `troth authority list`: a pin given is checked for every ticket, so a
   thief's fork, which ends with a key the authority rotated away from, is refused by it
   (tests/test_review68a_refuted.py, 1) while the authority's real ticket is taken (2). A fork
   ending with the authority's current key (stolen before its last rotation, the vault holding
   that committed key) passes the pin: its thief signs as the authority anyway until it rotates.
2. A race on the network path (low): review 67y, remote 1 refuses `--over-copy` up front
   (`enrollment.over_copy_remote`) in one worker call, and the enrollment then ran with the flag
   in the next: a conflicting copy stored between them (globex's feed synced by the running
   node meanwhile) passed the enrollment's check under the flag, a pending record was stored and
   the channel refused the hub ("history is older than the stored copy"), the record resumed
   in vain: 67y's finding again. Fixed (troth.node.membership): over the network the
   enrollment's own check runs without the flag (the channel never overrides a copy, so the flag
   can change nothing there), its COPY_CONFLICT saying why the flag cannot apply; nothing is
   recorded before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth.enrollment
from tests.support.channels import MEMBER
from tests.support.enroll import ticket_pin
from tests.support.nodes import MemNet, run_memnet
from tests.test_review30a_enrollment import acme  # noqa: F401 (the fixture)
from tests.test_review66g_enroll import enroll_alice
from tests.test_review67e_enroll import theft
from tests.test_review67y_remote import _plant_globex_copy
from tests.test_trust_scope import NOW
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.enrollment import EnrollmentSteps
from troth.errors import IdentityError, IdentityFailure
from troth.identity import verify_history
from troth.node import Node, open_node
from troth.storage import SqliteVoucherStore


def test_the_conflict_names_the_tickets_key_for_the_operator_to_confirm(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    theft(authority, node, members)
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2': key 2 too, its own next key
        stolen = thief.authority()
        ticket = stolen.create_ticket(
            creator=stolen.identifier, attributes=MEMBER, address="node:thief", now=NOW
        )

    def send(request: bytes) -> bytes:
        raise AssertionError("nothing is sent without --over-copy")

    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, None, send)
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    fork = verify_history(ticket.authority_history, now=NOW)
    told = str(refused.value)
    assert authority_pin_of(fork) in told  # what the authority's operator confirms, or not
    assert "--over-copy --authority-pin" in told
    real = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    assert real.rpartition(":")[2] not in told  # acme's real key differs: the operator sees it


def test_a_copy_stored_after_the_up_front_check_leaves_nothing_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(net: MemNet) -> None:
        desk = await net.node("desk")
        hub = net.authority.identifier
        original = troth.enrollment.request_of

        def meanwhile(steps: EnrollmentSteps) -> bytes:
            _plant_globex_copy(desk, hub)  # a feed sync's copy, after over_copy_remote passed
            return original(steps)

        monkeypatch.setattr(troth.enrollment, "request_of", meanwhile)
        with pytest.raises(IdentityError) as refused:
            ticket = net.ticket()  # with the hub's pin, read out by its operator
            await desk.enroll(
                ticket, "desk", ticket_pin(ticket, now=net.clock.now()), over_copy=True
            )
        assert refused.value.reason is IdentityFailure.COPY_CONFLICT
        assert "reached over the network" in str(refused.value)
        assert desk.node.wallet.pending_enrollments("desk") == []  # nothing to resume in vain
        assert desk.node.identities.stored_changes(hub) == 6  # globex's copy stands
        assert SqliteVoucherStore(desk.node.db).refuted() == []

    run_memnet(test, tmp_path / "home")
