"""Review 63o, refuted: attacks on review 63g's fixes (a node's start and stop, the serve
block's stop run to its end, one maintenance round at a time) that did not work. Each test
would fail if the defence it names broke.

- A timeout around a serve block firing while its stop runs: the stop ends, then the timeout
  is a TimeoutError (the cancellation `to_its_end` held back is not swallowed).
- A TaskGroup whose other task fails while a serve block in it stops: the group raises that
  failure once the stop ended, the handle free again.
- A stop cancelled, then failing: its error goes on (not hidden behind the cancellation).
- The stop's own task cancelled (the loop's shutdown cancels every task): `to_its_end` ends
  with CancelledError, it does not wait for ever.
- A maintenance round cancelled midway (the start cancelled during `start_running`'s round):
  the round lock is let go, the next round runs (no deadlock).
- A service whose start failed under `Node.serve`: closed once, not again by the stop of
  what started (`start_running`), and the handle free.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

import troth
from tests.support.public_api import acme_and_agents
from troth._api.network import runtimes_here
from troth.errors import StorageError
from troth.node import runtime
from troth.node.announcements import Announcer
from troth.node.composition import compose as composed
from troth.node.runtime import NodeRuntime
from troth.node.to_the_end import to_its_end
from troth.node.upkeep import Upkeep


def _held_stop(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event, list[Any]]:
    """NodeRuntime.stop held at its start until `release`; `stopping` set once it is held."""
    stopping, release, stopped = asyncio.Event(), asyncio.Event(), []
    stop = NodeRuntime.stop

    async def held(self: NodeRuntime) -> None:
        stopping.set()
        await release.wait()
        await stop(self)
        stopped.append(self)

    monkeypatch.setattr(NodeRuntime, "stop", held)
    return stopping, release, stopped


def test_a_timeout_firing_while_a_serve_block_stops_is_a_timeout_once_it_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopping, release, stopped = _held_stop(monkeypatch)

    async def scene(hub: troth.Node) -> None:
        loop = asyncio.get_running_loop()

        deadline_box: list[Any] = []

        async def served_boxed() -> None:
            async with asyncio.timeout(None) as deadline:
                deadline_box.append(deadline)
                async with hub.serve():
                    pass

        task = loop.create_task(served_boxed())
        await asyncio.wait_for(stopping.wait(), 10)
        deadline_box[0].reschedule(loop.time())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not task.done()  # the stop goes on
        release.set()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(task, 10)
        assert len(stopped) == 1
        assert runtimes_here(hub) == []

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
        assert world.hub._running is None


def test_a_task_group_failing_while_a_serve_block_stops_raises_once_it_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopping, release, stopped = _held_stop(monkeypatch)
    served = asyncio.Event()

    async def scene(hub: troth.Node) -> None:
        async def serving() -> None:
            async with hub.serve():
                served.set()
                await asyncio.Event().wait()

        async def failing() -> None:
            await served.wait()
            raise OSError("a sibling failed")

        async def releasing() -> None:
            await stopping.wait()
            for _ in range(5):
                await asyncio.sleep(0)
            assert not stopped
            release.set()

        watcher = asyncio.get_running_loop().create_task(releasing())
        with pytest.raises(ExceptionGroup) as raised:
            async with asyncio.TaskGroup() as group:
                group.create_task(serving())
                group.create_task(failing())
        await watcher
        assert [type(e) for e in raised.value.exceptions] == [OSError]
        assert len(stopped) == 1
        async with hub.serve():  # the handle is free again
            pass

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))


def test_a_stop_cancelled_then_failing_raises_its_error() -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def stop() -> None:
            await release.wait()
            raise StorageError("node.db is gone")

        task = asyncio.get_running_loop().create_task(to_its_end(stop()))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(StorageError, match="gone"):
            await task

    asyncio.run(main())


def test_a_stop_whose_own_task_is_cancelled_ends_with_cancelled_error() -> None:
    async def main() -> None:
        async def stop() -> None:
            await asyncio.Event().wait()

        caller = asyncio.get_running_loop().create_task(to_its_end(stop()))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        inner = [
            t for t in asyncio.all_tasks() if t is not caller and t is not asyncio.current_task()
        ]
        assert len(inner) == 1
        inner[0].cancel()  # as asyncio.run's shutdown cancels every task left
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(caller, 5)

    asyncio.run(main())


def test_a_round_cancelled_midway_lets_the_next_round_run() -> None:
    async def main() -> None:
        started, rounds = asyncio.Event(), []

        async def one_round() -> None:
            rounds.append("round")
            started.set()
            if len(rounds) == 1:
                await asyncio.Event().wait()

        upkeep = cast(Any, type("U", (), {})())
        upkeep._rounds, upkeep._round = asyncio.Lock(), one_round
        first = asyncio.get_running_loop().create_task(Upkeep.maintain(upkeep))
        await started.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(Upkeep.maintain(upkeep), 5)
        assert rounds == ["round", "round"]

    asyncio.run(main())


class _Failing:
    name = "stub"

    def __init__(self) -> None:
        self.closed = 0

    async def start(self) -> None:
        raise StorageError("its database is locked")

    async def close(self) -> None:
        self.closed += 1


def test_a_service_whose_start_fails_under_serve_is_closed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stub = _Failing()

    def compose(*args: Any, **kwargs: Any) -> list[Any]:
        return [*composed(*args, **kwargs), stub]

    monkeypatch.setattr(runtime, "compose", compose)

    async def scene(hub: troth.Node) -> None:
        with pytest.raises(StorageError, match="locked"):
            async with hub.serve():
                pass
        assert stub.closed == 1
        assert runtimes_here(hub) == []
        monkeypatch.setattr(runtime, "compose", composed)
        async with hub.serve():  # the handle is free again
            pass
        assert stub.closed == 1

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))


def test_a_round_a_catch_up_and_a_node_announce_at_once_all_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The round's lock and the announcer's taken in one order (a round, then a catch-up after a
    reconnect, take the round's, then the announcer's; `troth identity rotate` with the node running
    only the announcer's): all three at once, the first announcement held, then one cancelled while
    it waits, all end (no deadlock), and a cancelled announcement lets the next one run."""
    held, release = asyncio.Event(), asyncio.Event()
    announced: list[str | None] = []
    pending = Announcer._announce_pending

    async def holding(self: Announcer, ref: str | None) -> list[dict[str, Any]]:
        announced.append(ref)  # (inside the announcer's lock)
        if len(announced) == 1:
            held.set()
            await release.wait()
        return await pending(self, ref)

    async def scene(hub: troth.Node) -> None:
        async with hub.serve() as served:
            node = served._runtime
            monkeypatch.setattr(Announcer, "_announce_pending", holding)
            loop = asyncio.get_running_loop()
            round_ = loop.create_task(node.maintain())
            await asyncio.wait_for(held.wait(), 5)
            catch_up = loop.create_task(node._catch_up())
            told = loop.create_task(node.announce_rotations(node.name))
            dropped = loop.create_task(node.announce_rotations())
            for _ in range(10):
                await asyncio.sleep(0)
            dropped.cancel()
            release.set()
            await asyncio.wait_for(asyncio.gather(round_, catch_up, told), 10)
            assert dropped.cancelled()
            assert await asyncio.wait_for(node.announce_rotations(), 5) == []

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
    assert announced[0] is None
    assert len(announced) == 4
