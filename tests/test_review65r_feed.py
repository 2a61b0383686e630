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

feed 3 (medium; fixed by review 65z, hold 1) When the re-revoke fails for good (the feed's
  entry limit reached, an entry over its size limit), `read_hosted` returns None and every
  holder keeps the held feed: its revocations stay enforced, but each identity and credential
  revoked on the store's new line after it went back is never enforced by that holder (the
  hub, a handle, the CLI): the held feed is kept at every refresh, and the hub's decisions do
  not judge its own hosted feed's age. Deny when in doubt would hold both lines' revocations
  (one `VerifiedFeed` per authority in `NodeTrust.feeds`, `standing_feeds`: a redesign), or
  refuse every identity and credential of that authority until an operator resolves it.
  Review 65z took the latter: a re-revoke that fails for good holds the authority as a
  restore does (its node holds no feed of it; `troth authority release-restored`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from tests.support.histories import encode, extend, honest_history
from troth import limits
from troth.errors import AuthorityError, AuthorityFailure, CredentialError
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.node.trust import _revoke_again, read_hosted


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


def test_feed3_a_failed_re_revoke_holds_the_authority(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """m1 revoked, the store gone back past it, m2 revoked on the new line, the feed full (the
    re-revoke cannot write): the authority is held (review 65z, hold 1), so no holder decides
    with the held feed (blind to m2) nor the line (blind to m1): every chain of it refused."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        m1 = verify_history(encode(honest_history(1, start=NOW - 10).changes), now=NOW)
        m2 = verify_history(encode(honest_history(1, start=NOW - 9).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        authority.revoke_identity(m1.identifier, now=NOW)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        authority.revoke_identity(m2.identifier, now=NOW)
        count, _ = authority.store.revocation_tip()
        monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", count)  # the re-revoke cannot write
        assert read_hosted(authority, held, NOW) is None
        assert authority.restore_held() == NOW
        assert read_hosted(authority, None, NOW) is None  # another holder: none either
        with pytest.raises(AuthorityError) as caught:
            authority.feed(now=NOW)
        assert caught.value.reason is AuthorityFailure.RESTORED
        assert authority.release_restored() == NOW  # the operator resolves it
        assert read_hosted(authority, None, NOW) is not None
