"""Review 65k, feed: 65c's re-publishing of the held feed's supersessions when the hosted
authority's store went back (troth.node.trust `_revoke_again`, `AuthorityFeed.supersede_again`).

feed 1 (medium; fixed): a held supersession was published again only when the store's line
  held none of that identity, or one of fewer changes, or of as many with another hash. A
  stolen backup's key-holder forks the member's retired history once the store went back (the
  authority's copy is the pre-rotation one: the fork extends it) with MORE changes than the
  owner's rotation, and has it published; the line's newest supersession of the member is then
  the fork's, which does not descend from the held one (its change at the held count's index
  is another). The re-revoke kept it as the line's word (a longer count), and `supersede_again`
  refused to write the held one under a longer published count: the feed the hub took accepted
  the thief's history (its newest supersession is the fork's) and refused the owner's
  rotation, where the held feed refused the fork. Now a held supersession is published again
  unless the line's newest of that identity is the held one or a history the authority stores
  that descends from it (its change `changes - 1` is the held hash).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from tests.support.histories import encode, extend, honest_history
from troth.errors import CredentialError
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.node.trust import _revoke_again


def test_feed1_a_thiefs_longer_fork_on_the_gone_back_line_does_not_outrank_the_held(
    troth_home: Path,
) -> None:
    """m rotates (2 changes: the owner's); the store goes back; the thief, holding m's first
    key and its committed next one, forks with 3 changes and has that published: the feed the
    hub takes refuses the fork, as the held feed did, and accepts the owner's history."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        owner_h = extend(first, NOW - 5)
        thief_h = extend(extend(first, NOW - 4), NOW - 3)
        owner = verify_history(encode(owner_h.changes), now=NOW)
        thief = verify_history(encode(thief_h.changes), now=NOW)
        assert owner.identifier == thief.identifier
        start = authority.held_feed(now=NOW)
        assert (
            authority.revocations.supersede(owner, now=NOW, charged_to=authority.identifier)
            is not None
        )
        held = authority.held_feed(now=NOW, previous=start)
        with pytest.raises(CredentialError):
            held.check_current(thief)
        feed_gone_back(authority, start.count)
        assert (
            authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
            is not None
        )
        gone = authority.held_feed(now=NOW)
        again = _revoke_again(authority, held, gone, NOW)
        assert again is not None
        with pytest.raises(CredentialError):
            again.check_current(thief)
        again.check_current(owner)
