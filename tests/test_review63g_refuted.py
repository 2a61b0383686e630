"""Review 63g: attacks on last session's concurrency and lifecycle fixes that did not work
(each fails if the defence it names breaks)."""

from __future__ import annotations

import asyncio

import pytest

import troth
from tests.support.public_api import acme_and_agents
from tests.test_review63g_announce import _authority, _settle, _World
from troth._api.network import runtimes_here
from troth.node.runtime import NodeRuntime


def test_announcements_cancelled_midway_leave_none_running_and_no_rotated() -> None:
    """The round stopped (the node stopping) while the own identity's announcements hang: every
    one under way is cancelled (`each_at_once`), none waiting for a place starts later,
    `rotated` does not run, and no identity after it is announced."""
    authorities = [_authority(i) for i in range(12)]
    world = _World(
        [("node", 2, authorities), ("zoe", 1, authorities[:1])],
        hanging={("node", a) for a in authorities},
    )

    async def main() -> None:
        task = asyncio.create_task(world.announcer.announce())
        await _settle()
        assert world.running > 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _settle()
        assert world.running == 0

    asyncio.run(main())
    started = [e for e in world.events if e[0] == "start"]
    assert len(started) == len([e for e in world.events if e[0] == "end"])
    assert ("rotated",) not in world.events
    assert not any(e[1] == "zoe" for e in started)
    assert not any(e[0] == "marked" for e in world.events)


def test_a_serve_block_whose_stop_fails_lets_the_handle_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The serve block's stop, now a task of its own (63g, api 1), failing: its error leaves
    the block, and the handle is let go all the same (a later serve runs)."""
    stop = NodeRuntime.stop
    failed: list[NodeRuntime] = []

    async def failing_stop(self: NodeRuntime) -> None:
        await stop(self)
        if not failed:
            failed.append(self)
            raise OSError("the disk went away")

    monkeypatch.setattr(NodeRuntime, "stop", failing_stop)

    async def scene(hub: troth.Node) -> None:
        with pytest.raises(OSError, match="went away"):
            async with hub.serve():
                pass
        async with hub.serve() as again:
            assert again._runtime is not failed[0]
        assert runtimes_here(hub) == []

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
        assert world.hub._running is None
