"""Review 68a: attacks on the enrollment COPY_CONFLICT design (review 67i) that did not work.

1. A stolen early backup with the flag and the pin the new message asks for (review 68a,
   enroll 1): the thief's full fork under acme's real later history (globex's checkpoint),
   `--over-copy --authority-pin` with acme's current pin: refused by the pin before anything
   is sent or stored (the copy stands unlinked, no pending record, no refutation, no fork).
2. What must be stored is: acme's real ticket with the flag and acme's pin, over globex's
   made-up copy, replaces it once acme answered, stored linked, globex's change refuted; the
   next ticket of acme needs neither flag nor pin (the flag is never remembered, and need not
   be).
3. Replay after the real ticket landed: once acme's real full history replaced globex's copy
   (with the flag), a thief's fork from an early backup of acme's keys, with the flag, is
   refused as a FORK (the flag never overrides a full copy), nothing recorded.
4. A race: the copy becomes linked (another enrollment, with acme's real ticket from its own
   checkpoint and acme's pin, links the copy it equals) while the thief's fork enrollment with
   the flag is out to the thief: the replacement after the answer is judged again in the
   store's transaction, which never overrides a linked copy; acme's real change 4 stands.
5. Two enrollments at once: alice's with the flag is out to acme when bob's without it is
   refused (COPY_CONFLICT, nothing recorded for bob: the flag is not shared); once alice's
   completes, bob's passes without it.
6. A copy our own authority took: desk hosts an authority acme enrolled with (its full history,
   stored linked when desk's authority took the request); the thief's fork from an early backup
   of acme's keys, with the flag, is refused as a FORK: the flag never overrides a copy desk
   checked itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.channels import MEMBER
from tests.support.enroll import ticket_pin
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_review67e_enroll import theft
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of, ticket_vouches
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.enrollment import Enrolled, complete, enroll, enrollment, request_of
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Checkpoint, UnverifiedHistory, encode_history
from troth.node import Node, open_node
from troth.node.authorities import enroll_locally
from troth.node.home import troth_home
from troth.node.node import node_dir
from troth.storage import SqliteVoucherStore


def _refused(request: bytes) -> bytes:
    raise AssertionError("nothing is sent for a ticket refused before the exchange")


def _ticket(authority: Authority, address: str) -> Ticket:
    return authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address=address, now=NOW
    )


def _enroll_bob(members: Node, ticket: Ticket, send: object, *, over_copy: bool = False) -> None:
    enroll(
        members.identities,
        members.wallet,
        "bob",
        ticket,
        clock=FixedClock(NOW),
        send=send,  # type: ignore[arg-type]
        authority_pin=ticket_pin(ticket, now=NOW) if over_copy else None,  # the ticket's own
        over_copy=over_copy,
    )


def test_a_stolen_backups_fork_with_the_flag_and_the_current_pin_is_refused(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    theft(authority, node, members)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)  # acme's, now
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2': key 2 too, its own next key
        ticket = _ticket(thief.authority(), "node:thief")
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, pin, _refused, over_copy=True)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert members.identities.stored_changes(authority.identifier) == 5  # acme's real copy
    assert not members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []
    assert SqliteVoucherStore(members.db).refuted() == []
    assert members.identities.forks(authority.identifier) == []


def test_the_real_ticket_with_the_flag_and_the_pin_replaces_the_copy_for_good(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    forged = stores_globex_copy(members, make_two(), authority.identifier)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)

    def to_acme(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    ticket = _ticket(authority, "node:acme-node")
    assert enroll_alice(members, ticket, pin, to_acme, over_copy=True).authority == (
        authority.identifier
    )
    assert members.identities.stored_changes(authority.identifier) == 1
    assert members.identities.linked(authority.identifier)
    made_up = (authority.identifier.digest, 5, forged.identity.current_change_hash)
    assert SqliteVoucherStore(members.db).refuted() == [made_up]
    members.identities.create(now=NOW, name="bob")
    _enroll_bob(members, _ticket(authority, "node:acme-node"), to_acme)  # no flag, no pin
    assert members.wallet.pending_enrollments("bob") == []


def _steal(node: Node) -> None:
    """A thief's copy of acme's node as it is now."""
    home = troth_home()
    shutil.copytree(node_dir(home, "acme-node"), Path(node_dir(home, "thief")))


def test_a_replayed_fork_with_the_flag_after_the_real_ticket_landed_is_refused(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)  # change 1: key 1, next key 2 committed
    _steal(node)
    node.identities.rotate("acme", now=NOW)  # change 2
    stores_globex_copy(members, make_two(), authority.identifier)

    def to_acme(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    real = _ticket(authority, "node:acme-node")
    enroll_alice(members, real, ticket_pin(real, now=NOW), to_acme, over_copy=True)
    assert members.identities.stored_changes(authority.identifier) == 3  # acme's, linked
    members.identities.create(now=NOW, name="bob")
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2'
        fork = _ticket(thief.authority(), "node:thief")
    with pytest.raises(IdentityError) as refused:
        _enroll_bob(members, fork, _refused, over_copy=True)
    assert refused.value.reason is IdentityFailure.FORK
    assert members.identities.stored_changes(authority.identifier) == 3
    assert members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("bob") == []


def fork_flagged_while_the_copy_is_linked(
    authority: Authority, node: Node, members: Node
) -> Enrolled:
    """The thief's fork enrolled with the flag (and its own pin: the operator fooled) while
    another enrollment with acme's real ticket from its own checkpoint and its pin links the
    copy it equals (as `accept_ticket(pinned=True)`), after `theft`."""
    digest = authority.identifier.digest
    window = UnverifiedHistory.decode(authority.history()).changes[4:]
    real = encode_history(window, Checkpoint(digest, digest, 4))
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2'
        stolen = thief.authority()
        ticket = _ticket(stolen, "node:thief")

        def to_thief(request: bytes) -> bytes:
            members.identities.import_history(  # meanwhile, bob's (another process)
                real, now=NOW, checkpoints=ticket_vouches, linked=True
            )
            assert members.identities.linked(authority.identifier)
            return stolen.enroll(request, now=NOW).encode()

        pin = ticket_pin(ticket, now=NOW)
        return enroll_alice(members, ticket, pin, to_thief, over_copy=True)


def test_a_copy_linked_while_the_flagged_request_is_out_is_not_replaced(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    theft(authority, node, members)
    digest = authority.identifier.digest
    before = members.identities.store.get_history(digest)
    fork_flagged_while_the_copy_is_linked(authority, node, members)
    stored = members.identities.store.get_history(digest)
    assert before is not None
    assert stored is not None
    assert stored[0] == before[0]  # the fork replaced nothing
    assert members.identities.linked(authority.identifier)
    assert members.identities.stored_changes(authority.identifier) == 5
    assert SqliteVoucherStore(members.db).refuted() == []


def test_two_enrollments_at_once_share_no_flag(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    members.identities.create(now=NOW, name="bob")
    alices = _ticket(authority, "node:acme-node")
    steps = enrollment(
        members.identities,
        members.wallet,
        "alice",
        alices,
        clock=FixedClock(NOW),
        authority_pin=ticket_pin(alices, now=NOW),
        over_copy=True,
    )
    request = request_of(steps)  # alice's, out to acme
    bobs = _ticket(authority, "node:acme-node")
    with pytest.raises(IdentityError) as refused:
        _enroll_bob(members, bobs, _refused)
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert members.wallet.pending_enrollments("bob") == []
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's, still
    complete(steps, authority.enroll(request, now=NOW).encode())
    assert members.identities.stored_changes(authority.identifier) == 1

    def to_acme(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    _enroll_bob(members, bobs, to_acme)
    assert members.wallet.pending_enrollments("bob") == []


def test_a_copy_our_own_authority_took_from_its_member_is_not_overridden(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    desk = members.create_authority("desk", now=NOW)  # desk's own authority
    node.identities.rotate("acme", now=NOW)  # change 1: key 1, next key 2 committed
    _steal(node)
    node.identities.rotate("acme", now=NOW)  # change 2
    ticket = _ticket(desk, "node:members")
    enroll_locally(node, ticket, "acme", clock=FixedClock(NOW))  # acme, a member of desk's
    assert members.identities.stored_changes(authority.identifier) == 3
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2'
        fork = _ticket(thief.authority(), "node:thief")
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, fork, ticket_pin(fork, now=NOW), _refused, over_copy=True)
    assert refused.value.reason is IdentityFailure.FORK
    assert members.identities.stored_changes(authority.identifier) == 3
    assert members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []
