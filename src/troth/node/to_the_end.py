"""Run a stop or a close to its end, however often its caller is cancelled meanwhile (review
63g, api 1-2; review 63o, lifecycle 1: a second cancellation ended such a stop midway, and
what it stopped ran on); and the stages of a node's stop, each within its share of
NODE_STOP_SECONDS (`StopBudget`; review 63v, stop 1: a stage that never ended held the stop
for ever)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable

from troth.limits import NODE_STOP_RESERVE_SECONDS, NODE_STOP_SECONDS

__all__ = ["StopBudget", "to_its_end"]

log = logging.getLogger("troth.node")


async def to_its_end(stopping: Awaitable[None]) -> None:
    """Await `stopping` (a stop) in a task of its own until it ended, however often the caller
    is cancelled meanwhile; CancelledError after it when the caller was. The stop's own error
    goes on as it is, however the two met."""
    task = asyncio.ensure_future(stopping)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                cancelled = True
                continue
            failure = None if task.cancelled() else task.exception()
            if failure is None:
                raise
            # its error goes on, as when the caller was cancelled before it (review 63o,
            # lifecycle 3: cancelled in the step it failed, the error was left in its task)
            raise failure from None
        if cancelled:
            raise asyncio.CancelledError
        return


class StopBudget:
    """A node's stop: its stages one after another, each within what is left of
    NODE_STOP_SECONDS but NODE_STOP_RESERVE_SECONDS for each stage after it (so every stage
    has at least that); a stage past its share is abandoned: cancelled, an ERROR naming it,
    left to end on its own (one ignoring its cancellation runs on, unawaited)."""

    def __init__(self, node: str, stages: int) -> None:
        self.node = node
        self.stages = max(stages, 1)
        self.left = stages
        self.deadline = asyncio.get_running_loop().time() + NODE_STOP_SECONDS

    def _share(self) -> float:
        """The seconds the next stage has (one stage fewer left after it)."""
        self.left = max(self.left - 1, 0)
        now = asyncio.get_running_loop().time()
        reserve = min(NODE_STOP_RESERVE_SECONDS, NODE_STOP_SECONDS / self.stages)
        return max(self.deadline - now - self.left * reserve, 0.0)

    async def stage(self, name: str, stopping: Awaitable[None]) -> None:
        """Run stage `name` within its share; its error raised, an abandoned one logged."""
        await self.together(name, [(name, stopping)])

    async def together(self, stage: str, parts: Iterable[tuple[str, Awaitable[None]]]) -> None:
        """Run the `parts` of one stage (each named) at once, within the stage's share: those
        past it abandoned and named; the first error of those ended raised."""
        seconds = self._share()
        tasks = {asyncio.ensure_future(part): name for name, part in parts}
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()  # not awaited: a part past its share may never end
            log.error(
                "stopping node %s: %s did not end within %.1f s: abandoned",
                self.node,
                tasks[task] if tasks[task] == stage else f"{stage} ({tasks[task]})",
                seconds,
            )
        # each error retrieved (the services' are logged by their stage), the first raised
        failures = [task.exception() for task in done if not task.cancelled()]
        first = next((failure for failure in failures if failure is not None), None)
        if first is not None:
            raise first
