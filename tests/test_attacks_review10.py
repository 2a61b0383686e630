"""Review 10's attacks: the transport's read-callback fast path and review 9's fixes.

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

from __future__ import annotations

import os

import pytest

from tests.support.histories import DAY
from tests.test_resilience_enrollment import now, troth
from troth.authority.tickets import Ticket
from troth.credentials import Attributes
from troth.crypto import KeyType
from troth.crypto.private import generate_private_key
from troth.errors import IdentityError
from troth.identity import (
    ChangeBody,
    Checkpoint,
    SignedChange,
    encode_history,
    next_key_digest,
    verify_history,
)
from troth.node import init_node, open_node

# -- 1. a forged ticket takes over the stored copy of a real authority -------------------------


def _forged_continuation(identifier: bytes, index: int, previous: bytes, at: int) -> bytes:
    """A history of `identifier` presented from change `index` that names the real last change
    as previous but holds the attacker's key: the checkpoint vouches for itself."""
    key = generate_private_key(KeyType.ED25519)
    body = ChangeBody(
        index,
        previous,
        key.public_key,
        next_key_digest(generate_private_key(KeyType.ED25519).public_key),
        at,
        at,
        at + 30 * DAY,
    )
    encoded = body.encode()
    signed = SignedChange(encoded, key.sign(encoded), key.sign(encoded))
    return encode_history([signed], Checkpoint(identifier, identifier, index))


@pytest.mark.xfail(
    strict=True,
    reason="_ticket_vouches attests any self-named checkpoint: a forged ticket's history that "
    "continues a known authority's stored copy is stored as its next change",
)
def test_a_forged_ticket_cannot_rewrite_a_known_authoritys_history() -> None:
    """A member enrolled with acme (its history stored) is handed a ticket "for acme" whose
    history is a one-change checkpointed suffix: acme's identifier, previous = acme's real last
    change, the attacker's key, the checkpoint naming acme itself. `troth enroll` with it must
    not change the stored copy of acme (else the attacker's key is acme's current key to this
    node: feed pages, chains and handshakes signed by it verify, acme's own do not)."""
    start = now()
    init_node("acme")
    init_node("victim")
    with open_node("acme") as acme, open_node("victim") as victim:
        authority = acme.create_authority("acme", now=start)
        real = authority.identifier
        good = authority.create_ticket(
            creator=real,
            attributes=Attributes({"agents.team": "a"}),
            address="node:acme",
            now=start,
        )
        victim.identities.create(now=start, name="victim")
    troth("enroll", str(good), "--as", "victim", "--node", "victim")
    forged = _forged_continuation(real.digest, 1, real.digest, start)
    evil = Ticket(os.urandom(len(good.code)), forged, "node:acme")
    troth("enroll", str(evil), "--as", "victim", "--node", "victim", code=None)  # refused
    with open_node("acme") as acme, open_node("victim") as victim:
        # acme rotates: the victim must still accept its real history (on main: FORK, the
        # attacker's change is now change 1 of the victim's stored copy of acme)
        acme.identities.rotate("acme", now=start + 60)
        victim.identities.import_history(acme.identities.export("acme"), now=start + 60)
        assert victim.identities.stored_changes(real) == 2
        with pytest.raises(IdentityError):  # and the attacker's key is not acme's
            verify_history(forged, now=start, checkpoints=victim.identities.attested_by_store)
