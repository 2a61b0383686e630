"""Review 64c, stop: session 63's bounded stop attacked (troth.node.services.trace, NodeTraces).

Stop 1: `NodeTraces.close` (the trace-client stage of a node's stop) let go of the node's log,
but nothing said it was closed for good: the channels stay open for three more stages, and a
peer's first trace submission meanwhile (`TraceService.collector`, a gate's or the broker's
recorder asked for then) opened trace.db again, which nothing closed: the log, its SQLite
connections and its writer lock outlived the stop (and took records after the node's trace
client had stopped). A closed NodeTraces refuses now (StorageError: the node stopped).

Stop 2: `NodeTraces.close` closed the log on the event loop's thread: `TraceLog.close` waits for
a group commit under way, which waits up to the busy timeout (30 s) for another process's turn
on trace.db (`troth trace` commands, a second writer), so the whole loop stopped: no stage of
the bounded stop could be abandoned, NODE_STOP_SECONDS was passed, and `troth node stop`
SIGKILLed the node after 10 s. The log is closed on a daemon thread of its own now, awaited
(the stage abandoned past its share; the log closed once the commit ended).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from troth.errors import StorageError
from troth.node import runtime as runtime_module
from troth.node import to_the_end
from troth.node.node import init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import TraceService

GUARD = 1.5  # seconds a bounded stop gets here before it counts as held


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(to_the_end, "NODE_STOP_SECONDS", 0.35, raising=False)
    monkeypatch.setattr(to_the_end, "NODE_STOP_RESERVE_SECONDS", 0.04, raising=False)
    monkeypatch.setattr(runtime_module, "UPKEEP_STOP_SECONDS", 0.05)


def test_a_submission_during_the_rest_of_the_stop_opens_no_trace_log_again(
    tmp_path: Path,
) -> None:
    """Stop 1: a peer's first submission reaches the trace service after the trace client's
    stage (while the links stop, its channel still open): refused, and no log is left open."""
    init_node("n", home=tmp_path)
    seen: list[BaseException | None] = []

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(None)
            service = runtime.host.services["trace"]
            assert isinstance(service, TraceService)
            stop_links = runtime.links.stop

            async def links_stop() -> None:  # the submission, between the stages
                try:
                    await runtime.worker.run(service.collector)
                    seen.append(None)
                except StorageError as exc:
                    seen.append(exc)
                await stop_links()

            runtime.links.stop = links_stop  # type: ignore[method-assign]
            await runtime.stop()
            assert runtime.traces._log is None, "trace.db opened again, left open after stop"
            with pytest.raises(StorageError, match="stopped"):
                runtime.traces.recorder()

    asyncio.run(main())
    assert len(seen) == 1
    assert isinstance(seen[0], StorageError)


def test_a_commit_waiting_on_trace_db_does_not_block_the_loop_during_the_stop(
    tmp_path: Path, small_bound: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop 2: a commit of the log under way (its lead held: another process's turn on
    trace.db) when the node stops; the stop returns within its bound all the same (the loop
    went on), and the log is closed once the commit ended."""
    init_node("n", home=tmp_path)
    stopped, held = threading.Event(), threading.Event()
    outcome: list[bool] = []

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(None)
            log = await runtime.worker.run(runtime.traces.log)

            def commit() -> None:  # the lead held until the stop returned (or the guard)
                with log._exclusive():
                    held.set()
                    outcome.append(stopped.wait(GUARD))

            threading.Thread(target=commit, daemon=True).start()
            held.wait()
            await runtime.stop()
            stopped.set()
            for _ in range(200):  # the log's close, on its own thread, once the lead is free
                if log.store._closed:
                    break
                await asyncio.sleep(0.01)
            assert log.store._closed, "the log was never closed"

    with caplog.at_level(logging.ERROR, logger="troth.node"):
        asyncio.run(main())
    assert outcome == [True], "the stop waited on the event loop for the commit to end"
