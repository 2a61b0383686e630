"""Review 71u (area: wave3d): attacks on the share of feed-page signings a ticket's members take
together (review 71p, pools 1) that did not work, kept as passing tests
(tests/test_review71u_wave3d.py holds the one that did)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.nodes import MemNet, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from tests.test_feed_budgets import ask
from tests.test_review71p_pools import fleet, grown, pages
from tests.test_review71u_wave3d import counted_holder_reads, hub_service
from troth import limits
from troth.credentials import Attributes
from troth.errors import ChannelError
from troth.identity import Identifier
from troth.node.runtime import NodeRuntime
from troth.node.services.authority import _Class

_BURST = limits.FEED_PAGE_SIGNS_PER_CALLER_BURST
_SHARE = 2 * limits.FEED_PAGE_SIGNS_PER_TICKET
_POOL = 2 * limits.FEED_PAGE_SIGNS_PER_NODE


def _share(ticket: bytes) -> Callable[[], bytes | None]:
    """A page's share, `ticket`'s (what `AuthorityService._ticket` reads)."""
    return lambda: ticket


def _charged(callers: _Class, source: bytes, ticket: bytes, count: int, now: int) -> list[bool]:
    """`count` pages, each from a `since` of its own, charged to `source` of `ticket`."""
    return [callers.charge(source, n, 64, now, _share(ticket)) for n in range(1, count + 1)]


def test_refunds_lift_no_budget_past_its_burst() -> None:
    """Tried: a member of a ticket of many uses has a hundred pages refused while the members'
    pool is spent (each refunds its own budget and its ticket's share), hoping to bank more
    than a burst. A refund fills a budget up to its burst only: once the pool refilled it gets
    its own burst (8), a fleet mate the rest of the share (2), then both are "busy"."""
    callers = _Class.of(limits.FEED_PAGE_SIGNS_PER_NODE)
    while callers.pool.take(None, 1, now=NOW):
        pass
    ticket, member, mate = b"\x07" * 32, b"\x01" * 32, b"\x02" * 32
    assert not any(_charged(callers, member, ticket, 100, NOW))
    later = NOW + 2  # the pool refilled; refunds gave back the rest
    assert _charged(callers, member, ticket, _BURST + 1, later) == [True] * _BURST + [False]
    rest = _SHARE - _BURST
    assert _charged(callers, mate, ticket, rest + 1, later) == [True] * rest + [False]


def test_more_tickets_than_are_kept_lock_no_newcomer_out() -> None:
    """Tried: one ticket creator (tickets cost it nothing) makes more than
    MAX_FEED_SIGN_SOURCES tickets of many uses and has a member of each ask for a page in one
    second, hoping to fill the table of shares (it refuses a new ticket while every kept one
    is in use) and lock a newcomer's ticket out. A share stays spent only for a page signed,
    and it refills within the second after: the members' pool (its burst, 40) signs the first
    pages and refuses the rest, which spend nothing, so at most the pool's burst of shares is
    in use at once, and the next second a newcomer's ticket is served."""
    callers = _Class.of(limits.FEED_PAGE_SIGNS_PER_NODE)
    keys = [n.to_bytes(32, "big") for n in range(limits.MAX_FEED_SIGN_SOURCES + 1)]
    served = [callers.charge(key, 1, 64, NOW, _share(key)) for key in keys]
    assert served.count(True) == _POOL
    newcomer = b"\xff" * 32
    assert callers.charge(newcomer, 1, 64, NOW + 1, _share(newcomer))


def _delegate_of(runtime: NodeRuntime, delegator: str, name: str) -> None:
    """Local identity `name`, delegated the fleet's attributes by local identity `delegator`."""
    now = runtime.clock.now()
    subject = runtime.node.identities.create(now=now, name=name).identifier
    chain = runtime.node.wallet.delegate(
        delegator,
        to=subject,
        attributes=Attributes({"agents.team": "support"}),
        now=now,
        ttl=600,
        purpose="a delegate's delegate",
    )
    runtime.node.wallet.hold(name, chain, now=now)


def test_a_delegates_delegate_spends_its_root_members_share(tmp_path: Path) -> None:
    """Tried: member b of a ticket of many uses spends its own budget (8 of its ticket's share
    of 10), then asks as a delegate of a delegate it minted offline (auth -> b -> d -> dd),
    hoping the chain's last delegator, no member of this authority, leaves it a budget of its
    own outside the share. dd pays as b's delegates (the member at the root of its chain) and
    its ticket's share with them: 2 pages, then "busy"."""

    async def test(net: MemNet) -> None:
        b = await fleet(net, "b", 1)
        throwaway_delegate(b, "d", {"agents.team": "support"})
        _delegate_of(b, "d", "dd")
        starts = await grown(net)
        assert await pages(net, b, starts) == _BURST
        assert await pages(net, b, starts, identity="dd") == _SHARE - _BURST

    run_memnet(test, tmp_path / "home", budget=60)


def test_a_removed_fleet_member_pays_no_single_use_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: a fleet escapes its ticket's share by a member removed (no row: `quota_holder`
    names the member itself, as a single-use member's) whose credential still verifies. Only an
    admin removes a member (`remove_member`, `revoke_identity`: no member request does), and the
    removal revokes every credential a verifier still accepts and asks the hosting node to
    re-read its feed (`remove_member_as_authority`): then t1's channel showing its credential
    is refused at the handshake ("revoked"). Showing none, it is a stranger, as any identity
    is: its pages come from the strangers' pool (the members' pool untouched), and a stranger's
    page reads no member row."""

    async def test(net: MemNet) -> None:
        members = await fleet(net, "t", 2)
        starts = await grown(net)
        t1 = Identifier(members.node.identities.find("t1").identifier)
        net.authority.remove_member(t1, now=net.clock.now())
        assert net.hub is not None
        await net.hub.refresh_feeds()
        with pytest.raises(ChannelError, match="revoked"):
            await ask(net, members, starts.pop(), identity="t1")
        service = hub_service(net)
        reads = counted_holder_reads(service, monkeypatch)
        stranger = await net.node("stranger")
        strangers = 2 * limits.FEED_PAGE_SIGNS_FOR_STRANGERS
        assert await pages(net, stranger, starts) == min(_BURST, strangers)
        assert reads == []
        now = net.clock.now()
        assert [service._members.pool.take(None, _POOL, now=now)] == [True]

    run_memnet(test, tmp_path / "home", budget=60)
