"""Review 67o, feeds: the hosted authority's feed pages as a member's sync meets them
(docs/protocols.md, "Services": `feed [since]`).

feeds 1 (medium: an honest authority's member refused its feed as a rollback). The node serves
a page signed earlier again (its cache, and the page at the feed's end, for up to FEED_REUSE s)
to a member that already holds a page it signed later: a member that synced from further back
(its page signed fresh) then asked for the feed's end got the shared "up to date" page another
member had had signed a second before, and refused it, `FEED_ROLLBACK` ("issued before the
feed already held"): its sync failed, as did `troth revoke`'s and `feed.sync`'s, saying the
honest authority rolled its feed back. The same held inside one sync, its next page served
from the cache signed before the page it continues. Now a page the node signed is served
again only while no page signed since is newer (within the same second pages are equal).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_feed_budgets import ask, grow_feed
from troth import limits
from troth.node.runtime import NodeRuntime
from troth.node.services.authority import FEED_REUSE


async def _sync(runtime: NodeRuntime, net: MemNet) -> int:
    """`runtime` syncs the hub's feed: the count it holds."""
    end = await runtime.channel_to(route(HUB))
    return (await runtime.sync_feed(net.authority.identifier, end)).count


def test_a_page_signed_before_the_members_copy_is_not_served_to_it(tmp_path: Path) -> None:
    """feeds 1. X follows the feed closely and has the page at its end signed; A, which fell
    behind, has a page signed a second later that takes it to the end, and syncs again a
    second after: it was served X's "up to date" page, signed before its copy."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        grow_feed(net, 16, 1)
        close, behind = await net.member("close"), await net.member("behind")
        assert await _sync(close, net) == await _sync(behind, net) == 16
        grow_feed(net, 3, 2)
        assert await _sync(close, net) == 19
        grow_feed(net, 2, 3)
        net.clock.advance(1)
        assert await _sync(close, net) == 21
        net.clock.advance(1)
        assert await _sync(close, net) == 21  # the page at the end, signed now
        net.clock.advance(1)
        assert await _sync(behind, net) == 21  # from 16, signed now: later than that page
        net.clock.advance(1)
        assert await _sync(behind, net) == 21  # was FEED_ROLLBACK

    run_memnet(test, tmp_path / "home")


def test_a_sync_is_not_served_a_page_signed_before_the_one_it_continues(tmp_path: Path) -> None:
    """feeds 1, inside one sync. Another member walked the feed a page a second; five seconds
    after its first page, that one is signed again for A, whose next page was the other's
    second, still cached (four seconds old): signed before the page A just verified."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        grow_feed(net, 16, 1)
        member = await net.member("member")
        assert await _sync(member, net) == 16
        latest = _grow_pages(net, 2)
        walker = await net.member("walker")  # enrolled: it holds the whole feed
        _, second = net.authority.feed_page(now=net.clock.now(), since=16)
        assert await ask(net, walker, 16) == "ok"
        net.clock.advance(1)
        assert await ask(net, walker, second) == "ok"
        net.clock.advance(FEED_REUSE - 1)  # the first page is signed again, not the second
        assert await _sync(member, net) == latest  # was FEED_ROLLBACK

    run_memnet(test, tmp_path / "home")


def _grow_pages(net: MemNet, pages: int) -> int:
    """The hub's feed grown by more than `pages` pages of entries; its length."""
    authority = net.authority
    reason = "r" * 200
    targets = [n.to_bytes(32, "big") for n in range(pages * limits.MAX_FEED_PAGE_BYTES // 256)]
    authority.revoke_credentials(targets, now=net.clock.now(), reason=reason)
    return authority.store.revocation_tip()[0]
