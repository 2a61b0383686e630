"""A chain from an issuer whose history is presented from the change its own authority's feed
names, on a node that trusts that authority (review 56q, chains 1; review 56z, chains)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.feeds import pages, superseded
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.parties import make_party, signer_as
from troth.clock import FixedClock
from troth.credentials import CredentialChain, issue_credential
from troth.crypto import KeyType
from troth.identity import Checkpoint, encode_history, new_identity, rotate_identity, verify_history
from troth.node import init_node, open_node
from troth.trace import open_node_log
from troth.trace.recorder import TraceRecorder
from troth.vault import SoftwareVault

YEAR = 365 * DAY


@contextmanager
def member_chain(home: Path, now: int, *, stored: bool) -> Iterator[tuple[TraceRecorder, bytes]]:
    """On node "hub", which trusts authority Z and holds its feed: a recorder of its identity
    "agent" and a chain from issuer A (Z's member, rotated once) presenting A's history from
    change 1, the change Z's own feed names. `stored`: hub holds A's full history at change 0
    (seen before A rotated)."""
    vault = SoftwareVault()
    z = make_party(vault, now=now - 1000)
    primary, first, following = new_identity(vault, KeyType.ED25519, now=now - 900, valid_for=YEAR)
    primary, rotated, _ = rotate_identity(
        vault, first, primary, following, now=now - 800, valid_for=YEAR
    )
    change, a = rotated.changes[1], rotated.identifier
    suffix = encode_history([change.signed], Checkpoint(a.digest, z.identifier.digest, 1))
    presented = verify_history(suffix, now=now, checkpoints=lambda c, h: True)
    a_signer = signer_as(vault, primary, presented, now=now - 700, ttl=30 * DAY)
    init_node("hub", home=home)
    clock = FixedClock(now)
    with open_node("hub", home=home) as node, open_node_log(node, clock=clock) as log:
        agent = node.identities.create(now=now - 100, name="agent")
        if stored:
            node.identities.import_history(first, now=now - 850)
            assert node.identities.stored_changes(a) == 1
        node.wallet.trust(z.identifier, "127.0.0.1:1", now=now)
        entry = superseded(0, a, z.identifier, 2, change.change_hash, at=now - 20)
        (page,) = pages(z, [entry], now=now - 10, per_page=10)
        node.wallet.update_feed(page, authority=z.identifier, now=now - 10)
        credential = issue_credential(
            a_signer, subject=agent.identifier, attributes=SUPPORT, now=now - 50, ttl=DAY, depth=3
        )
        chain = CredentialChain((credential,), (suffix,)).encode()
        signer = node.identities.signer
        yield TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock), chain
