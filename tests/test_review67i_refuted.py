"""Review 67i, enroll: attacks on the operator's override (`troth enroll --over-copy`,
`enroll(over_copy=True)`) that did not work.

The override takes an enrollment ticket's authority history over a stored copy this node never
linked (a checkpoint's word) that it conflicts with. Whatever the operator says, these stay
refused, the stored copy standing:

1. a thief's full fork of acme (a stolen backup before its rotations) over acme's real full
   history stored here (linked): FORK, the flag or not;
2. acme's stale change 0 over globex's copy when globex vouched for acme at desk under that
   change (its attester has standing over the ticket's history, review 30a, enrollment 6):
   ROLLBACK, the flag or not;
3. a stale pinned ticket over acme's real next change held unlinked (the copy follows the
   ticket's last change: acme's continuation, review 66g): refused, the flag or not;
4. a thief's pinned fork that parts from the copy after a change both hold (acme's change 2, in
   globex's copy and in the ticket; 3' against acme's real 3, each signed with key 2): a real
   fork, signed by the keys on both sides, refused as FORK and kept as evidence, the flag or not
   (review 67e, refuted 2);
5. the running node's control operation takes the flag only as a bool (review 51e, flags 4:
   a flag is never read by truthiness): `"over_copy": "no"` is refused, not taken as given.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.channels import MEMBER
from tests.support.enroll import ticket_pin
from tests.test_review23a_checkpoints import announce
from tests.test_review30a_enrollment import acme, checkpointed_ticket, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of, ticket_vouches
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.crypto import sha256
from troth.errors import DecodeError, IdentityError, IdentityFailure
from troth.identity import Checkpoint, UnverifiedHistory, encode_history
from troth.node import Node, open_node
from troth.node.authorities import enroll_locally
from troth.node.control import OPERATIONS
from troth.node.home import troth_home
from troth.node.node import node_dir
from troth.storage import SqliteVoucherStore


def _never(request: bytes) -> bytes:
    raise AssertionError("no request is sent for a refused ticket")


def test_the_flag_does_not_override_a_linked_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)  # change 1
    home = troth_home()
    shutil.copytree(node_dir(home, "acme-node"), Path(node_dir(home, "thief")))
    node.identities.rotate("acme", now=NOW)  # change 2, acme's real one
    members.identities.import_history(authority.history(), now=NOW)  # linked: full history
    assert members.identities.linked(authority.identifier)
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2', the thief's
        stolen = thief.authority()
        ticket = stolen.create_ticket(
            creator=stolen.identifier, attributes=MEMBER, address="node:thief", now=NOW
        )
    for over_copy in (False, True):  # with the flag, the fork's own pin (the operator fooled)
        pin = ticket_pin(ticket, now=NOW) if over_copy else None
        with pytest.raises(IdentityError) as refused:
            enroll_alice(members, ticket, pin, _never, over_copy=over_copy)
        assert refused.value.reason is IdentityFailure.FORK
    real = UnverifiedHistory.decode(authority.history()).changes
    assert members.identities.stored_changes(authority.identifier) == len(real) == 3
    assert members.wallet.pending_enrollments("alice") == []


def test_the_flag_does_not_override_a_copy_whose_attester_has_standing(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
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
    for over_copy in (False, True):
        pin = ticket_pin(ticket, now=NOW) if over_copy else None  # acme's real pin with the flag
        with pytest.raises(IdentityError) as refused:
            enroll_locally(
                members,
                ticket,
                "alice",
                clock=FixedClock(NOW),
                authority_pin=pin,
                over_copy=over_copy,
            )
        assert refused.value.reason is IdentityFailure.ROLLBACK
    assert members.identities.stored_changes(authority.identifier) == 6
    assert SqliteVoucherStore(members.db).refuted() == []


def test_the_flag_does_not_override_the_authoritys_continuation(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
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
    for over_copy in (False, True):
        with pytest.raises(IdentityError) as refused:
            enroll_alice(members, stale, stale_pin, _never, over_copy=over_copy)
        assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert members.identities.stored_changes(authority.identifier) == 3  # the copy stands
    assert members.wallet.pending_enrollments("alice") == []


def test_the_flag_does_not_override_a_fork_after_a_change_both_hold(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)  # change 1
    node.identities.rotate("acme", now=NOW)  # change 2: key 2
    home = troth_home()
    shutil.copytree(node_dir(home, "acme-node"), Path(node_dir(home, "thief")))
    node.identities.rotate("acme", now=NOW)  # change 3: key 3
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    digest = authority.identifier.digest
    real = UnverifiedHistory.decode(authority.history()).changes
    two = make_two()
    page = announce(
        two, two.globex, authority.identifier, 3, sha256(real[2].body), by=two.globex.identifier
    )
    members.wallet.trust(two.globex.identifier, f"node:{two.globex.identifier}", now=NOW)
    members.wallet.update_feed(page, authority=two.globex.identifier, now=NOW)
    members.identities.import_history(
        encode_history(real[2:], Checkpoint(digest, two.globex.identifier.digest, 2)),
        now=NOW,
        checkpoints=members.wallet.checkpoints(now=NOW, max_staleness=10**6),
    )
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 3': key 3 too
        stolen = thief.authority()
        made = stolen.create_ticket(
            creator=stolen.identifier, attributes=MEMBER, address="node:thief", now=NOW
        )
        fork = UnverifiedHistory.decode(stolen.history()).changes[2:]
        ticket = Ticket(
            made.code, encode_history(fork, Checkpoint(digest, digest, 2)), made.address
        )
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, pin, _never, over_copy=True)
    assert refused.value.reason is IdentityFailure.FORK
    assert refused.value.change == 3
    assert members.identities.stored_changes(authority.identifier) == 4
    assert not members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []


def test_the_control_operation_takes_the_flag_only_as_a_bool() -> None:
    enroll = OPERATIONS["enroll"]
    assert enroll.parse({"ticket": "t"}).over_copy is False
    assert enroll.parse({"ticket": "t", "over_copy": True}).over_copy is True
    for wrong in ("no", 1, None):
        with pytest.raises(DecodeError, match="must be true or false"):
            enroll.parse({"ticket": "t", "over_copy": wrong})
