"""Review 43c, resume: attacks on review 41c's resumption of interrupted enrollments by route
and authority (`troth.node.membership.resume_enrollments`, `_resume_at`).

A pending record's address and authority are what its ticket said: the ticket's issuer chose
both (tests/test_review41c_resume.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from tests.test_review39a_resume import _pending, _ticket
from troth.channel import ChannelState
from troth.node.membership import RESUME_AFTER
from troth.routing import parse_route

TOOLS = "/tcp/tools:4000"


def test_a_ticket_naming_a_peers_address_does_not_cut_the_nodes_channels_there(
    tmp_path: Path,
) -> None:
    """Review 43c, resume 1. Globex, hostile, hands the operator of acme's agent a ticket
    naming the address of tools, another acme member the agent works with (globex's own
    identifier). `troth enroll` with it fails at the handshake (tools answers, not globex)
    and leaves its record pending. The agent talks to tools over a channel of its own (no
    link pins tools' address). Each resumption opens a channel to tools pinned to globex;
    tools answers, and the node took that as "this connection goes to the wrong node" (what
    a link's pin means: review 25, relays 1) and closed its connection to tools, the agent's
    open channel with it: a ticket's issuer cuts the node's channels to any address it
    names, at every attempt for RESUME_FOR. A ticket's authority is not a pin on the
    address.

    Was a strict xfail until an enrollment's channel (`troth enroll` and its resumption) was
    opened with `channel_to(claimed=True)`: another identity answering a ticket's claim
    closes no connection (a link's pin still does: review 25, relays 1)."""

    async def test(net: MemNet) -> None:
        _globex_node, globex, _ = await globex_over_tcp(net)
        tools = await net.node("tools", listen=("tools", 4000))
        await tools.enroll(net.ticket(), "tools")
        agent = await net.member("agent")
        _pending(agent, "decoy", _ticket(globex, TOOLS, net.clock.now()), net.clock)
        end = await agent.channel_to(parse_route(TOOLS))
        assert end.channel.state is ChannelState.OPEN
        net.clock.advance(RESUME_AFTER)
        assert await agent.resume_enrollments() == 0
        for _ in range(50):  # a close the resumption spawned runs within a few steps
            await asyncio.sleep(0)
        assert end.channel.state is ChannelState.OPEN
        assert len(agent.node.wallet.interrupted_enrollments(64)) == 1  # still pending

    run_memnet(test, tmp_path)
