"""Review 63t, lifecycle: attacks on review 63o, lifecycle 5 (NodeRuntime.stop's stages each
on its own).

lifecycle 1 (low-medium; fixed in troth/node/channels.py). 63o made each stage of
`NodeRuntime.stop` run whatever the one before raised, but the channels' stage
(`ChannelManager.close_all`) still ended at the first channel whose close raised: a first hop
raising what is not a TrothError (an OSError from a connection the peer reset: `ChannelEnd.close`
forgets its end and raises it after, review 55u, close 1) left every later channel open (its
peer never told, its end, pins and cap share held) and the idle sweeper and flush tasks
running on a stopped node. Each channel is now closed on its own, the timers stopped whatever
failed, the first failure raised once all ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_channel_manager import HUB, Net, run
from tests.test_review55q_pins import Counted, _known
from tests.test_review55u_close import _first_hop_fails
from troth.routing import parse_route


def test_lifecycle_1_close_all_closes_every_channel_when_one_close_fails(tmp_path: Path) -> None:
    pins = Counted(_known(tmp_path / "dialler.db"))

    async def test(net: Net) -> None:
        await net.hub()
        dialler = net.peer("10.0.0.9", pins=pins)
        ends = [await dialler.manager.open(parse_route(HUB)) for _ in range(3)]
        assert len({end.enc for end in ends}) == 3
        _first_hop_fails(dialler, ends[0], OSError("connection reset by peer"))
        with pytest.raises(OSError, match="reset by peer"):
            await dialler.manager.close_all()  # the first failure, raised once all ran
        for end in ends:
            assert end.channel.closed
            assert end.enc not in dialler.manager.ends
        assert not pins.held

    run(test)
