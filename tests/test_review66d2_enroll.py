"""Review 66d2, enroll 1: a thief's fork at the pinned key's own change, tied by a stale pin,
replaced the authority's real history.

Acme rotated to key 2 (its change 2), and its operator gave desk's operator that pin
(`acme:key2`). A thief holds a copy of acme's node from before that rotation (key 1 and the
next key 2 it committed to) and signs its own change 2', revealing key 2 too (and a next key of
its own). Acme, having learnt of the theft, rotates again (change 3, signed with key 2 as its
previous key). Desk holds acme's real change 3 from globex's feed (co-trusted; a checkpoint's
word, unlinked). The thief hands desk's operator a ticket giving its fork [2'] from a
checkpoint, with the pin desk has: the fork ends with the pinned key, the copy holds none of
the fork's changes and does not follow its last one (it follows acme's change 2, a sibling), so
66t's `tied` judged the copy as not binding: the thief answered, and its fork replaced acme's
real history, stored linked. Fixed in `known._unbound`: over a tied checkpointed history, a copy
at or before the change after its last binds it (a continuation of a change at an index the
ticket holds is signed by the same keys: the pin cannot tell the thief's from acme's).
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


def test_a_thiefs_fork_at_the_pinned_key_does_not_replace_the_real_history(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)  # change 1: key 1, next key 2 committed
    home = troth_home()
    shutil.copytree(node_dir(home, "acme-node"), Path(node_dir(home, "thief")))
    node.identities.rotate("acme", now=NOW)  # change 2: key 2
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    node.identities.rotate("acme", now=NOW)  # change 3: key 3 (after the theft)
    digest = authority.identifier.digest
    real = UnverifiedHistory.decode(authority.history()).changes[2:]
    two = make_two()  # globex, co-trusted at desk, relays acme's real change 3 in its feed
    page = announce(
        two, two.globex, authority.identifier, 4, sha256(real[1].body), by=two.globex.identifier
    )
    members.wallet.trust(two.globex.identifier, f"node:{two.globex.identifier}", now=NOW)
    members.wallet.update_feed(page, authority=two.globex.identifier, now=NOW)
    checkpoints = members.wallet.checkpoints(now=NOW, max_staleness=10**6)
    members.identities.import_history(
        encode_history(real[1:], Checkpoint(digest, two.globex.identifier.digest, 3)),
        now=NOW,
        checkpoints=checkpoints,
    )
    assert not members.identities.linked(authority.identifier)
    with open_node("thief") as thief:
        thief.identities.rotate("acme", now=NOW)  # change 2': key 2 too, its own next key
        stolen = thief.authority()
        assert authority_pin_of(thief.identities.get("acme", now=NOW).identity) == pin
        fork = UnverifiedHistory.decode(stolen.history()).changes[2:]
        assert fork[0].body != real[0].body
        made = stolen.create_ticket(
            creator=stolen.identifier,
            attributes=MEMBER,
            address="node:thief",
            now=NOW,
        )
        ticket = Ticket(
            made.code, encode_history(fork, Checkpoint(digest, digest, 2)), made.address
        )

        def send(request: bytes) -> bytes:
            return stolen.enroll(request, now=NOW).encode()

        with pytest.raises(IdentityError) as refused:
            enroll_alice(members, ticket, pin, send)
        # COPY_CONFLICT since review 67i, enroll (UNATTESTED_CHECKPOINT before): the operator
        # is told to decide; without --over-copy nothing is stored
        assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert members.identities.stored_changes(authority.identifier) == 4  # acme's real copy
    assert not members.identities.linked(authority.identifier)
