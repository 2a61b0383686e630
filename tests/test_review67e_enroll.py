"""Review 67e, enroll: attacks on 66d2's rule ("a copy at or before the change after the
ticket's last binds a tied checkpointed ticket") that worked.

Both start the same way (`theft`): acme rotates to key 1 (committing to key 2); a thief copies
acme's node; acme rotates to key 2 (desk's operator writes down that pin, `acme:key2`), then
twice more (changes 3 and 4). Desk holds only acme's real change 4, from globex's feed
(co-trusted; a checkpoint's word, unlinked). The thief signs its own change 2' with the stolen
key 1, revealing key 2 too (and a next key of its own).

1. A pinned checkpointed fork, two rotations behind (high). The thief hands desk a ticket giving
   its fork [2'] from a checkpoint with the pin desk holds: the copy starts past the change
   after the fork's last (4 > 2 + 1), so 66d2's `_unbound` judged it by `binds` alone; globex
   has no standing over acme, and the thief's fork replaced acme's real later history, stored
   linked. The copy's first change follows a change 3 the ticket does not hold: whether it
   descends from the ticket's last change or from a sibling of it, the pin cannot tell (the
   doubt 66d2 found at 3 holds however many rotations acme made since the pin was written
   down). Fixed in `known._unbound`: a pin ties a checkpointed history to its identifier (it is
   stored linked, and its checkpoint is attested over an unlinked copy it extends) but never
   makes a copy it does not extend bind it less; review 66g, enroll 1 (acme's real pinned
   ticket under globex's made-up copy, the same picture at desk) is left again, its tests
   strict xfails.
2. The same thief's fork as a full history [0, 1, 2'], no pin (was a strict xfail): a full
   history is tied to the identifier by its own hash, and a copy from a checkpoint bound it
   only as `binds` said (review 27h): globex had no standing, and the fork replaced acme's
   real later history (docs/formats.md, "What this costs": a ticket was the operator's word on
   its history). Lifted by review 67i, enroll (the lead's decision, deny when in doubt): a
   ticket whose history conflicts with a stored copy this node never linked is refused as
   COPY_CONFLICT, naming the copy's attester and the change where they disagree, and nothing
   is stored; only the operator's explicit `--over-copy` (`enroll(over_copy=True)`) admits it.
   Fix 1's refusal of the pinned fork is COPY_CONFLICT since then too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.channels import MEMBER
from tests.test_review23a_checkpoints import announce
from tests.test_review30a_enrollment import acme  # noqa: F401 (the fixture)
from tests.test_review66g_enroll import enroll_alice
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.authority.tickets import Ticket
from troth.crypto import sha256
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Checkpoint, UnverifiedHistory, encode_history
from troth.node import Node, open_node
from troth.node.home import troth_home
from troth.node.node import node_dir


def theft(authority: Authority, node: Node, members: Node) -> str:
    """The thief's copy of acme's node before change 2; acme at change 4, desk holding only
    that change from globex's checkpoint; the pin of acme's key 2."""
    node.identities.rotate("acme", now=NOW)  # change 1: key 1, next key 2 committed
    home = troth_home()
    shutil.copytree(node_dir(home, "acme-node"), Path(node_dir(home, "thief")))
    node.identities.rotate("acme", now=NOW)  # change 2: key 2
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    node.identities.rotate("acme", now=NOW)  # change 3 (after the theft)
    node.identities.rotate("acme", now=NOW)  # change 4
    digest = authority.identifier.digest
    real = UnverifiedHistory.decode(authority.history()).changes
    two = make_two()  # globex, co-trusted at desk, relays acme's real change 4 in its feed
    page = announce(
        two, two.globex, authority.identifier, 5, sha256(real[4].body), by=two.globex.identifier
    )
    members.wallet.trust(two.globex.identifier, f"node:{two.globex.identifier}", now=NOW)
    members.wallet.update_feed(page, authority=two.globex.identifier, now=NOW)
    checkpoints = members.wallet.checkpoints(now=NOW, max_staleness=10**6)
    members.identities.import_history(
        encode_history(real[4:], Checkpoint(digest, two.globex.identifier.digest, 4)),
        now=NOW,
        checkpoints=checkpoints,
    )
    assert members.identities.stored_changes(authority.identifier) == 5
    assert not members.identities.linked(authority.identifier)
    return pin


def _real_copy_stands(authority: Authority, members: Node) -> None:
    assert members.identities.stored_changes(authority.identifier) == 5  # acme's real copy
    assert not members.identities.linked(authority.identifier)


def test_a_pinned_fork_two_rotations_behind_does_not_replace_the_real_history(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    pin = theft(authority, node, members)
    digest = authority.identifier.digest
    real = UnverifiedHistory.decode(authority.history()).changes
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2': key 2 too, its own next key
        stolen = thief.authority()
        assert authority_pin_of(thief.identities.get("acme", now=NOW).identity) == pin
        fork = UnverifiedHistory.decode(stolen.history()).changes[2:]
        assert fork[0].body != real[2].body
        made = stolen.create_ticket(
            creator=stolen.identifier, attributes=MEMBER, address="node:thief", now=NOW
        )
        ticket = Ticket(
            made.code, encode_history(fork, Checkpoint(digest, digest, 2)), made.address
        )

        def send(request: bytes) -> bytes:
            return stolen.enroll(request, now=NOW).encode()

        with pytest.raises(IdentityError) as refused:
            enroll_alice(members, ticket, pin, send)
        assert refused.value.reason is IdentityFailure.COPY_CONFLICT  # (review 67i, enroll)
        assert refused.value.change == 4
    _real_copy_stands(authority, members)


def test_a_full_fork_ticket_does_not_replace_the_real_history(
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
        assert UnverifiedHistory.decode(ticket.authority_history).first_index == 0

        def send(request: bytes) -> bytes:
            return stolen.enroll(request, now=NOW).encode()

        with pytest.raises(IdentityError) as refused:
            enroll_alice(members, ticket, None, send)
        assert refused.value.reason is IdentityFailure.COPY_CONFLICT
        assert refused.value.change == 4  # the copy's first change, past the fork's last
        assert str(two_globex(members)) in str(refused.value)  # the copy's attester, named
        assert "--over-copy" in str(refused.value)
    _real_copy_stands(authority, members)
    assert members.wallet.pending_enrollments("alice") == []  # nothing recorded
    assert members.identities.forks(authority.identifier) == []


def two_globex(members: Node) -> str:
    """Globex's identifier, the only authority desk trusts in `theft` (its checkpoint)."""
    (globex,) = members.wallet.trusted()
    return str(globex)
