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

lifecycle 2 (low-medium; fixed in troth/node/runtime.py). 63o (lifecycle 4) made the catch-up
after a link reconnected take its turn with the maintenance rounds, but every reconnect still
spawned one: while a round ran (a refresh waiting on an authority that does not answer), a
link that reconnects and drops again (a relay or hub doing so on purpose) queued a catch-up per
reconnect, without bound, each then asking the authorities again in turn, and the next round
waited behind all of them (the lock is FIFO). One catch-up waiting for its turn now does the
work of those asked for meanwhile (it reads what is due when it runs).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth
from tests.support.public_api import acme_and_agents
from tests.test_channel_manager import HUB, Net, run
from tests.test_review55q_pins import Counted, _known
from tests.test_review55u_close import _first_hop_fails
from troth.node.runtime import NodeRuntime
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


def test_lifecycle_2_reconnects_during_a_round_queue_one_catch_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """20 reconnects while a round's refresh waits: the round's refresh, then one catch-up's
    (not 20, one after the other, the next round behind them)."""
    calls = 0
    held, release = asyncio.Event(), asyncio.Event()

    async def counted(self: NodeRuntime, *, margin: int = 0) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            held.set()
            await release.wait()
        return 0

    async def scene(hub: troth.Node) -> None:
        async with hub.serve() as served:
            node = served._runtime
            monkeypatch.setattr(NodeRuntime, "refresh_credentials", counted)
            loop = asyncio.get_running_loop()
            round_ = loop.create_task(node.maintain())
            await asyncio.wait_for(held.wait(), 5)
            catch_ups = [loop.create_task(node._catch_up()) for _ in range(20)]
            for _ in range(10):
                await asyncio.sleep(0)
            release.set()
            await asyncio.wait_for(asyncio.gather(round_, *catch_ups), 10)
            late = loop.create_task(node._catch_up())  # a reconnect after: its own turn
            await asyncio.wait_for(late, 5)

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
    assert calls == 3
