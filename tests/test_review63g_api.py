"""Review 63g, api: the runtime per `Node` handle (troth._api.handle_runtime, review 62j/62r).

Api 1: a `serve` block's stop ran in the block's own task, unshielded (the shared runtime's
stop, of the blocks outside `serve`, is a task of its own since 62r). The block cancelled
again while its runtime stopped (a TaskGroup or a timeout cancelling it once more, an anyio
cancel scope, which cancels at every await until the block is out) ended that stop midway:
the services, channels, TCP listener and storage thread left running, the maintenance round
going on for a handle whose block had ended, and the handle let go at once (a new `serve`
started a second runtime of the node beside the first). The block now leaves once the stop
ended (cancelled again, with CancelledError), and the handle is let go only then.

Api 2: the same for a start that failed or was cancelled (`start_running` stops what it
started): the block cancelled again meanwhile ended that stop midway. It runs to its end too.
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
    the block waits for the stop to end; a `serve` entered meanwhile is refused (the handle
    still runs), and one entered after the stop ended runs."""
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
        await asyncio.sleep(0)
        assert not task.done()  # it waits for the stop
        with pytest.raises(RuntimeError, match="already running"):
            async with hub.serve():
                pass
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert stopped == runtimes
        async with hub.serve() as again:
            assert again._runtime is not runtimes[0]
        assert runtimes_here(hub) == []

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
        assert world.hub._running is None


def test_a_serve_block_cancelled_again_while_its_failed_start_stops_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Api 2: the same at the start: the serve block cancelled during its runtime's first
    round (`start_running` stops what it started), then again while that stop runs (held): the
    stop goes on to its end before the handle is let go."""
    rounds, stopping, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    stop, stopped = NodeRuntime.stop, []
    maintain = NodeRuntime.maintain

    async def hung_round(self: NodeRuntime) -> None:
        if not rounds.is_set():  # the first round only: it waits for ever
            rounds.set()
            await asyncio.Event().wait()
        await maintain(self)

    async def held_stop(self: NodeRuntime) -> None:
        if not stopping.is_set():  # the first stop only
            stopping.set()
            await release.wait()
        await stop(self)
        stopped.append(self)

    monkeypatch.setattr(NodeRuntime, "maintain", hung_round)
    monkeypatch.setattr(NodeRuntime, "stop", held_stop)

    async def scene(hub: troth.Node) -> None:
        async def served() -> None:
            async with hub.serve():
                pass

        task = asyncio.get_running_loop().create_task(served())
        await asyncio.wait_for(rounds.wait(), 10)
        task.cancel()
        await asyncio.wait_for(stopping.wait(), 10)
        task.cancel()  # cancelled again while what started stops
        await asyncio.sleep(0)
        assert not task.done()  # it waits for the stop
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert len(stopped) == 1
        async with hub.serve() as again:
            assert again._runtime is not stopped[0]
        assert runtimes_here(hub) == []

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
        assert world.hub._running is None
