"""Review 67u, feeds: review 67o's rule for serving a signed feed page again (docs/protocols.md,
"Services": `feed [since]`) attacked.

feeds 1 (low: an honest authority's member refused its feed as a rollback for up to FEED_REUSE
s after the node's clock was put right). The rule measured "signed later" against the pages
not at the feed's end only: a page at the feed's end signed before the node's clock was set
back was not counted. A member holding that page (signed at T), the clock set back 3 s and
the feed grown meanwhile (its pages signed at T - 3 for another member), then the clock put
right: at T + 1 the member was served the cached page signed at T - 3, before its copy, and
refused it, `FEED_ROLLBACK` ("issued before the feed already held"), though the node's clock
was right again. Now every page the node signs, the one at the feed's end too, counts.

feeds 2 (medium: every member's feed sync refused for as long as the node's clock had run
ahead, a day for a day). A page is served again while under FEED_REUSE s old: one signed
while the node's clock ran ahead (the page at the feed's end, asked for by anyone, a
stranger too) is "under 5 s old" until the clock, put right, catches up with it; until then
(or until the feed grows) every member was served it and refused it, `FEED_INVALID`
("issued in the future"): no member synced its revocations. Now a page dated more than the
skew after the node's clock is signed anew.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_feed_budgets import ask, grow_feed
from tests.test_review67o_feeds import _sync

DAY = 86_400


def test_a_page_signed_while_the_clock_was_set_back_is_not_served_after(tmp_path: Path) -> None:
    """feeds 1. A holds the page at the feed's end, signed at T; the node's clock is set back
    3 s while the feed grows and B syncs; at T + 1, the clock right again, A syncs."""

    async def test(net: MemNet) -> None:
        grow_feed(net, 16, 1)
        a, b = await net.member("a"), await net.member("b")
        assert await _sync(a, net) == await _sync(b, net) == 16
        net.clock.advance(10)
        assert await _sync(a, net) == 16  # the page at the end, signed now (T)
        net.clock.advance(-3)  # the node's clock set back
        grow_feed(net, 2, 2)
        assert await _sync(b, net) == 18  # its pages signed at T - 3
        net.clock.advance(4)  # put right: T + 1
        assert await _sync(a, net) == 18  # was FEED_ROLLBACK

    run_memnet(test, tmp_path / "home")


def test_a_page_signed_while_the_clock_ran_ahead_is_not_served_after(tmp_path: Path) -> None:
    """feeds 2. The node's clock runs a day ahead for a moment, while a stranger asks for the
    page at the feed's end; put right, the members sync."""

    async def test(net: MemNet) -> None:
        grow_feed(net, 16, 1)
        a = await net.member("a")
        assert await _sync(a, net) == 16
        stranger = await net.node("stranger")
        net.clock.advance(DAY)  # the node's clock a day ahead
        assert await ask(net, stranger, 16) == "ok"  # the page at the end, signed then
        net.clock.advance(-DAY + 10)  # put right
        assert await _sync(a, net) == 16  # was FEED_INVALID, "issued in the future"
        net.clock.advance(60)
        assert await _sync(a, net) == 16

    run_memnet(test, tmp_path / "home")
