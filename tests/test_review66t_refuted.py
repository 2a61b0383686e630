"""Review 66t: attacks on a pinned enrollment over another authority's copy that did not work.

Desk (the members' node) stores globex's made-up copy of acme from a checkpoint (review 30a,
enrollment 5: not linked). 66g, enroll 1 asks that acme's pin (`IDENTIFIER:KEY`, confirmed out
of band) let acme's real checkpointed ticket through over that copy. Whatever that fix does,
these must stay refused, the copy standing and nothing recorded:

1. a stale backup of acme's keys (its history ending with a key acme rotated away from) with
   acme's current pin: the pin names the current key;
2. globex's made-up history of acme handed over as acme's ticket, with acme's pin: it ends
   with globex's key;
3. acme's real ticket with a pin naming another identifier (globex's key and identifier: a
   pin the operator got from the wrong party);
4. acme's real checkpointed ticket with its pin, answered by no one (the address never
   answers, or the code is not acme's): the copy stands (since review 67i, enroll, the
   pinned ticket is refused over it as COPY_CONFLICT before any request is sent, and with the
   operator's `over_copy` the copy is replaced only once acme answered).
"""

from __future__ import annotations

import pytest

from tests.test_review30a_enrollment import (  # noqa: F401 (the fixture)
    acme,
    checkpointed_ticket,
    stores_globex_copy,
)
from tests.test_review66g_enroll import enroll_alice, pinned_over_globex_copy
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.authority.tickets import Ticket
from troth.errors import AuthorityError, AuthorityFailure, IdentityError, IdentityFailure
from troth.node import Node
from troth.storage import SqliteVoucherStore


def _refused(members: Node, ticket: Ticket, pin: str) -> IdentityError:
    """Enroll alice with `ticket` and `pin`: the refusal (no request may be sent)."""

    def send(request: bytes) -> bytes:
        raise AssertionError("no request is sent for a ticket the pin does not confirm")

    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, pin, send)
    return refused.value


def _copy_stands(members: Node, authority: Authority) -> None:
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's copy
    assert not members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []
    assert SqliteVoucherStore(members.db).refuted() == []


def test_a_stale_key_backup_with_the_current_pin_is_refused_over_the_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    node.identities.rotate("acme", now=NOW)
    stale = checkpointed_ticket(authority, node)  # acme's history ending at change 1
    node.identities.rotate("acme", now=NOW)  # acme moved on (its key 1 stolen, say)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    refusal = _refused(members, stale, pin)
    assert refusal.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    _copy_stands(members, authority)


def test_globexs_made_up_history_as_acmes_ticket_is_refused_with_acmes_pin(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    pin, real, forged = pinned_over_globex_copy(authority, node, members)
    ticket = Ticket(real.code, forged.identity.history, real.address)  # globex's copy
    refusal = _refused(members, ticket, pin)
    assert refusal.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert "not the pinned one" in str(refusal)
    _copy_stands(members, authority)


def test_a_pin_of_another_identifier_is_refused_over_the_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    two = make_two()
    stores_globex_copy(members, two, authority.identifier)
    node.identities.rotate("acme", now=NOW)
    ticket = checkpointed_ticket(authority, node)
    pin = authority_pin_of(two.globex.identity)  # globex's own, as if its operator answered
    refusal = _refused(members, ticket, pin)
    assert refusal.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    _copy_stands(members, authority)


def test_a_pinned_ticket_no_one_answers_leaves_the_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    pin, ticket, _ = pinned_over_globex_copy(authority, node, members)

    def send(request: bytes) -> bytes:
        raise AuthorityError(AuthorityFailure.TICKET_UNKNOWN, "ticket unknown")

    # review 67i, enroll: refused before any request without the operator's word; with it,
    # sent, and acme's refusal leaves globex's copy
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, pin, send)
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    with pytest.raises(AuthorityError):
        enroll_alice(members, ticket, pin, send, over_copy=True)
    _copy_stands(members, authority)
