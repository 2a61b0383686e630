"""Review 65a, rotated: what the node closes after its own rotation.

Rotated 1: after each round whose announcements of the node's own rotation stay pending (its
authority unreachable, or refusing the rotated history as a fork for good: the refusal is
not persisted and asked again every round, review 64u), the node ran `_rotated`, which closed
EVERY channel showing the node's identity, those that already show its rotated history too:
every channel of the node, each maintenance round, for as long as the announcement stayed
pending (forever for a fork), and each link's again once it was back (the catch-up after a
reconnect announces too). Only the channels still showing an older history of the node's
identity are closed now.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import MemNet, route, run_memnet

OTHER = "/tcp/other:4000"


def test_a_pending_announcement_closes_only_the_channels_showing_the_old_history(
    tmp_path: Path,
) -> None:
    """Rotated 1: the channel opened before the rotation closes, the one after stays open
    through the next rounds' announcements (the authority unreachable)."""
    closed: list[bool] = []

    async def test(net: MemNet) -> None:
        agent = await net.member("agent")
        other = await net.node("other", listen=("other", 4000))
        await other.enroll(net.ticket(), "other")
        before = await agent.channel_to(route(OTHER))
        assert net.hub is not None
        await net.hub.stop()  # the announcement stays pending
        agent.node.identities.rotate("agent", now=net.clock.now())
        (row,) = await agent.announce_rotations("agent")
        assert row["announced"] is False
        for _ in range(20):
            await asyncio.sleep(0)
        closed.append(before.channel.closed)
        after = await agent.channel_to(route(OTHER))
        assert after.channel.me.history == agent.node.identities.export("agent")
        for _ in range(3):  # rounds
            await agent.announce_rotations("agent")
        for _ in range(20):
            await asyncio.sleep(0)
        closed.append(after.channel.closed)

    run_memnet(test, tmp_path / "home", budget=30)
    assert closed == [True, False]
