"""Review 30a, enrollment: the rule on a stored copy from a checkpoint (docs/formats.md, "A
stored copy from a checkpoint") at both ends of an enrollment.

Globex, an authority a node trusts, names a made-up change 5 of someone's identifier in its feed
(its `previous` names no change of theirs: after a gap) and the node stores that copy at first
sight (globex connected as them with its own chain). A handshake, a chain's issuer and a feed
page judge the real full history with the node's `Binds` (globex has no standing over it); an
enrollment did not:

- enrollment 1, the authority's side: acme's node stores globex's copy of alice; her enroll
  request (her full history, change 0) is refused as older than the stored copy
  (`Authority._verify` and `_learn` judged it with no `Binds`): globex locked her out of acme.
- enrollment 2, the member's side: desk stores globex's copy of acme itself; acme's ticket (its
  full history) is refused by `check_ticket` as older than the stored copy: desk can never
  enroll with acme.

Enrollment 1 and 2 were strict xfails until the authority judged its requesters' histories
with its node's `Binds`, itself having standing over them (`Authority.binds`, set by
`Node.authority`; `Node.binds_over` reads the rule from the store: troth.node.copies), and the
enrolling node judged the ticket's authority history with its `Binds`, that authority having
standing over its own (`CredentialWallet.binds_over`, `check_ticket(binds=)`,
`accept_ticket(binds=)`): globex's copy is replaced once the request is authorised (the ticket
checked, on the member's side) and its changes recorded refuted.

Guards: a copy whose attester has standing over the history shown still binds it (a voucher
of globex recorded under her change 0: a thief's stale backup enrolling with an acme ticket is
refused: enrollment 3; a ticket giving a stale backup of acme's own keys: enrollment 6), and so
does a copy acme's own feed names a change of (enrollment 4). Enrollment 5: a ticket whose
authority history is a copy only another authority's word ties to acme needs acme's pin.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.channels import MEMBER
from tests.support.enroll import ticket_pin
from tests.test_review23a_checkpoints import Forged, forged_change
from tests.test_trust_scope import NOW, Two, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of, check_ticket, enroll_request
from troth.authority.tickets import Ticket, new_code
from troth.clock import FixedClock
from troth.enrollment import enroll
from troth.errors import AuthorityError, IdentityError, IdentityFailure
from troth.identity import Checkpoint, Identifier, UnverifiedHistory, encode_history
from troth.node import Node, init_node, open_node
from troth.node.authorities import enroll_locally
from troth.storage import SqliteVoucherStore


@pytest.fixture
def acme(troth_home: Path) -> Iterator[tuple[Authority, Node, Node]]:
    """Acme's node (hosting acme) and a node of members (alice, there)."""
    init_node("acme-node")
    init_node("members")
    with open_node("acme-node") as node, open_node("members") as members:
        authority = node.create_authority("acme", now=NOW)
        members.identities.create(now=NOW, name="alice")
        yield authority, node, members


def stores_globex_copy(node: Node, two: Two, identifier: Identifier) -> Forged:
    """`node` trusts globex, holds its feed naming a made-up change 5 of `identifier` (after a
    gap) and stores that copy at first sight (as when globex connects as them)."""
    forged = forged_change(two, identifier, 5, os.urandom(32))
    node.wallet.trust(two.globex.identifier, f"node:{two.globex.identifier}", now=NOW)
    node.wallet.update_feed(forged.page, authority=two.globex.identifier, now=NOW)
    checkpoints = node.wallet.checkpoints(now=NOW, max_staleness=10**6)
    node.identities.import_history(forged.identity.history, now=NOW, checkpoints=checkpoints)
    assert node.identities.stored_changes(identifier) == 6
    return forged


def enroll_alice(authority: Authority, members: Node) -> object:
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    return authority.enroll(enroll_request(members.identities, "alice", ticket, now=NOW), now=NOW)


def test_a_gap_copy_does_not_lock_a_member_out_of_enrolling(
    acme: tuple[Authority, Node, Node],
) -> None:
    authority, node, members = acme
    alice = members.identities.get("alice", now=NOW).identifier
    stores_globex_copy(node, make_two(), alice)
    chain = enroll_alice(authority, members)
    assert chain is not None
    assert node.identities.stored_changes(alice) == 1  # her history, over globex's copy


def test_a_gap_copy_of_an_authority_does_not_keep_a_node_from_enrolling(
    acme: tuple[Authority, Node, Node],
) -> None:
    """Since review 67i, enroll: refused as COPY_CONFLICT without the operator's word (desk
    cannot tell acme's real ticket under globex's made-up copy from a thief's fork under acme's
    real later history, tests/test_review67e_enroll.py), nothing stored; taken with it."""
    authority, _node, members = acme
    forged = stores_globex_copy(members, make_two(), authority.identifier)
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    with pytest.raises(IdentityError) as refused:
        enroll_locally(members, ticket, "alice", clock=FixedClock(NOW))
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert refused.value.change == 5
    assert members.identities.stored_changes(authority.identifier) == 6
    assert members.wallet.pending_enrollments("alice") == []
    assert SqliteVoucherStore(members.db).refuted() == []
    pin = ticket_pin(ticket, now=NOW)  # acme's, read out by its operator (review 68l, enroll 1)
    done = enroll_locally(
        members, ticket, "alice", clock=FixedClock(NOW), authority_pin=pin, over_copy=True
    )
    assert done.enrolled.authority == authority.identifier
    assert members.identities.stored_changes(authority.identifier) == 1
    assert members.identities.linked(authority.identifier)
    made_up = (authority.identifier.digest, 5, forged.identity.current_change_hash)
    assert SqliteVoucherStore(members.db).refuted() == [made_up]  # globex's copy, refuted


def test_a_copy_whose_attester_has_standing_still_binds(
    acme: tuple[Authority, Node, Node],
) -> None:
    """Enrollment 3 (a guard): globex vouched for alice here under her change 0 (it verified
    her globex chain with her full history once), then recorded her rotation (its copy): her
    change 0 alone, a stale backup with an acme ticket, is refused."""
    authority, node, members = acme
    two = make_two()
    alice = members.identities.get("alice", now=NOW).identifier
    stores_globex_copy(node, two, alice)
    change0 = members.identities.get("alice", now=NOW).identity.current_change_hash
    SqliteVoucherStore(node.db).vouch(
        alice.digest, two.globex.identifier.digest, NOW + 3600, alice.digest, (0, change0)
    )
    with pytest.raises((AuthorityError, IdentityError)) as caught:
        enroll_alice(authority, members)
    assert "older than the stored copy" in str(caught.value)
    assert node.identities.stored_changes(alice) == 6


def test_a_copy_the_authority_named_binds_its_requester(
    acme: tuple[Authority, Node, Node],
) -> None:
    """Enrollment 4 (a guard): acme's own feed names the copy's change (acme published that
    history as hers: a rotation only it and globex attest): acme has standing, its word binds,
    so her change 0 (a stale backup with a ticket) is refused, and the copy stays."""
    authority, node, members = acme
    alice = members.identities.get("alice", now=NOW).identifier
    forged = stores_globex_copy(node, make_two(), alice)
    assert authority.revocations.supersede(forged.identity, now=NOW) is not None
    with pytest.raises(AuthorityError) as caught:
        enroll_alice(authority, members)
    assert "older than the stored copy" in str(caught.value)
    assert node.identities.stored_changes(alice) == 6


def test_a_ticket_with_a_copy_only_another_authority_attests_needs_the_pin(
    acme: tuple[Authority, Node, Node],
) -> None:
    """Enrollment 5: desk (the members' node) stores globex's made-up copy of acme (after a
    gap: globex connected as acme). Globex hands desk's operator a ticket "from acme" whose
    authority history is that copy, and runs the service at its address: `check_ticket` asks
    for acme's pin only on a first sight, and the stored copy (globex's word alone, never
    linked here) stood for the link to acme's identifier: desk would enroll with globex as
    acme, holding chains of acme's identifier signed with globex's made-up key. Was a strict
    xfail until `check_ticket` asked for the pin unless the stored copy is linked
    (`IdentityService.linked`)."""
    authority, _node, members = acme
    forged = stores_globex_copy(members, make_two(), authority.identifier)
    ticket = Ticket(new_code(), forged.identity.history, "node:globex-node")
    with pytest.raises(IdentityError) as caught:
        check_ticket(members.identities, ticket, now=NOW)
    assert caught.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert "--authority-pin" in str(caught.value)


def test_a_ticket_is_bound_by_a_copy_whose_attester_has_standing(
    acme: tuple[Authority, Node, Node],
) -> None:
    """Enrollment 6 (a guard): globex vouched for acme at desk under acme's change 0, then
    recorded its rotation (its copy): a ticket giving acme's change 0 alone (a thief's stale
    backup of the authority's keys, say) is refused, and the copy stays."""
    authority, node, members = acme
    two = make_two()
    stores_globex_copy(members, two, authority.identifier)
    change0 = node.identities.get("acme", now=NOW).identity.current_change_hash
    SqliteVoucherStore(members.db).vouch(
        authority.identifier.digest,
        two.globex.identifier.digest,
        NOW + 3600,
        authority.identifier.digest,
        (0, change0),
    )
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    with pytest.raises(IdentityError) as caught:
        enroll_locally(members, ticket, "alice", clock=FixedClock(NOW))
    assert caught.value.reason is IdentityFailure.ROLLBACK
    assert members.identities.stored_changes(authority.identifier) == 6


def checkpointed_ticket(authority: Authority, node: Node) -> Ticket:
    """A ticket of acme (rotated once) giving its history from its change 1, as an authority
    past 64 changes gives it (a checkpoint of its own)."""
    made = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    digest = authority.identifier.digest
    changes = UnverifiedHistory.decode(authority.history()).changes[1:]
    window = encode_history(changes, Checkpoint(digest, digest, 1))
    return Ticket(made.code, window, made.address)


def test_a_pinned_enrollment_ties_the_authority_history(
    acme: tuple[Authority, Node, Node],
) -> None:
    """Enrollment 7: desk enrolls alice with acme's checkpointed ticket and acme's pin (a
    first sight: the pin ties the history to acme's identifier); enrolling bob with another
    such ticket needs no pin then (enrollment 5 asks for it while the copy is only a
    checkpoint's word: the pin confirmed is the operator's word on the link). Was a strict
    xfail until `accept_ticket(pinned=)` stored a history whose pin `check_ticket` confirmed
    linked (`import_history(linked=)`, `KnownHistories.observe(linked=)`)."""
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    first = checkpointed_ticket(authority, node)
    clock = FixedClock(NOW)

    def send(request: bytes) -> bytes:  # to acme, its feed not synced yet (a remote one)
        return authority.enroll(request, now=NOW).encode()

    wallet = members.wallet
    enroll(members.identities, wallet, "alice", first, clock=clock, send=send, authority_pin=pin)
    members.identities.create(now=NOW, name="bob")
    second = checkpointed_ticket(authority, node)
    done = enroll(members.identities, wallet, "bob", second, clock=clock, send=send)
    assert done.authority == authority.identifier
