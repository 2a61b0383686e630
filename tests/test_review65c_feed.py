"""Review 65c, feed: review 64j's re-revoke (troth.node.trust `_revoke_again`), which the hub
runs when its hosted authority's store went back past the feed it held.

feed 1 (medium: a member's retired history accepted again where the hub's feed decides) The
re-revoke made again every identity and credential revocation the held feed had and the
store's line lacked, but not its supersessions (kind-3 entries: a member's rotation, published
as superseding its older histories; the authority's own). The feed the hub took in place of
the held one no longer said the member's newer history supersedes the older: the stale
history (its retired key: a stolen backup's) passed `check_current` at every decision reading
the hub's feed, and every node syncing from the hub got a line without it. Fixed: each
supersession the held feed has and the line lacks (or holds of fewer changes) is published
again, with the held entry's change count and hash, in the same transaction as the
revocations (`AuthorityFeed.supersede_again`).

feed 2 (high: revoked members admitted again by a handle's decisions and the CLI's) 64j's
re-revoke ran only where the runtime holds the hosted feed (`NodeTrust.refresh_hosted`); a
`troth.Node` handle (`Node.feed`: what a `DecisionPoint(store, node.feed)` and the handle's
verifier read) and `NodeFeeds` (the CLI, the local MCP gate) hold it across calls too and took
the store's shorter line whole when the store went back under them (another process put rows
back): every member revoked after the copy was admitted again by their decisions. Fixed: one
`troth.node.trust.read_hosted` for every holder of a hosted feed, with 64j's re-revoke.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from troth.clock import SystemClock
from troth.errors import CredentialError
from troth.node import init_node, open_node
from troth.node.services.node_policies import NodeFeeds
from troth.node.trust import _revoke_again


def test_feed1_the_re_revoke_keeps_the_held_feeds_supersessions(troth_home: Path) -> None:
    """A member's rotation published (superseding its first history), the store gone back past
    it: the feed the hub takes still refuses the member's older history."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        node.identities.create(now=NOW, name="m")
        older = node.identities.get("m", now=NOW).identity
        start = authority.held_feed(now=NOW)
        node.identities.rotate("m", now=NOW)
        newer = node.identities.get("m", now=NOW).identity
        assert authority.revocations.supersede(newer, now=NOW) is not None
        held = authority.held_feed(now=NOW, previous=start)
        with pytest.raises(CredentialError):
            held.check_current(older)
        feed_gone_back(authority, start.count)
        gone = authority.held_feed(now=NOW)
        assert gone.supersession(newer.identifier) is None
        again = _revoke_again(authority, held, gone, NOW)
        assert again is not None
        assert again.supersession(newer.identifier) == held.supersession(newer.identifier)
        with pytest.raises(CredentialError):
            again.check_current(older)
        again.check_current(newer)


def test_feed2_a_handles_feed_keeps_its_revocations_when_the_store_goes_back(
    troth_home: Path,
) -> None:
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority().identifier
        member = acme.identities.create("member").identifier
        start = acme.feed(authority)
        assert start is not None
        acme.authority().revoke_identity(member)
        held = acme.feed(authority)
        assert held is not None
        assert held.identity_revoked(member.digest)
        with open_node("acme") as node:  # another process puts the feed's rows back
            hosted = node.hosted_authority()
            assert hosted is not None
            feeds = NodeFeeds(node, SystemClock())  # the CLI's, the local MCP gate's
            assert feeds(authority) is not None
            feed_gone_back(hosted, start.count)
            feed = feeds(authority)
            assert feed is not None
            assert feed.identity_revoked(member.digest)
            feed_gone_back(hosted, start.count)  # gone back again under the handle
        now = acme.feed(authority)  # what the handle's decisions read
        assert now is not None
        assert now.identity_revoked(member.digest)
