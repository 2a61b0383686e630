"""Review 68e, floor: the rule for serving a signed feed page again (`_current`, `_newest`:
reviews 67o and 67u, feeds 1) attacked across a restart of the node.

floor 1 (low: an honest authority's member refused its feed as a rollback for up to FEED_REUSE
s after a restart of the node with its clock set back, then put right). `_newest`, when the
newest page was signed, lives in the service's memory only. A member holding the page at the
feed's end signed at T; the node restarted with its clock set back 3 s (a boot before the
clock is synced), the feed grown and another member synced (its pages signed at T - 3, kept
for reuse); the clock put right: at T + 1 the member was served the cached page signed at
T - 3, before its copy, and refused it `FEED_ROLLBACK` ("issued before the feed already
held") though the authority is honest and the node's clock right again: review 67u feeds 1's
case, the restart forgetting the page at T. For up to FEED_REUSE s (then the page is signed
anew). Now the newest signing is unknown at a start, taken as the skew after the first page
asked for: until the clock passes it, only a page signed in the same second is served again
(a page signed before the start, by a clock set back since, may be held: one set back further
than the skew makes every new page a rollback to its holder anyway).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_feed_budgets import grow_feed
from tests.test_review67o_feeds import _sync
from troth.node.services import service_address
from troth.node.services.authority import AuthorityService


def _restart(net: MemNet) -> None:
    """The hub's authority service started again (what a restart of the node makes anew)."""
    assert net.hub is not None
    host = net.hub.host
    old = host.services["authority"]
    assert isinstance(old, AuthorityService)
    host.router.unregister(service_address(old.name))
    host.add(AuthorityService(old.authority, old.trust, old.worker, find_channel=old.find_channel))


def test_a_restart_with_the_clock_set_back_does_not_roll_a_member_back(tmp_path: Path) -> None:
    """floor 1. A holds the page at the feed's end, signed at T; the node restarts with its
    clock 3 s behind while the feed grows and B syncs; at T + 1, the clock right, A syncs."""

    async def test(net: MemNet) -> None:
        grow_feed(net, 16, 1)
        a, b = await net.member("a"), await net.member("b")
        assert await _sync(a, net) == await _sync(b, net) == 16
        net.clock.advance(10)
        assert await _sync(a, net) == 16  # the page at the end, signed now (T)
        net.clock.advance(-3)
        _restart(net)
        grow_feed(net, 2, 2)
        assert await _sync(b, net) == 18  # its pages signed at T - 3
        net.clock.advance(4)  # put right: T + 1
        assert await _sync(a, net) == 18  # FEED_ROLLBACK

    run_memnet(test, tmp_path / "home")
