"""Review 63g, api: the runtime per `Node` handle (troth._api.handle_runtime, review 62j/62r).

Api 1: a `serve` block's stop ran in the block's own task, unshielded (the shared runtime's
stop, of the blocks outside `serve`, is a task of its own since 62r). The block cancelled
again while its runtime stopped (a TaskGroup or a timeout cancelling it once more, an anyio
cancel scope, which cancels at every await until the block is out) ended that stop midway:
the services, channels, TCP listener and storage thread left running, the maintenance round
going on for a handle whose block had ended, and the handle let go at once (a new `serve`
started a second runtime of the node beside the first). The stop now runs to its end, and
the handle is let go only then.
"""

from __future__ import annotations

import asyncio

import pytest

import troth
from tests.support.public_api import acme_and_agents
from troth._api.network import runtimes_here
from troth.node.runtime import NodeRuntime


async def _started(runtimes: list[NodeRuntime]) -> None:
    while not runtimes:
        await asyncio.sleep(0.01)


def test_a_serve_block_cancelled_again_while_it_stops_stops_its_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Api 1: the serve block cancelled, then cancelled again while its runtime stops (held):
    the stop goes on to its end; a `serve` entered meanwhile is refused (the handle still
    runs), and one entered after the stop ended runs."""
    stopping, release = asyncio.Event(), asyncio.Event()
    stop, stopped = NodeRuntime.stop, []

    async def held_stop(self: NodeRuntime) -> None:
        if not stopping.is_set():  # the first stop only
            stopping.set()
            await release.wait()
        await stop(self)
        stopped.append(self)

    monkeypatch.setattr(NodeRuntime, "stop", held_stop)

    async def scene(hub: troth.Node) -> None:
        runtimes: list[NodeRuntime] = []

        async def served() -> None:
            async with hub.serve() as running:
                runtimes.append(running._runtime)
                await asyncio.Event().wait()

        task = asyncio.get_running_loop().create_task(served())
        await asyncio.wait_for(_started(runtimes), 10)
        task.cancel()
        await asyncio.wait_for(stopping.wait(), 10)
        task.cancel()  # cancelled again while its runtime stops
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(RuntimeError, match="already running"):
            async with hub.serve():
                pass
        release.set()
        for _ in range(200):  # its stop ends at once once released (not when cut short)
            if runtimes[0] in stopped:
                break
            await asyncio.sleep(0.01)
        assert runtimes[0] in stopped
        async with hub.serve() as again:
            assert again._runtime is not runtimes[0]
        assert runtimes_here(hub) == []

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
        assert world.hub._running is None
