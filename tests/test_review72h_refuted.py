"""Review 72h (area: payers): attacks on review 72d's feed-page payers (`AuthorityService._payer`:
an anchor pays from its own identifier; `_Class.walks`: only a page signed for its source starts
a sync) that did not work, kept as passing tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.conftest import NOW
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review56m_relayed import ACME, LIMITED, bogus_enroll, relayed_acme, spend
from tests.test_review72d_pools import _LENGTH, _PAGE, _apart, _FourPerPage, member, service
from troth import limits
from troth.authority.revoking import delegates_of
from troth.credentials import Attributes
from troth.errors import ChannelFailure, CredentialError, CredentialFailure, RemoteError
from troth.identity import Identifier
from troth.limits import (
    FEED_PAGE_SIGNS_PER_CALLER,
    FEED_PAGE_SIGNS_PER_CALLER_BURST,
    FEED_PAGE_SIGNS_PER_TICKET,
)
from troth.node import Node
from troth.node.access import PeerCaller, Standing
from troth.node.rates import ByteBudgets
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.authority import AuthorityService, _Payer
from troth.routing import parse_route

AUTHORITY = service_address("authority")
BURST = FEED_PAGE_SIGNS_PER_CALLER_BURST


async def _page(node: NodeRuntime, since: int, at: NodeRuntime | None = None) -> None:
    """A page of the hub's feed from `since` (of `at`'s, reached through the hub's relay, when
    given), asked by `node` as itself."""
    if at is None:
        end = await node.channel_to(route(HUB))
    else:
        end = await node.channel_to(parse_route(ACME), expect=at.node.authority().identifier)
    await call(node.router, (end.enc, AUTHORITY), "feed", [since])


async def _signed(node: NodeRuntime, starts: range, at: NodeRuntime | None = None) -> int:
    """How many of the pages from `starts` the hub (or `at`: `_page`) signed for `node` before
    its first "busy"."""
    for count, since in enumerate(starts):
        try:
            await _page(node, since, at)
        except RemoteError as exc:
            if "busy" not in str(exc):
                raise
            return count
    return len(starts)


async def _authority_node(net: MemNet, name: str) -> tuple[NodeRuntime, Callable[[], str]]:
    """A node hosting authority `name`, listening at /tcp/NAME:4000, and a maker of its tickets
    (attributes NAME.team=desk)."""

    def create(node: Node) -> None:
        node.create_authority(name, now=net.clock.now())

    runtime = await net.node(name, listen=(name, 4000), prepare=create)
    authority = runtime.node.authority()

    def ticket() -> str:
        return str(
            authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({f"{name}.team": "desk"}),
                address=f"/tcp/{name}:4000",
                now=net.clock.now(),
            )
        )

    return runtime, ticket


def test_a_real_anchor_pays_one_budget_and_the_other_authoritys_members_their_own(
    tmp_path: Path,
) -> None:
    """Tried, end to end: hub and globex, two authorities on nodes of their own, trust each
    other (the hub enrolled with globex; globex trusts the hub, and is no member of it); the
    hub trusts initech, a third, too. Globex, an anchor at the hub, asks for pages showing a
    chain from d1, a member of initech's delegating to globex's own identity (one from g, its
    own member, is refused as a cycle: review 54q, delegation 4; verifiers refuse such a
    chain too, review 48j: 72d's attack needs another authority's members): its own
    burst is signed, then "busy"; showing one from d2 (a fresh member, sorting first: before
    review 72d a fresh budget of the members' pool), still "busy". g, globex's member, and
    d1, initech's, asking the hub directly are strangers there, paying their own budgets and
    the strangers' pool: g's page is not charged to globex (its whole burst is signed after
    it), and d1, refused once the strangers' pool is spent, leaves globex's pages signed.
    Globex then enrolls with the hub and refreshes its credential (its enroll and refresh
    requests charged to its own budget for them): a member of the hub now, whose pages are
    still charged to its spent budget (the account of a member is its identifier, as an
    anchor's is)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        globex, globex_ticket = await _authority_node(net, "globex")
        _, initech_ticket = await _authority_node(net, "initech")
        me = net.identifier(globex)
        assert me == globex.node.authority().identifier  # it connects as the authority
        await hub.enroll(globex_ticket(), "hub")  # the hub trusts globex
        await hub.enroll(initech_ticket(), "hub")  # and initech
        globex.node.wallet.trust(net.authority.identifier, HUB, now=net.clock.now())
        await globex.reload()  # globex trusts the hub (it is no member of it)
        g = await net.node("g")
        await g.enroll(globex_ticket(), "g")
        with pytest.raises(CredentialError) as refused:  # (as every verifier: review 48j)
            g.node.wallet.delegate(
                "g", to=me, attributes=Attributes({}), now=net.clock.now(), ttl=60, purpose="p"
            )
        assert refused.value.reason is CredentialFailure.CYCLE
        members = [await net.node(f"d{n}") for n in range(2)]
        for each in members:
            await each.enroll(initech_ticket(), each.name)
        members.sort(key=lambda each: net.identifier(each).digest, reverse=True)
        d1, d2 = members  # d2 sorts first

        async def shows(member: NodeRuntime) -> None:
            chain = member.node.wallet.delegate(
                member.name,
                to=me,
                attributes=Attributes({"initech.team": "desk"}),
                now=net.clock.now(),
                ttl=600 + len(globex.node.wallet.held(globex.name)),  # the newest expires last
                purpose="pages",
            )
            globex.node.wallet.hold(globex.name, chain, now=net.clock.now())
            await globex.reload()
            for end in list(globex.channels.ends.values()):  # shown on a new channel
                globex.channels.close_end(end, ChannelFailure.NORMAL, "shows another chain")

        for _ in range(4 * BURST):
            net.authority.revoke_credential(os.urandom(32), now=net.clock.now())
        await hub.refresh_feeds()
        await globex.refresh_feeds()  # its syncs from now on ask for the feed's end: free
        net.clock.advance(BURST // FEED_PAGE_SIGNS_PER_CALLER)  # every budget refilled
        await shows(d1)
        assert await _signed(g, range(1)) == 1
        assert await _signed(d1, range(1, BURST + 1)) == BURST - 1  # the strangers' pool spent
        assert await _signed(globex, range(BURST + 1, 2 * BURST + 2)) == BURST  # not g's
        await shows(d2)  # a fresh member of initech's, sorting first
        assert await _signed(globex, range(2 * BURST + 2, 2 * BURST + 3)) == 0  # its own still
        peers = [
            end.channel.peer
            for end in hub.channels.ends.values()
            if end.channel.peer is not None and end.channel.peer.identifier == me
        ]
        judged = hub.trust.standing(peers[-1], net.clock.now())
        assert judged.is_anchor
        assert net.identifier(d2) in {c.links[0].subject for c in judged.credentials}
        # (c) globex, an anchor at the hub, enrolls with it and refreshes (its requests its
        # own budget's): it is a member now, whose pages draw on the same spent budget
        await globex.enroll(net.ticket(), globex.name)
        assert await globex.refresh_credentials(margin=10**6) == 1
        assert await _signed(globex, range(2 * BURST + 3, 2 * BURST + 4)) == 0

    run_memnet(test, tmp_path / "home", budget=60)


def _signed_here(authority: AuthorityService, payer: _Payer, starts: list[int]) -> int:
    """How many of the pages from `starts` the service signs (or serves) for `payer` before
    its first "busy" (sans-IO: `_page` on the storage thread)."""
    for count, since in enumerate(starts):
        try:
            authority._page(since, NOW, payer)
        except RemoteError:
            return count
    return len(starts)


def test_a_sync_begun_on_a_page_served_again_walks_no_cheaper() -> None:
    """Tried (72d pools 1 made a page served again from the cache start no sync): a source with
    no sync asks for a page another member had signed (served again), then for the page after
    it, hoping to continue that "sync" free and keep its own budget whole. The page after it
    is charged to its own budget (it starts its sync), so its burst signs exactly BURST pages
    (before 72d a walk begun on the free page made it free: one more)."""
    authority = service()
    other, source = member(authority, 1), member(authority, 2)
    authority._page(0, NOW, other)  # signed for the other, kept
    authority._page(0, NOW, source)  # served again: no sync of its own
    assert source.source not in authority._members.walks
    assert _signed_here(authority, source, [_PAGE, *_apart(BURST)]) == BURST


def test_a_sync_moved_by_pages_served_again_walks_the_feed_once_a_window() -> None:
    """Tried: a source whose sync walked the whole feed (its own budget spent) moves it back to
    the start on a page another member signs (served again: free, it moves a sync on), to
    have the feed walked free a second time in one FEED_WALK_WINDOW. Its next page is charged
    to its spent budget ("busy"): a sync walks at most the feed's length in entries signed for
    it per window, wherever pages served again move it."""
    authority = service()
    authority._members.pool = ByteBudgets(rate=10**6, burst=10**6, max_sources=1)
    source, other = member(authority, 1), member(authority, 2)
    assert _signed_here(authority, source, [*_apart(BURST - 1), 0]) == BURST  # own spent
    walk = [_PAGE * n for n in range(1, _LENGTH // _PAGE)]
    walked = _signed_here(authority, source, walk)  # free while under the feed's length
    assert 0 < walked < len(walk)
    assert authority._members.walks[source.source].walked >= _LENGTH
    authority._page(0, NOW, other)
    signed = authority.authority.signed  # type: ignore[attr-defined]
    authority._page(0, NOW, source)  # served again: its sync moved back to the start
    assert _signed_here(authority, source, [_PAGE]) == 0  # "busy"
    assert authority.authority.signed == signed  # type: ignore[attr-defined]


@pytest.mark.parametrize("strangers", [False, True], ids=["members", "strangers"])
def test_a_page_refused_leaves_no_sync(strangers: bool) -> None:
    """Tried: sources asking for pages their class's pool refuses ("busy"), hoping each is
    kept as a sync and pushes a syncing member's out: none is kept, and nothing is spent of
    their own budgets (a whole burst is signed for each once the pool refills)."""
    authority = service()
    callers = authority._strangers if strangers else authority._members
    callers.pool = ByteBudgets(rate=1, burst=1, max_sources=1)
    payers = [_Payer(bytes([n]) * 32, callers) for n in range(1, 5)]
    assert _signed_here(authority, payers[0], [1]) == 1  # the pool spent
    for payer in payers[1:]:
        assert _signed_here(authority, payer, [2]) == 0
        assert payer.source not in callers.walks
    callers.pool = ByteBudgets(rate=10**6, burst=10**6, max_sources=1)
    assert _signed_here(authority, payers[1], _apart(BURST + 1)) == BURST


def test_the_syncs_kept_are_one_per_source_and_bounded_per_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: more sources than MAX_FEED_SIGN_SOURCES (4 here) in each class each having pages
    signed, some several: each class keeps at most 4 syncs, one per source, the newest."""
    authority = service()
    monkeypatch.setattr(limits, "MAX_FEED_SIGN_SOURCES", 4)
    starts = iter(_apart(60))  # none served again (that makes no sync)
    for callers in (authority._members, authority._strangers):
        callers.pool = ByteBudgets(rate=10**6, burst=10**6, max_sources=1)
        payers = [_Payer(bytes([n]) * 32, callers) for n in range(1, 11)]
        for payer in payers:
            assert _signed_here(authority, payer, [next(starts) for _ in range(3)]) == 3
        assert list(callers.walks) == [payer.source for payer in payers[-4:]]


class _Fleet(_FourPerPage):
    """`_FourPerPage` whose members were all enrolled by one ticket of many uses."""

    def quota_holder(self, member: Identifier) -> Identifier:
        return Identifier(b"\x77" * 32)


class _AnchorShowing:
    """The node's trust: every peer is an anchor showing the chains of this authority that its
    channel (`PeerCaller.channel`: the root member's byte) holds, a delegation from that
    member (one of the fleet)."""

    def __init__(self, mine: Identifier) -> None:
        self.mine = mine

    def standing(self, peer: Any, now: int) -> Standing:
        root = Identifier(bytes([peer.root]) * 32)
        chain = SimpleNamespace(authority=self.mine, links=[SimpleNamespace(subject=root)])
        return Standing((cast(Any, chain),), is_anchor=True)


def test_an_anchor_showing_members_delegations_spends_no_more_than_their_ticket() -> None:
    """Tried: an anchor holding a delegation from each of five members of one ticket of many
    uses shows one on each channel: a member's delegate pays from the account its delegates
    share, not the anchor's own, so each channel is a budget of another account (classed as a
    member's delegate, out of the anchor's). The members' ticket's share is charged too:
    2 * FEED_PAGE_SIGNS_PER_TICKET pages are signed in all, what the fleet's own delegates
    could have signed, not five bursts."""
    fleet = _Fleet()
    authority = AuthorityService(
        cast(Any, fleet), cast(Any, _AnchorShowing(fleet.identifier)), cast(Any, None)
    )
    starts = iter(_apart(64))
    signed = 0
    for root in range(1, 6):
        peer = SimpleNamespace(identifier=Identifier(b"\xaa" * 32), root=root)
        payer = authority._payer(PeerCaller(cast(Any, peer), f"channel {root}"), NOW)
        assert payer is not None
        assert payer.source == delegates_of(Identifier(bytes([root]) * 32)).digest
        signed += _signed_here(authority, payer, [next(starts) for _ in range(BURST)])
    assert signed == 2 * FEED_PAGE_SIGNS_PER_TICKET


_HOSTS = (("m", "10.6.6.6"), ("n", "10.6.7.6"))
"""Two members of the hub's, on hosts of two networks."""


def test_relayed_members_of_the_other_authority_and_its_anchor_pay_apart(tmp_path: Path) -> None:
    """Tried, relayed: acme, an authority reached only through the hub's relay, trusts the hub
    (it enrolled with it): the hub, an anchor at acme, and the hub's members, strangers there,
    reach it through the relay. m, a member of the hub's, spends its network's budget of
    enroll requests (made-up tickets) and its own of feed pages (the strangers' pool with
    them): the hub's enroll requests and pages are still taken, a whole budget of each; the
    hub's spent, n, another of its members (another network), is still answered on both (its
    page once the strangers' pool refilled)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        acme = await relayed_acme(net)
        authority = acme.node.authority()
        for _ in range(4 * BURST):
            authority.revoke_credential(os.urandom(32), now=net.clock.now())
        m, n = [await net.node(name, host=host) for name, host in _HOSTS]
        for each in (m, n):
            await each.enroll(net.ticket(), each.name)
        await spend(m, acme)
        assert await _signed(m, range(BURST + 1), acme) == BURST
        await spend(hub, acme)  # a whole budget of its own
        assert await _signed(hub, range(BURST + 1, 2 * BURST + 2), acme) == BURST
        assert LIMITED not in await bogus_enroll(n, acme)
        net.clock.advance(1)  # the strangers' pool (m spent it) refills 4
        assert await _signed(n, range(2 * BURST + 2, 2 * BURST + 3), acme) == 1

    run_memnet(test, tmp_path / "home", budget=60)
