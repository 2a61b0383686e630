"""Review 68w, pin: attacks on 68l's over-copy pin requirement that did not work.

1. A pin of the authority's current key with a ticket whose history ends at a key the
   authority rotated away from (a thief's fork from a stolen early backup, handed over with the
   pin the real operator reads out): the pin is compared with the ticket's own current key, so
   `--over-copy` is refused before anything is sent or stored.
2. A pending record written by an enrollment with the flag and the pin, resumed without them
   (what a node's maintenance or `troth credential refresh` runs after a crash): the conflicting
   copy refuses it (COPY_CONFLICT), nothing replaced, the record kept for the operator.
3. The same record resumed with the flag and another identifier's pin: refused before anything
   is sent (the pin is checked against the ticket's history on resumption too).
"""

from __future__ import annotations

import pytest

from tests.support.enroll import ticket_pin
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_review68l_enroll import (
    acme_ticket,
    copy_stands,
    interrupted_over_copy,
    refused_send,
)
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.clock import FixedClock
from troth.enrollment import resume
from troth.errors import IdentityError, IdentityFailure
from troth.node import Node


def test_a_pin_of_the_current_key_does_not_take_a_ticket_ending_at_an_older_one(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    old = acme_ticket(authority)  # ends at acme's first key
    rotated = node.identities.rotate(str(authority.identifier), now=NOW + 1)
    current = authority_pin_of(rotated.identity)  # what acme's operator reads out now
    assert current != ticket_pin(old, now=NOW)
    stores_globex_copy(members, make_two(), authority.identifier)
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, old, current, refused_send, over_copy=True)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert "not the pinned one" in str(refused.value)
    copy_stands(members, authority)


def test_a_flagged_record_resumed_without_the_flag_leaves_the_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    pending = interrupted_over_copy(authority, members)
    with pytest.raises(IdentityError) as refused:
        resume(
            members.identities, members.wallet, pending, clock=FixedClock(NOW), send=refused_send
        )
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert members.wallet.pending_enrollments("alice") == [pending]
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's copy stands
    assert not members.identities.linked(authority.identifier)


def test_a_flagged_resumption_with_another_identifiers_pin_is_refused(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    pending = interrupted_over_copy(authority, members)
    other = authority_pin_of(members.identities.get("alice", now=NOW).identity)
    with pytest.raises(IdentityError) as refused:
        resume(
            members.identities,
            members.wallet,
            pending,
            clock=FixedClock(NOW),
            send=refused_send,
            over_copy=True,
            authority_pin=other,
        )
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert members.wallet.pending_enrollments("alice") == [pending]
    assert members.identities.stored_changes(authority.identifier) == 6
