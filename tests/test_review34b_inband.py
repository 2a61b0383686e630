"""Review 34b, in-band 1: after a node refreshes its credentials it shows them in-band on every
open channel (`membership.refresh_credentials`), the channels it opened as another local
identity too (`NodeRuntime.channel_as`: an agent leasing a secret as itself). The peer verifies
them as that identity's (`verify_peer`): their last subject is the node, not the agent, so the
refresh is refused (`subject is not the presenting identity`) and the peer closes the agent's
channel (`credential invalid`) — at every credential refresh of the node (each maintenance
round with short-lived credentials), cutting the agent's leases and calls.

Was a strict xfail until the refreshed credentials are shown only on the channels that show the
node's identity (`membership.showing`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.channel import ChannelState


def test_a_refresh_leaves_the_channels_of_other_identities_open(tmp_path: Path) -> None:
    """n (a member) opens a channel to the hub as its local identity `agent`, then refreshes
    its own credential: the agent's channel stays open."""

    async def test(net: MemNet) -> None:
        n = await net.member("n")
        n.node.identities.create(now=net.clock.now(), name="agent")
        end = await n.channel_as("agent", route(HUB))
        assert await n.refresh_credentials(margin=4000) == 1  # n's credential is due
        for _ in range(50):  # the in-band refreshes are sent and answered
            await asyncio.sleep(0.01)
        assert end.channel.state is ChannelState.OPEN

    run_memnet(test, tmp_path / "home", budget=30)
