"""Review 64p, feed: review 64j's re-revoke (troth.node.trust `_revoke_again`, its feed 1), which
the hub runs when its hosted authority's store went back past the feed it held.

feed 1 (medium: the hub's worker held for one commit per revoked identity; not atomic) The
re-revoke revoked each identity the store's line lacked in a transaction of its own: one
commit, one fsync under `durability = full`, one raise of the rollback guard each. A held feed
of 1,000 revoked identities gone back took ~7 s here (the bulk revocation that made them
~0.13 s), 10,000 over a minute, in one `refresh_hosted` on the hub's worker; a failure
part way (a full disk) left some revoked again and the rest not. Fixed: every revocation made
again is written in one transaction (one commit, one raise of the guard), all or none.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from troth.credentials import RevocationKind
from troth.node import init_node, open_node
from troth.node.trust import _revoke_again
from troth.storage.rollback import decode_guard, guard_path


def test_feed1_the_re_revoke_is_one_commit(troth_home: Path) -> None:
    """50 identities and 5 credentials revoked, the store gone back past all of them: revoked
    again in one transaction, so the rollback guard (raised once per commit that counts a
    feed entry) gets one record more, not 51."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        start = authority.held_feed(now=NOW)
        identities = [os.urandom(32) for _ in range(50)]
        credentials = [os.urandom(32) for _ in range(5)]
        authority.revocations.revoke_many(
            RevocationKind.IDENTITY, identities, by=authority.identifier, now=NOW
        )
        authority.revoke_credentials(credentials, now=NOW)
        held = authority.held_feed(now=NOW, previous=start)
        store = feed_gone_back(authority, start.count)
        gone = authority.held_feed(now=NOW)
        guard = guard_path(store._db.path)
        before = decode_guard(guard.read_bytes())[0]
        again = _revoke_again(authority, held, gone, NOW)
        assert again is not None
        assert all(again.identity_revoked(d) for d in identities)
        assert all(again.credential_revoked(h) for h in credentials)
        assert decode_guard(guard.read_bytes())[0] == before + 1
