"""Review 65r, refuted: attacks on the hosted feed's supersessions after its store went back
that the code withstood (see tests/test_review65r_feed.py for those that worked).

refuted 1: the owner rotates twice while the store is back (its node stores each history):
  the re-revoke publishes nothing again, the line's newest (4 changes) descending from the
  held (2) one; every older history stays refused.
refuted 2: the re-revoke run again and again over a line holding a thief's fork of the held
  count and the held one published after it writes nothing more (the feed does not grow at
  each refresh).
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


def test_refuted1_the_owner_rotating_twice_while_the_store_is_back(troth_home: Path) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        node.identities.create(now=NOW, name="m")
        one = node.identities.get("m", now=NOW).identity
        start = authority.held_feed(now=NOW)
        node.identities.rotate("m", now=NOW)
        two = node.identities.get("m", now=NOW).identity
        authority.revocations.supersede(two, now=NOW)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        node.identities.rotate("m", now=NOW)
        three = node.identities.get("m", now=NOW).identity
        authority.revocations.supersede(three, now=NOW)
        node.identities.rotate("m", now=NOW)
        four = node.identities.get("m", now=NOW).identity
        authority.revocations.supersede(four, now=NOW)
        gone = authority.held_feed(now=NOW)
        again = _revoke_again(authority, held, gone, NOW)
        assert again is not None
        assert again.count == gone.count
        again.check_current(four)
        for older in (one, two, three):
            with pytest.raises(CredentialError):
                again.check_current(older)


def test_refuted2_the_re_revoke_run_again_writes_nothing_more(troth_home: Path) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        owner = verify_history(encode(extend(first, NOW - 5).changes), now=NOW)
        thief = verify_history(encode(extend(first, NOW - 4).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        authority.revocations.supersede(owner, now=NOW, charged_to=authority.identifier)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        authority.revocations.supersede(thief, now=NOW, charged_to=authority.identifier)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        for _ in range(3):
            feed = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
            assert feed is not None
            assert feed.count == again.count
        with pytest.raises(CredentialError):
            again.check_current(thief)
        again.check_current(owner)
