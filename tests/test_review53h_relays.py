"""Review 53h, relays 1: a channel closed by a no-route notice for a dead address further
along a chain of relays (a -> hub -> r1 -> b, b restarted: r1 dropped the packet) failed its
calls "no route at the hub", naming the wrong hop: the hub had a route (to r1); the dead
address was past it. Now such a call fails "no route at a relay past the hub", and one for an
address right after the hub still "no route at the hub" (tests/test_review49b_noroute.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_review44d_relays import crash_and_restart, until
from tests.test_review45e_relay import TO_B
from tests.test_review49b_noroute import GENEROUS
from tests.test_review50f_noroute import ECHO_B, behind_two_relays
from troth.errors import Unreachable
from troth.node.links import LinkState
from troth.routing import parse_route


def test_a_dead_address_past_the_hub_is_not_said_to_be_at_the_hub(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        a, _, b = await behind_two_relays(net)
        old = await a.channel_to(parse_route(TO_B))
        b = await crash_and_restart(net, b)
        await until(lambda: b.link_rows()[0].state is LinkState.CONNECTED)
        with pytest.raises(Unreachable) as failed:
            await asyncio.wait_for(a.send_message(ECHO_B, "first"), GENEROUS)
        assert old.channel.closed
        assert "no route at a relay past the hub" in str(failed.value)
        assert "no route at the hub" not in str(failed.value)

    run_memnet(test, tmp_path)
