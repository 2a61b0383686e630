"""Review 65x, links: a node whose hub's channel dies during a reconnect (docs/protocols.md,
"Reconnecting").

Links 1 (low: a narrow race at a runtime): a link restored over a channel that closed during
the attempt, while another caller opened a new channel to the same route, was taken as
restored, and its relays were never created again. `Links._reconnect` checked only that the
link held *a* channel once `restore` ended (`link.end is None`): the channel the attempt
created the relays over (and synced the feed over) closed while the attempt went on (the hub
restarted again, its keepalive ended it) and the maintenance round's feed refresh, a trace call
or `message send` opened a new channel there meanwhile (`Links.opened`: it becomes the link's
`end`). The link went to `connected` over the new channel, whose hub never heard `relay
create`: the hub held the names (its relay book, or the grace period after their channel
closed) and forwarded nothing, and the link, connected, never created them again while that
channel stayed up (its keepalive keeps it up for good) — the node unreachable through its
relays with its status saying all is well. Fixed: a link's channel that closes while an attempt
is under way fails the attempt (`Link.lost_while_connecting`), whatever channel the link holds
when it ends; the next attempt restores what the link needs over the channel open then.

The test drives `Links` at its seam, as tests/test_review28a_links.py does: the attempt opens
a channel and, while it still restores (an await), the hub closes that channel and another
caller opens a new one.
"""

from __future__ import annotations

import asyncio
from typing import cast

from tests.test_review28a_links import ROUTE, _End
from troth.node.channels import ChannelEnd
from troth.node.links import Backoff, Link, Links, LinkState


def test_a_channel_lost_during_an_attempt_fails_it_though_another_opened_there() -> None:
    """Links 1: the attempt's channel closes while it restores and another caller opens a new
    one to the route: the link tries again (its relays created over the new channel), not
    `connected` over a channel that never heard of its relays."""

    async def run() -> tuple[list[str], LinkState]:
        over: list[str] = []  # the channel each attempt created the relays over
        second = asyncio.Event()

        async def restore(link: Link) -> None:
            if not over:  # the first attempt: its channel dies while it syncs the feed
                end = _End("attempt-1")
                links.opened(link.route, cast(ChannelEnd, end))
                over.append(end.name)
                await asyncio.sleep(0)  # the feed sync under way
                end.channel.closed = True
                links.closed(cast(ChannelEnd, end))  # the hub restarted again
                links.opened(link.route, cast(ChannelEnd, _End("maintenance")))
                await asyncio.sleep(0)
                return
            over.append(cast(_End, link.end).name)  # reused: the channel open there now
            second.set()

        links = Links(restore, backoff=Backoff(base=1e-6, max_delay=1e-6), random=lambda: 0.0)
        link = links.link(ROUTE)
        link.relays.add("b")
        links.resume(ROUTE)
        try:
            async with asyncio.timeout(1):
                await second.wait()
                while link.state is not LinkState.CONNECTED:
                    await asyncio.sleep(0)
        except TimeoutError:
            pass
        state = link.state
        await links.stop()
        return over, state

    over, state = asyncio.run(run())
    assert over == ["attempt-1", "maintenance"], over  # the relays made again where it is now
    assert state is LinkState.CONNECTED
