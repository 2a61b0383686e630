"""Review 68w, pin: what an enrollment says became of the authority's copy.

1. An enrollment the authority rotated after (low: a misleading message on a real path).
   A ticket made before its authority rotated is still that authority's (review 57e, rotation
   1: the channel to the authority shows the rotation, the node stores it, and the enrollment,
   or its resumption after a crash, completes). But once the authority answered, storing the
   ticket's history (`_take_history`) was refused as a ROLLBACK (an older prefix of the copy
   held) and every refusal was read as a conflict: the enrollment said `authority_copy`
   `stands`, and `troth enroll` printed "NOT replaced: a conflicting copy of the authority's
   history stands", with or without `--over-copy`, though nothing conflicted (docs/formats.md:
   `agreed`, the ticket's history agreed with the copy held). Fixed
   (`troth.authority.client.copy_holds_ticket`): a history the copy held extends is `agreed`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.test_review30a_enrollment import acme  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_review68l_enroll import acme_ticket
from tests.test_trust_scope import NOW
from troth.authority import Authority
from troth.clock import FixedClock
from troth.enrollment import AuthorityCopy, resume
from troth.node import Node


def rotated_and_seen(authority: Authority, node: Node, members: Node) -> None:
    """Acme rotates; the members' node stores its rotated history (what the channel to acme
    shows it: review 57e, rotation 1)."""
    node.identities.rotate(str(authority.identifier), now=NOW + 1)
    stored = node.identities.store.get_history(authority.identifier.digest)
    assert stored is not None
    members.identities.import_history(stored[0], now=NOW + 2)
    assert members.identities.stored_changes(authority.identifier) == 2


def answer(authority: Authority) -> Callable[[bytes], bytes]:
    """Acme's answer, once it rotated."""
    return lambda request: authority.enroll(request, now=NOW + 3).encode()


def test_an_enrollment_its_authority_rotated_before_agreed(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    ticket = acme_ticket(authority)
    rotated_and_seen(authority, node, members)
    done = enroll_alice(members, ticket, None, answer(authority))
    assert done.authority_copy is AuthorityCopy.AGREED  # was STANDS: nothing conflicted
    assert done.to_json()["authority_copy"] == "agreed"
    assert members.identities.stored_changes(authority.identifier) == 2  # the newer copy held


def test_a_resumption_its_authority_rotated_before_agreed(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    ticket = acme_ticket(authority)

    def lost(request: bytes) -> bytes:
        authority.enroll(request, now=NOW)  # redeemed; the answer never arrives
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        enroll_alice(members, ticket, None, lost)
    (pending,) = members.wallet.pending_enrollments("alice")
    rotated_and_seen(authority, node, members)
    done = resume(
        members.identities,
        members.wallet,
        pending,
        clock=FixedClock(NOW + 3),
        send=answer(authority),
    )
    assert done.authority_copy is AuthorityCopy.AGREED  # was STANDS
    assert members.wallet.pending_enrollments("alice") == []
