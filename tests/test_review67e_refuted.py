"""Review 67e: attacks on a pinned enrollment over another authority's copy that did not work
(the theft of tests/test_review67e_enroll.py: a thief holding acme's node from before its change
2, acme at change 4, desk holding only that change from globex's checkpoint, unlinked).

1. Two tickets: once acme's real current ticket (from its own checkpoint at 4, with its current
   pin) linked desk's copy, the thief's fork is refused pinned with the stale pin and as a full
   history (a linked copy binds every history), the copy standing.
2. A fork after the copy's checkpoint: a thief holding acme's node from after its change 2
   signs 3' with the stolen key 2 (revealing key 3, which desk's operator holds as acme's pin),
   and hands desk its history from acme's checkpoint at 2, over globex's copy of acme's real
   changes 2 to 4 (unlinked): the copy holds the ticket's first change, the fork is refused as
   one, the copy standing.
3. A copy arriving after the ticket: once acme's pinned checkpointed ticket is stored linked at
   first sight, globex's made-up copy after a gap is refused (its checkpoint is not attested by
   a linked copy), acme's copy standing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.channels import MEMBER
from tests.test_review23a_checkpoints import announce
from tests.test_review30a_enrollment import (
    acme,  # noqa: F401 (the fixture)
    checkpointed_ticket,
    stores_globex_copy,
)
from tests.test_review66g_enroll import enroll_alice
from tests.test_review67e_enroll import theft
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.crypto import sha256
from troth.enrollment import enroll
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Checkpoint, UnverifiedHistory, encode_history
from troth.node import Node, open_node
from troth.node.home import troth_home
from troth.node.node import node_dir


def test_the_real_current_ticket_links_the_copy_and_the_fork_stays_refused(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    stale_pin = theft(authority, node, members)
    digest = authority.identifier.digest
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    made = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    window = UnverifiedHistory.decode(authority.history()).changes[4:]
    real = Ticket(made.code, encode_history(window, Checkpoint(digest, digest, 4)), made.address)

    def to_acme(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    assert enroll_alice(members, real, pin, to_acme).authority == authority.identifier
    assert members.identities.linked(authority.identifier)
    members.identities.create(now=NOW, name="bob")
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2'
        stolen = thief.authority()
        full = stolen.create_ticket(
            creator=stolen.identifier, attributes=MEMBER, address="node:thief", now=NOW
        )
        fork = UnverifiedHistory.decode(full.authority_history).changes[2:]
        pinned = Ticket(
            full.code, encode_history(fork, Checkpoint(digest, digest, 2)), full.address
        )

        def to_thief(request: bytes) -> bytes:
            return stolen.enroll(request, now=NOW).encode()

        for ticket, given, reason in (
            (pinned, stale_pin, IdentityFailure.UNATTESTED_CHECKPOINT),
            (full, None, IdentityFailure.ROLLBACK),
        ):
            with pytest.raises(IdentityError) as refused:
                enroll(
                    members.identities,
                    members.wallet,
                    "bob",
                    ticket,
                    clock=FixedClock(NOW),
                    send=to_thief,
                    authority_pin=given,
                )
            assert refused.value.reason is reason
    assert members.identities.stored_changes(authority.identifier) == 5
    assert members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("bob") == []


def test_a_pinned_fork_after_the_copys_checkpoint_is_refused(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)
    node.identities.rotate("acme", now=NOW)  # change 2: key 2, next key 3 committed
    home = troth_home()
    shutil.copytree(node_dir(home, "acme-node"), Path(node_dir(home, "thief")))
    node.identities.rotate("acme", now=NOW)  # change 3: key 3
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    node.identities.rotate("acme", now=NOW)  # change 4
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
    assert not members.identities.linked(authority.identifier)
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 3': key 3 too
        stolen = thief.authority()
        assert authority_pin_of(thief.identities.get("acme", now=NOW).identity) == pin
        made = stolen.create_ticket(
            creator=stolen.identifier, attributes=MEMBER, address="node:thief", now=NOW
        )
        fork = UnverifiedHistory.decode(stolen.history()).changes[2:]
        assert fork[0].body == real[2].body
        assert fork[1].body != real[3].body
        ticket = Ticket(
            made.code, encode_history(fork, Checkpoint(digest, digest, 2)), made.address
        )

        def send(request: bytes) -> bytes:
            return stolen.enroll(request, now=NOW).encode()

        with pytest.raises(IdentityError) as refused:
            enroll_alice(members, ticket, pin, send)
        assert refused.value.reason is IdentityFailure.FORK
    assert members.identities.stored_changes(authority.identifier) == 5
    assert not members.identities.linked(authority.identifier)
    assert members.wallet.pending_enrollments("alice") == []


def test_a_made_up_copy_after_a_pinned_enrollment_is_refused(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)

    def send(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    enroll_alice(members, checkpointed_ticket(authority, node), pin, send)
    assert members.identities.linked(authority.identifier)
    with pytest.raises(IdentityError) as refused:
        stores_globex_copy(members, make_two(), authority.identifier)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert members.identities.stored_changes(authority.identifier) == 2
    assert members.identities.linked(authority.identifier)
