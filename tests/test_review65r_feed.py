"""Review 65r, feed: the hosted authority's supersessions after its store went back (follow-up
of 65c and 65k: `_revoke_again`, `AuthorityFeed.supersede_again`).

feed 1 (medium: the owner's rotation never published, its retired history accepted) The
  store's `latest_supersession` took the supersession of the most changes as the newest, where
  every feed reader (`VerifiedFeed.supersession`: `check_current` at verifiers, the hub,
  members syncing pages) takes the last one written. Once 65k's re-revoke published the held
  (2, B) again over a thief's (3, A') on the gone-back line, the owner's next rotation (3, C)
  was taken as said already ((3, A') counts 3) and never written: the feed's newest stayed
  (2, B) and the owner's retired 2-change history (its old key: a stolen backup's) passed
  `check_current` again. Now the store's newest is the feed's (the highest sequence), and a
  history is published only over a newest it descends from: the thief's fork, whose (3, A')
  the feed no longer names newest, is not published again over the held one (which, by change
  count, it would be).

feed 2 (low: the store's word at a change count was any row's) `supersession_hash` picked an
  arbitrary row when two supersessions of one identity share a change count (a thief's (2, A')
  on the gone-back line, the held (2, B) published again after it): the store read the retired
  one where the feed (`VerifiedFeed.attests`: the newest at that index) reads the other. Now
  the newest at that count, as the feed.
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


def test_feed1_the_owners_rotation_after_a_re_published_supersession_is_published(
    troth_home: Path,
) -> None:
    """(2, B) published again over the thief's (3, A'): the owner's rotation to 3 changes is
    written, its 2-change history refused, and the thief's fork is not written again."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        owner_h = extend(first, NOW - 5)
        thief_h = extend(extend(first, NOW - 4), NOW - 3)
        owner = verify_history(encode(owner_h.changes), now=NOW)
        thief = verify_history(encode(thief_h.changes), now=NOW)
        owner3 = verify_history(encode(extend(owner_h, NOW - 2).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        authority.revocations.supersede(owner, now=NOW, charged_to=authority.identifier)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        # the thief asks again under its fork: not published over the held one
        authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
        feed = authority.held_feed(now=NOW, previous=again)
        with pytest.raises(CredentialError):
            feed.check_current(thief)
        # the owner rotates: published, its retired 2-change history refused
        authority.revocations.supersede(owner3, now=NOW, charged_to=authority.identifier)
        feed = authority.held_feed(now=NOW, previous=feed)
        feed.check_current(owner3)
        with pytest.raises(CredentialError):
            feed.check_current(owner)
        with pytest.raises(CredentialError):
            feed.check_current(thief)


def test_feed2_the_stores_word_at_a_change_count_is_the_newest(troth_home: Path) -> None:
    """A thief's 2-change fork on the gone-back line, the held (2, B) published again after
    it: the store names B at 2 changes, as the feed does."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        owner = verify_history(encode(extend(first, NOW - 5).changes), now=NOW)
        thief = verify_history(encode(extend(first, NOW - 4).changes), now=NOW)
        digest = owner.identifier.digest
        start = authority.held_feed(now=NOW)
        authority.revocations.supersede(owner, now=NOW, charged_to=authority.identifier)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        again.check_current(owner)
        assert again.attests(digest, 1, owner.current_change_hash)
        assert authority.store.supersession_hash(digest, 2) == owner.current_change_hash
