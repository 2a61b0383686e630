"""Review 58g, verifier: `troth.Verifier` fed by a node whose copy of a feed is due a sync.

1. Review 58e, feeds 2 made a `troth.Node` give no feed of an authority while a link
   revocation made on it left that feed due a sync (`Node._revocation_feed`). But a Verifier
   fed by several sources (`feeds=[node, other]`, made so that "an older copy one source holds
   never hides a revocation another source has") drops a source's None and takes the newest
   copy among the others: a second node holding the same pre-revocation copy (a sibling on the
   machine that has not synced either) then verified the revoked link. The node that knows a
   revocation is in flight hid nothing only when it was the sole source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.feeds import pages
from tests.test_review58e_feeds import NOW, _member_credential
from troth.clock import FixedClock
from troth.credentials import CredentialChain
from troth.errors import CredentialError
from troth.node import init_node, open_node

AWAY = "/tcp/away:4000"


def test_a_second_source_does_not_undo_a_due_nodes_wait(tmp_path: Path) -> None:
    """desk and mirror both trust z and hold the same copy of its feed; a link revocation made
    on desk left z's feed due a sync there. A Verifier fed by both refuses z's chain."""
    z, member, credential = _member_credential()
    chain = CredentialChain((credential,), (z.identity.history,)).encode()
    page = pages(z, [], now=NOW - 10, per_page=10)[0]
    for name in ("desk", "mirror"):
        init_node(name, home=tmp_path)
        with open_node(name, home=tmp_path) as node:
            node.wallet.trust(z.identifier, AWAY, now=NOW - 20)
            node.wallet.update_feed(page, authority=z.identifier, now=NOW - 10)
            if name == "desk":
                node.wallet.store.mark_sync_due(z.identifier.digest, AWAY, NOW - 5)
    with (
        troth.Node.open("desk", home=tmp_path, create=False) as desk,
        troth.Node.open("mirror", home=tmp_path, create=False) as mirror,
    ):
        alone = troth.Verifier(trust=[z.identifier], feeds=desk, clock=FixedClock(NOW))
        with pytest.raises(CredentialError):
            alone.verify(chain, presenter=member.identifier)
        both = troth.Verifier(trust=[z.identifier], feeds=[desk, mirror], clock=FixedClock(NOW))
        with pytest.raises(CredentialError):
            both.verify(chain, presenter=member.identifier)
