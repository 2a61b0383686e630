"""Review 30, links 1: `node status` did not show a link's quick losses (`Link.flaps`, review
28a, links 1): a link a peer keeps closing as soon as it is back is `connected` between two
losses, with 0 failed attempts, and its growing waits came from nowhere a person could see
(docs/protocols.md, "Reconnecting").

Was a strict xfail until `LinkRow` carried `flaps` (its JSON too) and its line for people
said "lost at once N times" when N > 0.
"""

from __future__ import annotations

import asyncio
from typing import cast

from tests.test_review28a_links import ROUTE, _End, _RecordedBackoff
from troth.node.channels import ChannelEnd
from troth.node.links import Link, LinkRow, Links, LinkState


def _flapped(times: int) -> LinkRow:
    """The status row of a link whose peer closed each reconnected channel at once, `times`
    times."""

    async def run() -> LinkRow:
        restored = asyncio.Event()
        ends: list[_End] = []

        async def restore(link: Link) -> None:
            ends.append(_End(f"channel-{len(ends)}"))
            links.opened(link.route, cast(ChannelEnd, ends[-1]))
            restored.set()

        links = Links(restore, backoff=_RecordedBackoff())
        link = links.link(ROUTE)
        lost = _End("first")
        links.opened(ROUTE, cast(ChannelEnd, lost))
        for _ in range(times):
            lost.channel.closed = True
            restored.clear()
            links.closed(cast(ChannelEnd, lost))
            async with asyncio.timeout(5):
                await restored.wait()
                while link.state is not LinkState.CONNECTED:
                    await asyncio.sleep(0)
            lost = ends[-1]
        (row,) = links.rows()
        await links.stop()
        return row

    return asyncio.run(run())


def test_status_shows_a_links_quick_losses() -> None:
    row = _flapped(3)
    assert (row.state, row.attempts) == (LinkState.CONNECTED, 0)
    assert row.to_json()["flaps"] == 3
    assert LinkRow.from_json(row.to_json()) == row
    assert "lost at once 3 times" in row.describe()


def test_a_steady_link_says_nothing_of_losses() -> None:
    row = _flapped(0)
    assert row.to_json()["flaps"] == 0
    assert "lost" not in row.describe()
