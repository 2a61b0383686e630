"""Review 66d2: attacks on 66t's "tied" (a pinned checkpointed ticket over a copy only a
checkpoint ties) that did not work.

Desk (the members' node) stores globex's made-up copy of acme from a checkpoint (not linked);
acme rotated once and hands out a checkpointed ticket (tests/test_review66g_enroll.py).

1. "tied" does not leak to an unpinned caller: the ticket's request built without the pin
   (`enroll_request`, `pinned` left out, as any caller outside `enrollment`) is refused over
   the copy, and so is `check_history` without `linked`;
2. acme's real checkpointed history presented outside an enrollment (`import_history` without
   `linked`, as a feed or a channel's handshake presents it) does not replace the copy;
3. an enrollment started without the pin over the copy records nothing, so there is no pending
   record a resumption (which judges its ticket as tied) could take over.
"""

from __future__ import annotations

import pytest

from tests.test_review30a_enrollment import acme  # noqa: F401 (the fixture)
from tests.test_review66g_enroll import enroll_alice, pinned_over_globex_copy
from tests.test_trust_scope import NOW
from troth.authority import Authority
from troth.authority.client import enroll_request, ticket_vouches
from troth.enrollment import _ticket_binds
from troth.errors import IdentityError, IdentityFailure
from troth.node import Node


def _copy_stands(members: Node, authority: Authority) -> None:
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's copy
    assert not members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []


def test_an_unpinned_request_or_check_is_refused_over_the_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    _, ticket, _ = pinned_over_globex_copy(authority, node, members)
    binds = _ticket_binds(members.wallet)
    with pytest.raises(IdentityError) as refused:
        enroll_request(members.identities, "alice", ticket, now=NOW, binds=binds)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    with pytest.raises(IdentityError):
        members.identities.check_history(
            ticket.authority_history, now=NOW, checkpoints=ticket_vouches, binds=binds
        )
    _copy_stands(members, authority)


def test_the_real_history_outside_an_enrollment_leaves_the_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    _, ticket, _ = pinned_over_globex_copy(authority, node, members)
    binds = _ticket_binds(members.wallet)
    with pytest.raises(IdentityError):
        members.identities.import_history(
            ticket.authority_history, now=NOW, checkpoints=ticket_vouches, binds=binds
        )
    _copy_stands(members, authority)


def test_an_unpinned_enrollment_over_the_copy_leaves_nothing_to_resume(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    _, ticket, _ = pinned_over_globex_copy(authority, node, members)

    def send(request: bytes) -> bytes:
        raise AssertionError("no request is sent without the pin")

    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, None, send)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    _copy_stands(members, authority)
