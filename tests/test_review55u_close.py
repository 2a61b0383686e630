"""Review 55u: `ChannelEnd.close` must forget its end (`ChannelManager._forget`: the node's
table, its identity pins, its open-channel cap share) whatever its CLOSE frame's flush raises.

close 1: `close` caught only TrothError around the flush and forgot the end after it. A first
hop that does not take the CLOSE (a peer that does not read: the TCP write waits for room) and
a close task cancelled meanwhile (an `asyncio.timeout` or a task group around a channel's use,
a second cancel during the `finally` of `RunningNode.channel`), or a first hop raising what is
not a TrothError, left the closed end in the table for good: its pins and memory held until its
connection closed, if ever.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.test_channel_manager import HUB, Net, Peer, run
from tests.test_review55q_pins import Counted, _known
from troth.errors import ChannelFailure
from troth.node.channel_ends import ChannelEnd
from troth.routing import RoutedMessage, Source, parse_route


def _first_hop_fails(peer: Peer, end: ChannelEnd, failure: BaseException | None) -> None:
    """Make `end`'s first hop (its connection's worker) raise `failure`, or, for None, wait
    for room that never comes (a peer that does not read)."""
    first = end.peer_route[0]

    async def worker(message: RoutedMessage, source: Source | None) -> None:
        if failure is not None:
            raise failure
        await asyncio.get_running_loop().create_future()  # the write buffer never drains

    peer.router.unregister(first)
    peer.router.register(first, worker)


@pytest.mark.parametrize("failure", [None, OSError("broken pipe"), RuntimeError("closed")])
def test_a_close_whose_flush_fails_otherwise_still_forgets_the_end(
    tmp_path: Path, failure: BaseException | None
) -> None:
    """close 1: the dialler's close of an open channel whose CLOSE the first hop does not take
    (cancelled while it waits; or an OSError, a RuntimeError) raises that error and leaves
    nothing: the end out of the table, its pins released, the channel closed."""
    pins = Counted(_known(tmp_path / "dialler.db"))

    async def test(net: Net) -> None:
        await net.hub()
        dialler = net.peer("10.0.0.9", pins=pins)
        end = await dialler.manager.open(parse_route(HUB))
        assert pins.held
        assert end.enc in dialler.manager.ends
        _first_hop_fails(dialler, end, failure)
        if failure is None:
            closing = asyncio.get_running_loop().create_task(end.close())
            await asyncio.sleep(0)  # the close waits on the first hop
            assert not closing.done()
            closing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await closing
        else:
            with pytest.raises(type(failure)):
                await end.close(ChannelFailure.NORMAL)
        assert end.channel.closed
        assert end.forgotten
        assert end.enc not in dialler.manager.ends
        assert not pins.held

    run(test)
