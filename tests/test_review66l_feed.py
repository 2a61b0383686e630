"""Review 66l, feed: second review of the hosted authority's supersessions after its store went
back (`_revoke_again`, `_descends`, `AuthorityFeed._said`; reviews 65c, 65k, 65r, 65z).

feed 1 (medium; fixed) `_descends` took a held supersession (n, B) as said by the store's line
  when the line's newest supersession of that identity counted more changes and the copy the
  authority's node stores held B, without asking whether that copy is the history the line's
  newest names. The node stores the owner's history when it takes its rotation (stored, then
  published); once the feed's line went back past (n, B), a stolen backup's key-holder forks
  the retired history with more changes and has it published: the line's newest is then the
  fork's, the stored copy is still the owner's (it holds B), and the re-revoke kept the fork
  as the line's word. The feed the hub took accepted the thief's fork and refused the owner's
  history (fewer changes), where the held feed refused the fork: 65k feed 1 again, through the
  stored copy. Now the stored copy counts only when it holds the line's newest change too
  (one line of history holding both: the line's newest descends from the held one).
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


def test_feed1_a_thiefs_fork_is_not_said_by_the_owners_stored_copy(troth_home: Path) -> None:
    """The owner's 2-change rotation stored and published; the feed's line goes back; the
    thief's 3-change fork of the first change is published: the feed the hub takes refuses the
    fork and accepts the owner's history, as the held feed did."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        owner_h = extend(first, NOW - 5)
        owner = verify_history(encode(owner_h.changes), now=NOW)
        thief = verify_history(encode(extend(extend(first, NOW - 4), NOW - 3).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        node.identities.import_history(owner, now=NOW)  # the rotation as the authority takes it
        authority.revocations.supersede(owner, now=NOW, charged_to=authority.identifier)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        with pytest.raises(CredentialError):
            again.check_current(thief)
        again.check_current(owner)
