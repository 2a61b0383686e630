"""Review 62s, refuted: what 62m's guards in a node's upkeep (troth.node.upkeep, runtime) did
not let through (tests/test_review62s_upkeep.py has the findings).

In-process, on the in-memory network (tests.support.nodes): each upkeep task is driven with a
step held open, then cancelled there, as `NodeRuntime.stop` cancels it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.support.waits import until
from troth.node import upkeep
from troth.node.runtime import NodeRuntime

Held = Callable[..., Coroutine[Any, Any, Any]]


def _held(entered: list[str], name: str) -> Held:
    """A step that never ends (until cancelled) the first time, saying it was entered (a
    task going on past its cancellation enters it again, and is not held there)."""

    async def step(*_: Any) -> None:
        entered.append(name)
        if entered.count(name) == 1:
            await asyncio.Event().wait()

    return step


def _recorded(entered: list[str], name: str) -> Held:
    async def step(*_: Any) -> None:
        entered.append(name)

    return step


async def _cancelled_while(task: asyncio.Task[None], entered: list[str], held: str) -> None:
    """Cancel `task` once it entered the step `held`: it ends cancelled (its `except
    Exception` guards do not take the cancellation for a failure and go on)."""
    await until(lambda: held in entered)
    task.cancel()
    await until(task.done)
    assert task.cancelled()


@pytest.mark.parametrize("loop", ["round", "services", "catch-up"])
def test_a_cancelled_upkeep_step_ends_its_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    """62m caught any Exception in the maintenance round's steps, in each service's
    maintenance, in a reconnect's catch-up: asyncio.CancelledError is a BaseException, so a
    stop's cancellation still ends the task there, and no later step runs (a round going on
    past its cancellation would maintain services being closed)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        entered: list[str] = []
        start: Callable[[NodeRuntime], Coroutine[Any, Any, None]]
        if loop == "round":
            monkeypatch.setattr(hub, "refresh_feeds", _held(entered, "held"))
            monkeypatch.setattr(hub, "_forget_refuted", _recorded(entered, "next"))
            start = NodeRuntime.maintain
        elif loop == "services":
            first, second, *_ = hub.host.services.values()
            monkeypatch.setattr(first, "maintain", _held(entered, "held"))
            monkeypatch.setattr(second, "maintain", _recorded(entered, "next"))
            start = NodeRuntime._maintain_services
        else:
            monkeypatch.setattr(hub, "refresh_credentials", _held(entered, "held"))
            monkeypatch.setattr(hub, "announce_rotations", _recorded(entered, "next"))
            start = NodeRuntime._catch_up
        await _cancelled_while(hub._spawn(start(hub)), entered, "held")
        assert entered == ["held"]

    run_memnet(test, tmp_path)


def test_a_cancelled_hosted_watch_ends_within_its_re_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hosted watch (62m: any Exception logged, polled on) ends when cancelled during a
    re-read: it does not poll on past a stop."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        entered: list[str] = []
        run, held = hub.worker.run, _held(entered, "held")

        async def worker_run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if function == hub.trust.refresh_hosted:
                return await held()
            return await run(function, *args, **kwargs)

        monkeypatch.setattr(hub.worker, "run", worker_run)
        monkeypatch.setattr(upkeep, "HOSTED_FEED_POLL", 0)
        await _cancelled_while(hub._spawn(hub._watch_hosted()), entered, "held")
        assert entered == ["held"]

    run_memnet(test, tmp_path)


def test_a_node_behind_at_start_runs_one_round_at_once_not_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """62m, lifecycle 3: a node whose trusted feeds are stale at start runs a round at once;
    it runs one, then waits MAINTENANCE_SECONDS (no second round at once, none before the
    first ended)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        entered: list[str] = []
        monkeypatch.setattr(hub, "_behind", lambda: True)
        monkeypatch.setattr(hub, "maintain", _recorded(entered, "round"))
        task = hub._spawn(hub._maintain())
        await until(lambda: entered == ["round"])
        for _ in range(20):  # the loop runs on: a second round would be entered here
            await asyncio.sleep(0)
        assert entered == ["round"]
        task.cancel()

    run_memnet(test, tmp_path)
