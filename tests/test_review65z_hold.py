"""Review 65z, hold: the hold a restore of node.db puts on the hosted authority (review 65o,
feed 2), and review 65r's feed 3 (a strict xfail) made one.

hold 1 (medium: the new line's revocations never enforced) The hosted authority's store went
  back past the feed a holder held (the runtime's `NodeTrust`, a `troth.Node` handle, the
  CLI's `NodeFeeds`), a member revoked on the new line, and the re-revoke of what the store
  lost failed for good (the feed's entry limit reached, an entry over its size limit):
  `read_hosted` returned None and each holder kept the held feed at every refresh, so the
  member revoked on the new line was admitted by the hub's decisions for good (65r, feed 3).
  Now such a failure holds the authority as a restore does (`SqliteAuthorityStore.hold`,
  `restore_held` no longer gated on a restore found): each holder drops its feed (every
  chain of it refused), it issues nothing and serves no page, and `troth authority
  release-restored` lifts it. A failure of the database (busy, I/O) keeps the held feed and
  is tried again at the next read, as before.

hold 2 (low: the operator could not tell why members are refused) `troth node status` showed
  the restores found, not the hold: a hold placed by a failed re-revoke (hold 1) showed
  nothing, and a restore released still read "its members are refused here until then". Now
  the status says since when the hosted authority is held (`authority_held`), and the
  authority line what to do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from tests.support.histories import encode, honest_history
from tests.support.nodes import MemNet, run_memnet
from troth import limits
from troth.cli.node_cmds import _authority
from troth.cli.output import Reporter
from troth.clock import FixedClock, SystemClock
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.node.control import perform
from troth.node.services.node_policies import NodeFeeds
from troth.node.trust import NodeTrust


def test_hold1_a_failed_re_revoke_leaves_no_holder_the_held_feed(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime's trust and the CLI's feeds held the line revoking m1; the store went back,
    m2 revoked on its new line, the feed full: neither keeps the feed blind to m2."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        m1 = verify_history(encode(honest_history(1, start=NOW - 10).changes), now=NOW)
        m2 = verify_history(encode(honest_history(1, start=NOW - 9).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        trust = NodeTrust(node, authority)
        trust.reload(NOW)
        feeds = NodeFeeds(node, FixedClock(NOW))
        authority.revoke_identity(m1.identifier, now=NOW)
        assert trust.refresh_hosted(NOW)
        assert trust.feeds[authority.identifier].identity_revoked(m1.identifier.digest)
        held = feeds(authority.identifier)
        assert held is not None
        assert held.identity_revoked(m1.identifier.digest)
        feed_gone_back(authority, start.count)
        authority.revoke_identity(m2.identifier, now=NOW)
        count, _ = authority.store.revocation_tip()
        monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", count)  # the re-revoke cannot write
        trust.refresh_hosted(NOW)
        assert authority.identifier not in trust.feeds
        assert feeds(authority.identifier) is None
        trust.detach()
    with troth.Node.open("auth") as handle:  # another process: held at once
        assert handle.feed(authority.identifier) is None


def test_hold2_node_status_says_the_authority_is_held(tmp_path: Path) -> None:
    """A running hub's status says since when its authority is held, and no longer once
    released; the CLI's authority line says what to do."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        assert hub.trust.hosted is not None
        assert hub.status()["authority_held"] is None
        hub.trust.hosted.store.hold(NOW)  # as a failed re-revoke or a restore found does
        assert hub.status()["authority_held"] == NOW
        reporter = Reporter(False)
        shown = _authority(hub.status(), reporter)
        assert "troth authority release-restored" in shown
        assert hub.trust.hosted.release_restored() == NOW
        assert hub.status()["authority_held"] is None
        assert _authority(hub.status(), reporter) == reporter.label(hub.status()["authority"])

    run_memnet(test, tmp_path)


def test_hold3_a_feed_sync_of_the_held_authority_is_answered(tmp_path: Path) -> None:
    """The hub's authority held (its feed dropped): the `feed.sync` a revocation made here asks
    of every running node (the operator's recovery: revoke again, then release) answers."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hosted = hub.trust.hosted
        assert hosted is not None
        now = hub.clock.now()
        hosted.store.hold(now)
        hub.trust.drop_feed(hosted.identifier)  # as `refresh_hosted` does on a hold
        assert await perform(hub, "feed.sync", {"authority": str(hosted.identifier)}) is None
        assert hosted.identifier not in hub.trust.feeds
        hosted.release_restored()
        assert await perform(hub, "feed.sync", {"authority": str(hosted.identifier)}) >= 0
        assert hosted.identifier in hub.trust.feeds

    run_memnet(test, tmp_path)


def test_hold1_a_handle_whose_re_revoke_fails_for_good_holds_no_feed(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `troth.Node` handle held the line revoking m1 (its own re-read, `Node.feed`): the
    store gone back, m2 revoked on the new line, the feed full: the handle holds no feed."""
    with troth.Node.open("auth") as handle:
        acme = handle.create_authority()
        now = SystemClock().now()
        m1 = verify_history(encode(honest_history(1, start=now - 10).changes), now=now)
        m2 = verify_history(encode(honest_history(1, start=now - 9).changes), now=now)
        start = handle.feed(acme.identifier)
        assert start is not None
        acme.revoke_identity(m1.identifier)
        held = handle.feed(acme.identifier)
        assert held is not None
        assert held.identity_revoked(m1.identifier.digest)
        with open_node("auth") as node:  # the store goes back under the open handle
            authority = node.authority()
            feed_gone_back(authority, start.count)
            authority.revoke_identity(m2.identifier, now=now)
            count, _ = authority.store.revocation_tip()
        monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", count)  # the re-revoke cannot write
        assert handle.feed(acme.identifier) is None
        assert handle.feed(acme.identifier) is None  # held: not the old line at the next call
