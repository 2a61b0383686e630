"""Review 71u (area: wave3d): the share of feed-page signings the members one ticket of many uses
enrolled take together at a hosted authority's service (review 71p, pools 1).

1. (a page refused reads its member's row for free, low) The share a page is charged to is its
   member's quota holder, one row of the authority's store read per page (`quota_holder`). It
   was read before any budget was asked: a member whose own budget was spent, or any member
   while the members' pool was spent, made the node read that row for every page it asked,
   each refused and so spending nothing: a read no budget bounds, on top of what any request
   costs. Now the holder is read only for a page the member's own budget (or its sync's free
   walk) and the pool would sign, and at most once a second per member (a fleet refused for its
   share, which spends nothing, asks again at no cost of its own); a read that fails spends
   nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.nodes import MemNet, run_memnet
from tests.support.spies import recorded_calls
from tests.test_feed_budgets import ask
from tests.test_review71p_pools import fleet, grown, pages
from troth import limits
from troth.errors import StorageError
from troth.node.services.authority import AuthorityService, _Class

_BURST = limits.FEED_PAGE_SIGNS_PER_CALLER_BURST


def hub_service(net: MemNet) -> AuthorityService:
    """The hub's authority service."""
    assert net.hub is not None
    service = net.hub.host.services["authority"]
    assert isinstance(service, AuthorityService)
    return service


def counted_holder_reads(service: AuthorityService, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The member rows the service reads from now on (each `get_member`'s identifier)."""
    return recorded_calls(monkeypatch, service.authority.store, "get_member")


def test_a_refused_page_reads_no_member_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71u wave3d 1: member t of a ticket of three uses spends its own budget, then asks a
    burst more (each refused: its own budget); t1 asks a burst while the share has 2 left (6
    refused for the share); the members' pool spent, t2 asks a burst (each refused: the pool).
    The node read a member's row for each of those 8 + 8 + 8 pages; now for t1's first page
    only (the holder is read once a second per member, and only for a page its own budget and
    the pool would sign)."""

    async def test(net: MemNet) -> None:
        members = await fleet(net, "t", 3, uses=3)
        starts = await grown(net)
        service = hub_service(net)
        assert await pages(net, members, starts, identity="t") == _BURST
        reads = counted_holder_reads(service, monkeypatch)
        assert await pages(net, members, starts, identity="t") == 0
        assert reads == []
        share = 2 * limits.FEED_PAGE_SIGNS_PER_TICKET
        assert await pages(net, members, starts, identity="t1") == share - _BURST
        assert len(reads) == 1
        now = net.clock.now()
        while service._members.pool.take(None, 1, now=now):  # other members spend the rest
            pass
        assert await pages(net, members, starts, identity="t2") == 0
        assert len(reads) == 1
        net.clock.advance(1)  # a new second: the share regained, t1's holder read again
        assert await ask(net, members, starts.pop(), identity="t1") == "ok"
        assert len(reads) == 2

    run_memnet(test, tmp_path / "home", budget=60)


def test_a_failed_holder_read_spends_nothing() -> None:
    """71u wave3d 1: the holder, now read after the member's own budget and the pool were
    taken, fails to read (a damaged row: StorageError): both are given back, so the member
    still has its whole burst and the pool all of its own."""
    callers = _Class.of(limits.FEED_PAGE_SIGNS_PER_NODE)

    def damaged() -> bytes | None:
        raise StorageError("a damaged member row")

    source = b"\x01" * 32
    with pytest.raises(StorageError):
        callers.charge(source, 0, 64, NOW, damaged)
    served = [callers.charge(source, n, 64, NOW) for n in range(1, _BURST + 2)]
    assert served == [True] * _BURST + [False]
    pool = 2 * limits.FEED_PAGE_SIGNS_PER_NODE - _BURST
    assert [callers.pool.take(None, 1, now=NOW) for _ in range(pool + 1)] == [True] * pool + [False]
