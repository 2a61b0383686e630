"""Review 65a2: attacks on helpers 65x's (links), 65w's (bundle distribution) and 65u's
(authority) fixes that did not work. Each test would fail if the defence it names broke.

- Links 1 (`Link.lost_while_connecting`): a hub that closes the link's channel during every
  attempt (and lets another caller open one there each time) gets no reconnect loop without
  progress: each such attempt counts as a failed one, the waits before the next grow one
  attempt at a time to the cap, and the link ends connected once the hub lets one end.
- Links 2 (`NodeRuntime._sync_links`, `Links.forget_unneeded`): an authority whose route moved
  off a link that also holds relay names leaves the link, its relays, its pin (the authority
  it reached: no other identity is taken there) and its reconnecting as they were; an
  authority no longer trusted and trusted again later gets its link back, pinned to it, over
  the channel open there; a link to another authority at another route is untouched.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from tests.test_review28a_links import ROUTE, _End, _RecordedBackoff
from troth.crypto import sha256
from troth.identity import Identifier
from troth.node.channels import ChannelEnd
from troth.node.links import Link, Links, LinkState
from troth.node.runtime import NodeRuntime

OTHER = "/tcp/elsewhere:4000"


def _authority(name: str) -> Identifier:
    return Identifier(sha256(name.encode()))


def _runtime(links: Links, routes: dict[Identifier, str], ends: dict[str, Any]) -> Any:
    """What `NodeRuntime._sync_links` reads of a runtime: its links, its trust's routes, the
    channels open per route."""
    stub = SimpleNamespace(
        links=links,
        trust=SimpleNamespace(routes=routes, hosted=None),
        _open=ends,
        channels=SimpleNamespace(ends={end.enc: end for end in ends.values()}),
    )
    stub._routed_at = lambda authority: NodeRuntime._routed_at(cast(Any, stub), authority)
    return stub


def test_a_hub_closing_the_channel_during_every_attempt_meets_a_growing_backoff() -> None:
    """Links 1: nine attempts each lose their channel while they restore (another caller
    opening one there meanwhile): nine failed attempts, waits growing, then connected."""

    async def run() -> tuple[list[int], LinkState, int]:
        backoff = _RecordedBackoff()
        tries = 0

        async def restore(link: Link) -> None:
            nonlocal tries
            tries += 1
            end = _End(f"attempt-{tries}")
            links.opened(link.route, cast(ChannelEnd, end))
            await asyncio.sleep(0)
            if tries <= 9:  # the hub closes it mid-attempt; someone opens another there
                end.channel.closed = True
                links.closed(cast(ChannelEnd, end))
                links.opened(link.route, cast(ChannelEnd, _End(f"other-{tries}")))

        links = Links(restore, backoff=backoff)
        link = links.link(ROUTE)
        link.relays.add("b")
        links.resume(ROUTE)
        async with asyncio.timeout(5):
            while link.state is not LinkState.CONNECTED:
                await asyncio.sleep(0)
        await links.stop()
        return cast(list[int], object.__getattribute__(backoff, "asked")), link.state, tries

    asked, state, tries = asyncio.run(run())
    assert tries == 10
    assert state is LinkState.CONNECTED
    assert len(asked) == 9
    assert asked == sorted(asked), asked
    assert asked[-1] >= 8, asked  # never a tight loop at attempt 0


def test_an_authority_moving_off_a_relay_link_leaves_its_relays_pin_and_reconnecting() -> None:
    """Links 2: the authority re-enrolled at another address; the link to the old one holds a
    relay name: kept, pinned to the identity it reached there, still reconnecting."""

    async def run() -> None:
        moved, other = _authority("moved"), _authority("other")
        release = asyncio.Event()

        async def restore(link: Link) -> None:
            await release.wait()
            raise ConnectionError("refused")

        links = Links(restore)
        link = links.link(ROUTE)
        link.relays.add("b")
        link.authority = moved
        links.resume(ROUTE)
        await asyncio.sleep(0)
        assert link.state is LinkState.CONNECTING
        routes = {moved: "/tcp/hub:5000", other: OTHER}
        NodeRuntime._sync_links(_runtime(links, routes, {}))
        assert links.links[ROUTE] is link
        assert link.relays == {"b"}
        assert link.authority is None
        assert link.pin == moved
        task = links._tasks.get(ROUTE)
        assert task is not None
        assert not task.done()
        assert links.links["/tcp/hub:5000"].authority == moved
        assert links.links[OTHER].authority == other
        release.set()
        await links.stop()

    asyncio.run(run())


def test_an_authority_trusted_again_gets_its_link_back_pinned_over_the_open_channel() -> None:
    """Links 2: an authority no longer trusted loses its link (forgotten); trusted again,
    its link is made again, pinned to it, and connected over the channel open there."""

    async def run() -> None:
        authority = _authority("again")

        async def restore(link: Link) -> None:
            raise ConnectionError("not reached in this test")

        links = Links(restore)
        end = _End("open")
        end_any = cast(Any, end)
        end_any.enc = b"enc"
        NodeRuntime._sync_links(_runtime(links, {authority: ROUTE}, {}))
        assert links.links[ROUTE].authority == authority
        NodeRuntime._sync_links(_runtime(links, {}, {}))
        assert ROUTE not in links.links
        NodeRuntime._sync_links(_runtime(links, {authority: ROUTE}, {ROUTE: end}))
        link = links.links[ROUTE]
        assert link.authority == authority
        assert link.pin == authority
        assert link.end is cast(ChannelEnd, end)
        assert link.state is LinkState.CONNECTED
        await links.stop()

    asyncio.run(run())
