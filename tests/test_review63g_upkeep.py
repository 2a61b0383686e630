"""Review 63g, upkeep: a node's start and stop (troth.node.runtime), after review 62s.

Upkeep 1: `NodeRuntime.start` added each service with a lifecycle (the broker) to the node's
host only once its `start` returned. A start that failed, or was cancelled, midway (the
broker's: its database opened, its recovery under way on its thread for up to
`START_RECOVERY_SECONDS`; a `connect` block cancelled while its shared runtime started, a
SIGTERM) left that service out of what `stop` closes: its thread, its recovery task and its
upstream connections ran on after the node stopped and node.db closed (review 62s, upkeep 1
stopped the services that had started, not the one starting). Such a service is closed now
before the start's error goes on.

Upkeep 2: `start_running` (`Node.serve`, a `connect` block outside it) runs one maintenance
round before it gives the running node, and the upkeep runs one at once when the node is
behind (its feeds stale: served after a few minutes down): the two ran at the same time, each
step twice at once. `maintain` runs one round at a time, and the upkeep's first round runs
only when the node is still behind once the start's ended.

Upkeep 3: `NodeRuntime.stop` closed the services unguarded: one close failing (a caller's own
service with a plain `close`) ended the stop there, the rest left running. Each close is its
own now (a failure logged), and a plain `close` is called as one.

In-process: the daemon's body (`daemon.serve`) run on a node in a temporary home, with one
service of its composition replaced by a stub whose start fails or hangs.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.public_api import acme_and_agents
from troth.errors import StorageError
from troth.node import daemon, runtime
from troth.node.composition import compose as composed
from troth.node.node import init_node
from troth.node.runtime import NodeRuntime
from troth.node.worker import StoreWorker


class _Lifecycle:
    """A service with a lifecycle whose start opens something, then fails (`fail`) or waits
    for ever; what happened to it."""

    name = "stub"

    def __init__(self, fail: BaseException | None) -> None:
        self.fail = fail
        self.events: list[str] = []
        self.started = asyncio.Event()

    async def start(self) -> None:
        self.events.append("opened")
        self.started.set()
        if self.fail is not None:
            raise self.fail
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.events.append("closed")


def _with(monkeypatch: pytest.MonkeyPatch, stub: _Lifecycle) -> None:
    def compose(*args: Any, **kwargs: Any) -> list[Any]:
        return [*composed(*args, **kwargs), stub]

    monkeypatch.setattr(runtime, "compose", compose)


def test_a_service_whose_start_fails_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upkeep 1: its start fails after it opened what it holds: closed with the others."""
    init_node("n", home=tmp_path)
    stub = _Lifecycle(StorageError("its database is locked"))
    _with(monkeypatch, stub)
    with pytest.raises(StorageError, match="locked"):
        asyncio.run(daemon.serve(tmp_path, "n", None))
    assert stub.events == ["opened", "closed"]


def test_a_service_whose_start_is_cancelled_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upkeep 1: the node's start cancelled while that service starts (its recovery under
    way): closed, not left running once the node stopped."""
    init_node("n", home=tmp_path)
    stub = _Lifecycle(None)
    _with(monkeypatch, stub)

    async def main() -> None:
        serving = asyncio.create_task(daemon.serve(tmp_path, "n", None))
        await asyncio.wait_for(stub.started.wait(), 5)
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving

    asyncio.run(main())
    assert stub.events == ["opened", "closed"]


@pytest.mark.parametrize("behind", ["until a round ran", "always"])
def test_two_maintenance_rounds_never_run_at_once(
    monkeypatch: pytest.MonkeyPatch, behind: str
) -> None:
    """Upkeep 2: `Node.serve` (and a `connect` block outside it) runs one round before it
    gives the running node (`start_running`), and the runtime's upkeep runs one at once too
    when the node is behind (its feeds stale: a node served after a few minutes down): both
    ran at the same time, each step twice at once (the same feeds synced, the same credentials
    refreshed from their authorities, the same rotations announced, `rotated` twice). The
    rounds run one after the other."""
    running = most = 0
    rounds: list[str] = []
    refresh_feeds = NodeRuntime.refresh_feeds

    async def counted(self: NodeRuntime) -> None:  # a round's first step
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            for _ in range(5):  # it takes a few steps
                await asyncio.sleep(0)
            await refresh_feeds(self)
        finally:
            running -= 1
            rounds.append("round")

    monkeypatch.setattr(NodeRuntime, "refresh_feeds", counted)
    monkeypatch.setattr(NodeRuntime, "_behind", lambda self: behind == "always" or not rounds)

    async def scene(hub: troth.Node) -> None:
        async with hub.serve():
            expected = 2 if behind == "always" else 1
            for _ in range(200):  # the upkeep's round, when it runs, follows the start's
                if len(rounds) >= expected:
                    break
                await asyncio.sleep(0.01)
            for _ in range(20):  # no other round follows
                await asyncio.sleep(0)

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
    assert rounds == ["round"] * (2 if behind == "always" else 1)
    assert most == 1


class _Closing(troth.Service):
    """A service of the caller's own with a `close` of its own: a plain function (what the
    stop awaits) that fails."""

    def close(self) -> None:
        raise OSError("its file is gone")


def test_a_service_close_that_fails_leaves_the_rest_of_the_stop_to_go_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Upkeep 3: `NodeRuntime.stop` closed the services one after the other, unguarded: one
    whose close failed (a caller's own service with a plain `close`, awaited: a TypeError) ended
    the stop there, and the other services, the trace client (its records undelivered), the
    channels, the TCP listener and the storage thread were left running. Each close is its own
    now: a failure is logged, and the stop goes on."""
    drained: list[str] = []
    drain = StoreWorker.drain

    async def recorded_drain(self: StoreWorker) -> None:
        drained.append("storage thread")
        await drain(self)

    monkeypatch.setattr(StoreWorker, "drain", recorded_drain)

    async def scene(hub: troth.Node) -> None:
        async with hub.serve(services=[_Closing("closing")]):
            pass

    with acme_and_agents() as world, caplog.at_level(logging.ERROR, logger="troth.node"):
        asyncio.run(scene(world.hub))
    assert drained == ["storage thread"]
    assert [r.getMessage() for r in caplog.records] == ["closing service closing failed"]
