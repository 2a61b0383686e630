"""Review 66g, enroll 1: a copy of an authority from another authority's checkpoint refused the
authority's own checkpointed ticket even with its pin confirmed.

Desk (the members' node) stores globex's made-up copy of acme, after a gap (review 30a,
enrollment 5 stores it so: globex connected as acme; a checkpoint's word, not linked). Acme is
past its first change, so its tickets give its history from a checkpoint of its own
(`checkpointed_ticket`: every ticket of an authority past 64 changes). Desk's operator asks
acme's operator for its pin (`IDENTIFIER:KEY`, the out-of-band word review 30a, enrollment 7
made the way to tie such a history) and enrolls alice with acme's real ticket and that pin:
refused, `checkpointed history not attested ... present the full history or trust acme`,
before the pin was even looked at (`check_ticket` verified the history against the stored copy
first; only a first sight took the ticket's word on its checkpoint). Desk could not enroll with
acme while globex's copy stood.

Reopened by review 67e, enroll 1: the pin does not say it is current, and a thief's fork ending
with a key acme rotated away from, under acme's real later history held only from globex's
checkpoint, looks to desk exactly as acme's real ticket under globex's made-up copy
(tests/test_review67e_enroll.py). Settled by review 67i, enroll (the lead's decision, as ssh's
known_hosts conflict: deny when in doubt, an explicit informed override): such a ticket is
refused as COPY_CONFLICT, naming globex (the copy's attester) and the change where they
disagree, and nothing is stored (no pending record, no refutation); the operator, having
asked acme's operator, enrolls again with `--over-copy` (`enroll(over_copy=True)`, given for
that enrollment only, never recorded: a resumption needs it again while the copy stands), and
acme's history replaces globex's copy, linked (the pin ties it), its changes recorded refuted.
Before 67e, review 66t had made the pin alone tie the ticket's history over a copy that is only
a checkpoint's word (`check_ticket`, `enroll_request`, `accept_ticket` after the answer,
`IdentityService.check_history(linked=)`, `KnownHistories` `_unbound`): the pin names the
identifier and the current key, so a history ending with the pinned key was made by that key's
holder (globex's copy ends with globex's key, a stale backup of acme's keys with an older one:
both refused, tests/test_review66t_refuted.py); a copy that holds one of the ticket's changes
or follows its last one is acme's continuation (the pin is stale) and binds it, flag or not,
as does a copy acme's own word attests (`binds`) and a copy this node linked.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.test_review23a_checkpoints import Forged
from tests.test_review30a_enrollment import (  # noqa: F401 (the fixture)
    acme,
    checkpointed_ticket,
    stores_globex_copy,
)
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of, ticket_vouches
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.enrollment import Enrolled, enroll, resume
from troth.errors import IdentityError, IdentityFailure, RemoteError
from troth.identity import Checkpoint, Identifier, UnverifiedHistory, encode_history
from troth.node import Node
from troth.storage import SqliteVoucherStore


def pinned_over_globex_copy(
    authority: Authority, node: Node, members: Node
) -> tuple[str, Ticket, Forged]:
    """Desk (`members`) stores globex's copy of acme; acme rotates once: its pin, a
    checkpointed ticket of it, and globex's copy."""
    forged = stores_globex_copy(members, make_two(), authority.identifier)
    node.identities.rotate("acme", now=NOW)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    return pin, checkpointed_ticket(authority, node), forged


def enroll_alice(
    members: Node,
    ticket: Ticket,
    pin: str | None,
    send: Callable[[bytes], bytes],
    *,
    over_copy: bool = False,
) -> Enrolled:
    """Enroll alice at desk with `ticket` and `pin` (and the operator's `over_copy`)."""
    clock = FixedClock(NOW)
    identities, wallet = members.identities, members.wallet
    return enroll(
        identities,
        wallet,
        "alice",
        ticket,
        clock=clock,
        send=send,
        authority_pin=pin,
        over_copy=over_copy,
    )


def refused_as_conflict(
    members: Node, authority: Authority, ticket: Ticket, pin: str | None, forged: Forged
) -> None:
    """Without the operator's word the ticket is refused as COPY_CONFLICT naming globex and
    the change where they disagree, before any request is sent; nothing is stored."""

    def send(request: bytes) -> bytes:
        raise AssertionError("no request is sent without --over-copy")

    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, pin, send)
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert refused.value.change == 5  # globex's made-up change, after the ticket's last (1)
    checkpoint = UnverifiedHistory.decode(forged.identity.history).checkpoint
    assert checkpoint is not None
    assert str(Identifier(checkpoint.authority)) in str(refused.value)  # globex, named
    assert "--over-copy" in str(refused.value)
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's copy stands
    assert not members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []
    assert SqliteVoucherStore(members.db).refuted() == []


def test_a_pinned_checkpointed_ticket_enrolls_over_another_authoritys_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    pin, ticket, forged = pinned_over_globex_copy(authority, node, members)
    refused_as_conflict(members, authority, ticket, pin, forged)

    def send(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    done = enroll_alice(members, ticket, pin, send, over_copy=True)
    assert done.authority == authority.identifier
    assert members.identities.linked(authority.identifier)  # acme's own, tied by the pin
    assert members.identities.stored_changes(authority.identifier) == 2  # globex's replaced
    assert [i for i, _, _ in SqliteVoucherStore(members.db).refuted()] == [
        authority.identifier.digest
    ]
    members.identities.create(now=NOW, name="bob")  # the next ticket needs no pin
    again = checkpointed_ticket(authority, node)
    bob = enroll(members.identities, members.wallet, "bob", again, clock=FixedClock(NOW), send=send)
    assert bob.authority == authority.identifier


def test_a_pinned_enrollment_over_the_copy_is_resumed_with_the_operators_word_again(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    """An answer lost (the connection dropped): the node resumes from the pending record,
    which keeps neither the pin (the ticket it holds was tied when it was recorded) nor the
    operator's word: while globex's copy stands, a resumption without it is refused."""
    authority, node, members = acme
    pin, ticket, forged = pinned_over_globex_copy(authority, node, members)
    refused_as_conflict(members, authority, ticket, pin, forged)

    def lost(request: bytes) -> bytes:
        authority.enroll(request, now=NOW)  # redeemed; the answer never arrives
        raise RemoteError("connection closed")

    with pytest.raises(RemoteError):
        enroll_alice(members, ticket, pin, lost, over_copy=True)
    assert members.identities.stored_changes(authority.identifier) == 6  # nothing answered
    (pending,) = members.wallet.pending_enrollments("alice")

    def send(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    clock = FixedClock(NOW)
    with pytest.raises(IdentityError) as refused:  # the flag is never remembered
        resume(members.identities, members.wallet, pending, clock=clock, send=send)
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert members.identities.stored_changes(authority.identifier) == 6
    identities, wallet = members.identities, members.wallet
    done = resume(
        identities, wallet, pending, clock=clock, send=send, over_copy=True, authority_pin=pin
    )
    assert done.authority == authority.identifier
    assert members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []


def test_a_stale_pin_over_the_authoritys_continuation_is_refused(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    """A ticket and a pin written down before acme rotated (or a thief's stale backup with
    that old pin), over an unlinked copy of acme's real next change (a checkpoint's word): the
    copy follows the ticket's last change, so it binds it (the pin is stale)."""
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)
    stale_pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    stale = checkpointed_ticket(authority, node)
    node.identities.rotate("acme", now=NOW)
    digest = authority.identifier.digest
    changes = UnverifiedHistory.decode(authority.history()).changes[2:]
    window = encode_history(changes, Checkpoint(digest, digest, 2))
    members.identities.import_history(window, now=NOW, checkpoints=ticket_vouches)
    assert not members.identities.linked(authority.identifier)

    def send(request: bytes) -> bytes:
        raise AssertionError("no request is sent for a stale ticket")

    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, stale, stale_pin, send)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert members.identities.stored_changes(authority.identifier) == 3  # the copy stands
    assert members.wallet.pending_enrollments("alice") == []
