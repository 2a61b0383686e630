"""Review 62j: one runtime per `Node` handle (the fix of review 62h, api 4; its tests are in
tests/test_review62h_api.py).

serve 1: two `connect` blocks of one handle outside `serve`, entered together, each ran a
runtime of the node: each saw none running yet (the handle was marked only once a runtime had
started), so two runtimes kept the same store and feeds, and the first to end unmarked the
handle while the other still ran.
serve 2: a `connect` block entered while the handle's `serve` block was starting ran a runtime
of its own beside it.
serve 3: `serve` entered while a `connect` block of the handle outside `serve` started its
runtime ran a second runtime beside it (once that one ran, it was refused: the handle was
marked). Now a RuntimeError either way (docs/python.md: serve first, and connect inside its
block).
serve 4: a block cancelled while the runtime it shares starts must leave the others served,
and the last block out stops it (no runtime leaked).
serve 5: the same for `Node.secrets`' leases outside `serve` (troth._api.secrets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import READ, Agents, acme_and_agents, greet
from tests.test_api_secrets import SUPPORT_LEASES
from troth._api.network import runtimes_here
from troth.node.runtime import NodeRuntime

LOOPBACK = ("127.0.0.1", 0)
Scene = Callable[[str, troth.Identifier], Awaitable[Any]]


@dataclass
class Runs:
    """The runtimes of the agents node started and stopped in a test (their ids), and `hold`:
    while set to an unset Event, the first start waits for it first."""

    started: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    hold: asyncio.Event | None = None

    def settled(self, node: troth.Node) -> None:
        """Every runtime started was stopped, and none is left marked or registered."""
        assert sorted(self.started) == sorted(self.stopped)
        assert node._running is None
        assert runtimes_here(node) == []


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    seen = Runs()
    real_start, real_stop = NodeRuntime.start, NodeRuntime.stop

    async def start(self: NodeRuntime, listen: tuple[str, int] | None = None) -> None:
        if self.name == "agents":
            seen.started.append(id(self))
            if seen.hold is not None and len(seen.started) == 1:
                await seen.hold.wait()
        await real_start(self, listen)

    async def stop(self: NodeRuntime) -> None:
        if self.name == "agents":
            seen.stopped.append(id(self))
        await real_stop(self)

    monkeypatch.setattr(NodeRuntime, "start", start)
    monkeypatch.setattr(NodeRuntime, "stop", stop)
    return seen


@pytest.fixture
def world() -> Iterator[Agents]:
    """acme's hub; the agents node (and its `support`) acme's members."""
    with acme_and_agents() as made:
        made.agents.enroll(made.acme.ticket(READ))
        yield made


@pytest.fixture
def broker(world: Agents) -> Agents:
    """`world`, its hub brokering `payments` to members."""
    world.hub.secrets.put("payments", engine="token", config=PAYMENTS)
    world.hub.policies.publish(policies=SUPPORT_LEASES, tools={}, revision=1)
    return world


def _at_hub(world: Agents, scene: Scene) -> Any:
    """`scene(address, identifier)` while the hub serves `greet` (and its broker)."""

    async def main() -> Any:
        async with world.hub.serve(listen=LOOPBACK, services=[greet]) as hub:
            return await scene(hub.address, hub.identifier)

    return asyncio.run(main())


def _one_runtime(world: Agents, runs: Runs, scene: Scene) -> Any:
    """`_at_hub(world, scene)`, having started one runtime of the agents node, stopped since."""
    answer = _at_hub(world, scene)
    assert len(runs.started) == 1
    runs.settled(world.agents)
    return answer


async def _greet(node: troth.Node, at: str, hub: troth.Identifier) -> object:
    async with node.connect(at, expect=hub) as channel:
        return await channel.call("greet", "hi")


async def _lease(world: Agents, at: str, hub: troth.Identifier) -> tuple[str, ...]:
    issued = await world.agents.secrets.lease(
        "payments", holder="support", broker=at, expect=hub, scope=["refunds"], ttl=60
    )
    return issued.lease.scope


async def _turns() -> None:
    """Let the other tasks run a few turns of the loop."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _until(done: Callable[[], object]) -> None:
    """Let the loop run until `done()` (a bounded number of turns)."""
    for _ in range(200):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("never came about")


def test_serve1_two_connect_blocks_outside_serve_run_one_runtime(world: Agents, runs: Runs) -> None:
    async def scene(at: str, hub: troth.Identifier) -> list[object]:
        return list(await asyncio.gather(*(_greet(world.agents, at, hub) for _ in range(3))))

    assert _one_runtime(world, runs, scene) == ["hi", "hi", "hi"]


def test_a_connect_block_and_a_lease_inside_serve_use_the_serve_blocks_runtime(
    broker: Agents, runs: Runs
) -> None:
    async def scene(at: str, hub: troth.Identifier) -> list[object]:
        async with (
            broker.agents.serve() as running,
            broker.agents.connect(at, expect=hub) as channel,
        ):
            assert channel._runtime is running._runtime
            return [await channel.call("greet", "hi"), await _lease(broker, at, hub)]

    assert _one_runtime(broker, runs, scene) == ["hi", ("refunds",)]


def test_serve2_a_connect_block_entered_while_serve_starts_uses_its_runtime(
    world: Agents, runs: Runs
) -> None:
    async def scene(at: str, hub: troth.Identifier) -> object:
        runs.hold = asyncio.Event()
        done = asyncio.Event()

        async def serving() -> NodeRuntime:
            async with world.agents.serve() as running:
                await done.wait()
                return running._runtime

        served = asyncio.create_task(serving())
        await _until(lambda: runs.started)
        greeting = asyncio.create_task(_greet(world.agents, at, hub))
        await _turns()  # it waits for serve (or, unfixed, starts a runtime of its own)
        runs.hold.set()
        answer = await greeting
        done.set()
        await served
        return answer

    assert _one_runtime(world, runs, scene) == "hi"


def test_serve3_serve_entered_while_a_connect_block_outside_serve_starts_is_a_runtime_error(
    world: Agents, runs: Runs
) -> None:
    """(And a block entered from another event loop meanwhile is a ConfigError: unfixed, it ran
    a runtime of its own on its loop.)"""

    async def scene(at: str, hub: troth.Identifier) -> object:
        runs.hold = asyncio.Event()
        greeting = asyncio.create_task(_greet(world.agents, at, hub))
        await _until(lambda: runs.started)
        with pytest.raises(RuntimeError, match=r"already running in this process.*outside serve"):
            async with world.agents.serve():
                pass
        with pytest.raises(troth.ConfigError, match="another event loop"):
            await asyncio.to_thread(asyncio.run, _greet(world.agents, at, hub))
        runs.hold.set()
        return await greeting

    assert _one_runtime(world, runs, scene) == "hi"


def test_serve_entered_while_a_connect_block_outside_serve_runs_is_a_runtime_error(
    world: Agents, runs: Runs
) -> None:
    async def scene(at: str, hub: troth.Identifier) -> object:
        async with world.agents.connect(at, expect=hub) as channel:
            with pytest.raises(RuntimeError, match="already running in this process"):
                async with world.agents.serve():
                    pass
            return await channel.call("greet", "hi")

    assert _one_runtime(world, runs, scene) == "hi"


def test_serve4_a_block_cancelled_while_the_runtime_starts_leaves_the_other_served(
    world: Agents, runs: Runs
) -> None:
    async def scene(at: str, hub: troth.Identifier) -> object:
        runs.hold = asyncio.Event()
        first = asyncio.create_task(_greet(world.agents, at, hub))
        await _until(lambda: runs.started)
        second = asyncio.create_task(_greet(world.agents, at, hub))
        await _turns()  # the second joins (or, unfixed, starts its own)
        first.cancel()
        await asyncio.wait([first])
        assert first.cancelled()
        runs.hold.set()
        return await second

    assert _one_runtime(world, runs, scene) == "hi"


def test_serve4_blocks_all_cancelled_while_the_runtime_starts_leak_none(
    world: Agents, runs: Runs
) -> None:
    async def scene(at: str, hub: troth.Identifier) -> object:
        runs.hold = asyncio.Event()
        blocks = [asyncio.create_task(_greet(world.agents, at, hub)) for _ in range(2)]
        await _until(lambda: runs.started)
        await _turns()
        for block in blocks:
            block.cancel()
        await asyncio.wait(blocks)
        assert all(block.cancelled() for block in blocks)
        runs.settled(world.agents)  # the last one out stopped it
        runs.hold.set()
        answer = await _greet(world.agents, at, hub)  # the handle runs again
        async with world.agents.serve():  # and serves
            return answer

    assert _at_hub(world, scene) == "hi"
    runs.settled(world.agents)


def test_serve5_two_leases_outside_serve_run_one_runtime(broker: Agents, runs: Runs) -> None:
    async def scene(at: str, hub: troth.Identifier) -> list[object]:
        return list(await asyncio.gather(_lease(broker, at, hub), _lease(broker, at, hub)))

    assert _one_runtime(broker, runs, scene) == [("refunds",), ("refunds",)]


def test_serve5_a_lease_and_a_connect_block_outside_serve_share_the_runtime(
    broker: Agents, runs: Runs
) -> None:
    async def scene(at: str, hub: troth.Identifier) -> list[object]:
        runs.hold = asyncio.Event()
        greeting = asyncio.create_task(_greet(broker.agents, at, hub))
        await _until(lambda: runs.started)
        leasing = asyncio.create_task(_lease(broker, at, hub))
        await _turns()
        with pytest.raises(RuntimeError, match="outside serve"):
            async with broker.agents.serve():
                pass
        greeting.cancel()  # the block that started it
        await asyncio.wait([greeting])
        runs.hold.set()
        return [await leasing]

    assert _one_runtime(broker, runs, scene) == [("refunds",)]


def test_serve2_a_serve_block_cancelled_while_it_starts_leaves_the_waiting_block_run(
    world: Agents, runs: Runs
) -> None:
    """A `connect` block waiting for a starting `serve` block runs the node itself once that
    block was cancelled: one runtime at a time, each stopped."""

    async def scene(at: str, hub: troth.Identifier) -> object:
        runs.hold = asyncio.Event()

        async def serving() -> None:
            async with world.agents.serve():
                raise AssertionError("cancelled while it starts")

        served = asyncio.create_task(serving())
        await _until(lambda: runs.started)
        greeting = asyncio.create_task(_greet(world.agents, at, hub))
        await _turns()
        assert len(runs.started) == 1  # it waits for serve
        served.cancel()
        await asyncio.wait([served])
        assert served.cancelled()
        return await greeting

    assert _at_hub(world, scene) == "hi"
    assert len(runs.started) == 2
    runs.settled(world.agents)
