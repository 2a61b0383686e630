"""Review 62r: attacks on the runtime per `Node` handle (62j) and the lead's close fixes that
did not work (each fails if the defence breaks)."""

from __future__ import annotations

import asyncio

import pytest

import troth
from tests.support.public_api import READ, acme_and_agents, greet
from troth._api.network import runtimes_here
from troth.node.access import AccessRequest, LocalCaller

LOOPBACK = ("127.0.0.1", 0)


def test_a_block_nested_in_another_outside_serve_shares_its_runtime_its_failure_its_own() -> None:
    """Re-entrancy: `connect` inside `connect` outside serve runs on the one shared runtime;
    an exception leaving the inner block neither stops it under the outer one nor leaks it."""

    async def scene(agents: troth.Node, hub: troth.Node) -> list[object]:
        seen: list[object] = []
        async with hub.serve(listen=LOOPBACK, services=[greet]) as served:
            route, peer = served.address, served.identifier
            async with agents.connect(route, expect=peer) as outer:
                with pytest.raises(KeyError):
                    async with agents.connect(route, expect=peer) as inner:
                        assert inner._runtime is outer._runtime
                        seen.append(await inner.call("greet", "hi"))
                        raise KeyError("the inner block fails")
                assert runtimes_here(agents) == [outer._runtime]
                seen.append(await outer.call("greet", "hi"))
            seen.append(runtimes_here(agents))
            async with (  # the shared runtime stopped: serve may run
                agents.serve() as running,
                agents.connect(route, expect=peer) as channel,
            ):
                assert channel._runtime is running._runtime
                seen.append(await channel.call("greet", "hi"))
        return seen

    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        assert asyncio.run(scene(world.agents, world.hub)) == ["hi", "hi", [], "hi"]
        assert world.agents._running is None


def test_a_handle_closed_inside_serve_refuses_local_callers_and_no_new_handle_inherits_it() -> None:
    """`GatedPolicy.refusing` set by `close` refuses a caller in the process too (the LocalCaller
    branch comes after it), and lives on that runtime only: a new handle of the node serves on
    a fresh decision point, its channel answered, and its serve of the closed one's leaves
    nothing registered."""

    async def scene(world_hub: troth.Node) -> object:
        async with world_hub.serve() as closing:
            access = closing._runtime.access
            world_hub.close()
            request = AccessRequest(LocalCaller(), "greet", "hi", None, 0)
            refused = access.decide(request)
            assert not refused.allowed
            assert "is closed" in refused.reasons[0]
        assert runtimes_here_of("acme") == []
        with troth.Node.open("acme") as again, troth.Node.open("agents") as agents:
            async with again.serve(listen=LOOPBACK, services=[greet]) as served:
                assert served._runtime.access.refusing == ()
                async with agents.connect(served.address, expect=served.identifier) as channel:
                    return await channel.call("greet", "hi")

    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        assert asyncio.run(scene(world.hub)) == "hi"


def runtimes_here_of(name: str) -> list[object]:
    with troth.Node.open(name) as node:
        return list(runtimes_here(node))


def test_a_channel_whose_serve_block_ended_calls_nothing_once_the_next_serve_runs() -> None:
    """The Channel check when its serve block ended (its connect block still open, in a task
    of its own) and another serve of the handle started (a new RunningNode): the kept channel
    stays refused, the new block's channel answers."""

    async def scene(agents: troth.Node, hub: troth.Node) -> list[object]:
        seen: list[object] = []
        async with hub.serve(listen=LOOPBACK, services=[greet]) as served:
            route, peer = served.address, served.identifier
            opened, resume = asyncio.Event(), asyncio.Event()

            async def keep(first: troth.RunningNode) -> None:
                async with first.connect(route, expect=peer) as kept:
                    opened.set()
                    await resume.wait()
                    with pytest.raises(troth.RoutingError, match="no longer runs"):
                        await kept.call("greet", "hi")
                    seen.append("refused")

            async with agents.serve() as first:
                task = asyncio.get_running_loop().create_task(keep(first))
                await opened.wait()
            async with agents.serve() as second:
                resume.set()
                await task
                async with second.connect(route, expect=peer) as channel:
                    seen.append(await channel.call("greet", "hi"))
        return seen

    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        assert asyncio.run(scene(world.agents, world.hub)) == ["refused", "hi"]


def test_a_block_cancelled_while_the_shared_runtime_stops_frees_it_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancellation at the shared stop: the last block out is cancelled again while its runtime
    stops (held), and a new block enters meanwhile: the stop goes on, the new block waits for
    it and runs on a fresh runtime (answered), none is left running at the end."""
    from troth.node.runtime import NodeRuntime

    stopping, release = asyncio.Event(), asyncio.Event()
    stop, stopped = NodeRuntime.stop, []

    async def held_stop(self: NodeRuntime) -> None:
        if not release.is_set():
            stopping.set()
            await release.wait()
        await stop(self)
        stopped.append(self)

    monkeypatch.setattr(NodeRuntime, "stop", held_stop)

    async def scene(agents: troth.Node, hub: troth.Node) -> object:
        async with hub.serve(listen=LOOPBACK, services=[greet]) as served:
            route, peer = served.address, served.identifier
            release.set()  # (the hub's own stop is not held)
            release.clear()

            old: list[NodeRuntime] = []

            async def first() -> None:
                async with agents.connect(route, expect=peer) as channel:
                    old.append(channel._runtime)
                    await channel.call("greet", "hi")

            task = asyncio.get_running_loop().create_task(first())
            await stopping.wait()  # its block ended: the shared runtime stops, held
            assert runtimes_here(agents) == []  # (unregistered before it stops)
            task.cancel()  # cancelled again while it waits for the stop
            with pytest.raises(asyncio.CancelledError):
                await task

            async def second() -> object:
                async with agents.connect(route, expect=peer) as channel:
                    assert runtimes_here(agents) == [channel._runtime]
                    assert channel._runtime is not old[0]
                    return await channel.call("greet", "hi")

            entering = asyncio.get_running_loop().create_task(second())
            await asyncio.sleep(0)
            assert not entering.done()  # it waits for the stop
            release.set()
            answer = await entering
            assert runtimes_here(agents) == []
            assert old[0] in stopped  # the held stop went on to its end
            return answer

    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        assert asyncio.run(scene(world.agents, world.hub)) == "hi"
        assert world.agents._running is None
