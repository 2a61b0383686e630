"""Review 28a, links 1: a peer that closes a link's channel at once after every reconnect
keeps the link reconnecting at its first backoff, forever (docs/protocols.md, "Reconnecting").

A link that reconnected (`restored`: its channel open, its relays created, its feed synced)
reset its failed attempts to 0, and a link whose channel closes starts again from attempt 0
too. So a node at the other end (a hub, a relay node, anyone holding the address that its pin
answers for) that lets every attempt succeed and then closes the channel at once (review 27b,
links 1 made a channel that closed as it opened count as opened and lost) has the link wait at
most `base` (0.5 s) before each new attempt, never more: a handshake, its relays created again
and its feed synced about four times a second, as long as the peer likes, where the backoff
was meant to grow to `max_delay`.

The test drives `Links` at its seam: each attempt's `restore` opens a channel that the peer
closes once the link is connected again, and the waits the link asks its `Backoff` for are
recorded (each returns 0, so the test takes no time).

Was a strict xfail until a channel lost sooner than `max_delay` after its link connected
counted as a quick loss (`Link.flaps`), which the next waits add to the failed attempts
(so they grow as for attempts that failed), reset once a channel stays up that long.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

from troth.node.channels import ChannelEnd
from troth.node.links import Backoff, Link, LinkRow, Links, LinkState

ROUTE = "/tcp/hub:4000"


@dataclass
class _Channel:
    closed: bool = False


@dataclass
class _End:
    """What `Links` reads of a channel end."""

    name: str
    peer: None = None
    channel: _Channel = field(default_factory=_Channel)


class _RecordedBackoff(Backoff):
    """A backoff that records the attempt number of each wait asked for, and waits 0 s."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "asked", [])

    def delay(self, attempt: int, random: object) -> float:
        cast(list[int], object.__getattribute__(self, "asked")).append(attempt)
        return 0.0


def flap(times: int) -> tuple[list[int], LinkRow]:
    """A link whose peer lets each reconnect succeed and closes its channel at once, `times`
    times: the attempt numbers its waits were asked for, and its status row at the end."""

    async def run() -> tuple[list[int], LinkRow]:
        backoff = _RecordedBackoff()
        ends: list[_End] = []
        restored = asyncio.Event()

        async def restore(link: Link) -> None:  # the attempt succeeds: a new open channel
            end = _End(f"channel-{len(ends)}")
            ends.append(end)
            links.opened(link.route, cast(ChannelEnd, end))
            restored.set()

        links = Links(restore, backoff=backoff)
        link = links.link(ROUTE)
        first = _End("first")
        links.opened(ROUTE, cast(ChannelEnd, first))
        assert link.state is LinkState.CONNECTED
        lost = first
        for _ in range(times):  # the peer closes each channel as soon as the link has it
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
        return cast(list[int], object.__getattribute__(backoff, "asked")), row

    return asyncio.run(run())


def test_a_peer_that_closes_every_reconnected_channel_at_once_meets_a_growing_backoff() -> None:
    """The hub lets each reconnect succeed, then closes its channel at once, eight times: the
    link's waits before its attempts grow (as for attempts that failed), not all at attempt
    0."""
    asked, _ = flap(8)
    assert len(asked) == 8
    assert asked == sorted(asked)
    assert asked[-1] >= 5, asked  # the cap (10 s) is reached, as for attempts that failed
