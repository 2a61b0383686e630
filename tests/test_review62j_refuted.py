"""Review 62j: attacks on one runtime per `Node` handle that did not work (they fail if the
defence breaks)."""

from __future__ import annotations

import asyncio

import pytest

import troth
from tests.support.public_api import READ, acme_and_agents, greet
from troth._api.network import runtimes_here


def test_a_serve_refused_beside_a_serving_block_leaves_it_marked_and_alone() -> None:
    """The end of review 62h's api 4, sequentially: a refused `serve` (twice) neither unmarks
    the serving block nor runs a runtime beside it, and `node.connect` runs on that block's."""

    async def scene(agents: troth.Node, hub: troth.Node) -> object:
        async with (
            hub.serve(listen=("127.0.0.1", 0), services=[greet]) as served,
            agents.serve() as running,
        ):
            for _ in range(2):
                with pytest.raises(RuntimeError, match="already running in this process"):
                    async with agents.serve():
                        pass
                assert agents._running is running
            async with agents.connect(served.address, expect=served.identifier) as channel:
                assert channel._runtime is running._runtime
                assert runtimes_here(agents) == [running._runtime]
                return await channel.call("greet", "hi")

    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        assert asyncio.run(scene(world.agents, world.hub)) == "hi"
        assert world.agents._running is None
        assert runtimes_here(world.agents) == []
