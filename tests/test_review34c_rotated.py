"""Review 34c, rotated 1 (reported by review 34b): a node whose own identity rotated closed
every channel, the ones it had opened as another local identity too (`NodeRuntime.channel_as`:
an agent leasing a secret, calling a service as itself). Those channels show the agent's
history, which the node's rotation does not change: closing them cut the agent's calls and
leases at each of the node's rotations. Only the channels showing the node's identity carry
the history peers now refuse.

Was a strict xfail until `NodeRuntime._rotated` closed only the channels that show the node's
identity (`membership.showing`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.channel import ChannelState


def test_the_nodes_rotation_leaves_the_channels_of_other_identities_open(
    tmp_path: Path,
) -> None:
    """n (a member) opens a channel to the hub as itself and one as its local identity `agent`,
    then rotates its own identity and announces it: its own channel closes, the agent's stays
    open."""

    async def test(net: MemNet) -> None:
        n = await net.member("n")
        n.node.identities.create(now=net.clock.now(), name="agent")
        own = await n.channel_to(route(HUB))
        agents = await n.channel_as("agent", route(HUB))
        n.node.identities.rotate("n", now=net.clock.now())
        (row,) = await n.announce_rotations()
        assert row["announced"] is True
        for _ in range(50):  # the closes are sent
            await asyncio.sleep(0.01)
        assert own.channel.state is not ChannelState.OPEN
        assert agents.channel.state is ChannelState.OPEN

    run_memnet(test, tmp_path / "home", budget=30)
