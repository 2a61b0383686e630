"""The hosted authority's feed pages signed on request (docs/protocols.md, "Services": `feed
[since]`): a `since` outside the feed spends nothing; the page at the feed's end is shared and
free; members and anchors draw on a pool strangers cannot spend; a member's delegates share its
own budget."""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from troth import limits
from troth.errors import RemoteError
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.authority import FEED_REUSE

FEED = service_address("authority")
ENTRIES = 64  # each `since` below it is a page of its own


async def ask(net: MemNet, runtime: NodeRuntime, since: int, *, identity: str | None = None) -> str:
    """`feed [since]` at the hub as `runtime` (or its local `identity`): "ok" or the refusal."""
    assert net.hub is not None
    hub_id = net.identifier(net.hub)
    end = await runtime.channel_to(
        route(HUB), expect=hub_id, also_trust=frozenset({hub_id}), identity=identity
    )
    try:
        page = await call(runtime.router, (end.enc, FEED), "feed", [since])
    except RemoteError as exc:
        return str(exc)
    assert isinstance(page, bytes)
    return "ok"


def grow_feed(net: MemNet, count: int, tag: int) -> int:
    """`count` more entries in the hub's feed; its length."""
    authority = net.authority
    targets = [bytes([tag, n]) * 16 for n in range(count)]
    authority.revoke_credentials(targets, now=net.clock.now())
    return authority.store.revocation_tip()[0]


def test_strangers_are_busy_while_a_members_sync_passes(tmp_path: Path) -> None:
    """Strangers spend their own pool down to "busy" (the node signs for them at most its
    burst); the page at the feed's end is still served to them (shared, charged to no one);
    a member that fell behind then syncs from where its copy ends, its pages signed from the
    members' pool."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        grow_feed(net, ENTRIES, 1)
        await hub.maintain()
        honest = await net.member("honest")
        authority = net.authority.identifier
        behind = await honest.worker.run(honest.node.wallet.feed_since, authority)
        latest = grow_feed(net, 8, 2)  # the honest copy falls behind
        await hub.maintain()
        net.clock.advance(FEED_REUSE)  # nothing signed so far is served again
        pool = 2 * limits.FEED_PAGE_SIGNS_FOR_STRANGERS
        count = pool // limits.FEED_PAGE_SIGNS_PER_CALLER_BURST + 1
        strangers = [await net.node(f"stranger-{n}") for n in range(count)]
        starts = iter(s for s in range(latest) if s != behind)
        answers = [
            await ask(net, stranger, next(starts))
            for stranger in strangers
            for _ in range(limits.FEED_PAGE_SIGNS_PER_CALLER_BURST)
        ]
        assert answers.count("ok") == pool
        assert all(text.startswith("busy") for text in answers if text != "ok")
        assert await ask(net, strangers[-1], latest) == "ok"  # the shared page at the end
        end = await honest.channel_to(route(HUB))
        feed = await honest.sync_feed(authority, end)
        assert feed.count == latest

    run_memnet(test, tmp_path / "home")


def test_a_since_past_the_end_spends_nothing(tmp_path: Path) -> None:
    """A `since` past the feed's end is refused before any budget is spent: a member asking
    for it again and again still has every page of its own budget signed after."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        latest = grow_feed(net, ENTRIES, 1)
        await hub.maintain()
        mallory = await net.member("mallory")
        net.clock.advance(FEED_REUSE)
        for _ in range(2 * limits.FEED_PAGE_SIGNS_PER_CALLER_BURST):
            refused = await ask(net, mallory, latest + 1)
            assert refused.endswith(f"(the feed has {latest} entries)")
        answers = [
            await ask(net, mallory, since)
            for since in range(1, limits.FEED_PAGE_SIGNS_PER_CALLER_BURST + 1)
        ]
        assert answers == ["ok"] * limits.FEED_PAGE_SIGNS_PER_CALLER_BURST

    run_memnet(test, tmp_path / "home")


def test_a_members_delegates_share_its_feed_signing_budget(tmp_path: Path) -> None:
    """Mallory has her budget of pages spent, then asks as a delegate she minted offline: the
    delegate pays from the one account her delegates share (review 58e, budgets 1: not hers, so
    a delegate cannot spend what its delegator needs), and once that is spent a second delegate
    she minted is answered "busy" at once: minting delegates buys no more signings."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        grow_feed(net, ENTRIES, 1)
        await hub.maintain()
        mallory = await net.member("mallory")
        net.clock.advance(FEED_REUSE)
        burst = limits.FEED_PAGE_SIGNS_PER_CALLER_BURST
        assert [await ask(net, mallory, since) for since in range(1, burst + 1)] == ["ok"] * burst
        assert (await ask(net, mallory, burst + 1)).startswith("busy")
        throwaway_delegate(mallory, "throwaway", {"agents.team": "support"})
        spent = [await ask(net, mallory, burst + 1 + i, identity="throwaway") for i in range(burst)]
        assert spent == ["ok"] * burst
        throwaway_delegate(mallory, "another", {"agents.team": "support"})
        answer = await ask(net, mallory, 2 * burst + 1, identity="another")
        assert answer.startswith("busy")

    run_memnet(test, tmp_path / "home")
