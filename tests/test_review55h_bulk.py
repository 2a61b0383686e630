"""Review 55h, bulk: the per-message work of a node sending and receiving bulk messages
(benchmarks/README.md, "Pass 55h").

- bulk 1: every message sent through `NodeRuntime.channel_to` (`send_oneway`, `echo`, the
  services' clients) made a route lock, took it and released it, although the channel was
  open and nothing was awaited before it was found: an open channel whose peer looks alive and
  is the one expected is now reused without the lock. What the lock is for is kept: two callers
  at once still open one channel, a channel answered by another identity than the one expected
  is not reused, and one whose peer went silent is replaced.
- the node's shares (troth.node.shares) count in a dict: a Counter's missing key and delete
  were Python calls, made for each fragment a node reassembles; the counts are as before.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.node.runtime import SINK
from troth.node.shares import STRANGERS, Shares


class _CountingLocks(dict[str, asyncio.Lock]):
    """A runtime's route locks, counting the ones asked for."""

    asked = 0

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.asked += 1
        return super().setdefault(key, default)


def test_messages_over_an_open_channel_take_no_route_lock(tmp_path: Path) -> None:
    async def scenario(net: MemNet) -> None:
        alice = await net.member("alice")
        hub = route(HUB)
        first = await alice.channel_to(hub)
        locks = _CountingLocks(alice._opening)
        alice._opening = locks
        for _ in range(5):
            await alice.send_oneway(hub, SINK, b"x" * 100)
        assert (await alice.channel_to(hub), locks.asked) == (first, 0)

    run_memnet(scenario, tmp_path)


def test_callers_at_once_still_open_one_channel(tmp_path: Path) -> None:
    async def scenario(net: MemNet) -> None:
        alice = await net.member("alice")
        bob = await net.node("bob", listen=("bob", 4100))
        await bob.enroll(net.ticket(), "bob")
        there = route("/tcp/bob:4100")
        ends = await asyncio.gather(*(alice.channel_to(there) for _ in range(4)))
        assert len({id(end) for end in ends}) == 1
        assert await alice.channel_to(there) is ends[0]

    run_memnet(scenario, tmp_path)


def test_shares_counts_are_kept_as_before() -> None:
    shares = Shares(lambda: 1)  # 1 authority trusted: shares of bound // 3
    shares.take([b"a", STRANGERS], 10)
    shares.take([b"a"], 5)
    assert (shares.places, shares.held(b"a"), shares.held(STRANGERS)) == (15, 15, 10)
    assert (shares.held(b"nobody"), shares.holders()) == (0, 2)
    assert not shares.room([STRANGERS], bound=12, size=1)  # past the bound, over its share 4
    assert shares.room([b"nobody"], bound=12, size=1)  # within its share
    shares.release([b"a", STRANGERS], 10)
    assert (shares.places, shares.held(b"a"), shares.holders()) == (5, 5, 1)
    shares.release([b"a", b"never-held"], 5)  # a count at or below zero is forgotten
    assert (shares.places, shares.holders(), shares.held(b"never-held")) == (0, 0, 0)
