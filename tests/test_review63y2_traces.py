"""Review 63y2, traces: the trace client's close cut short (review 63v2, stop 1).

Traces 1: `TraceClient.stop` lets the outbox go (`batcher.close`: its flock released, for the
next sender) on the node's storage thread, queued there. Behind a call stuck on that thread
(an HSM that never answers: review 63v, stop 2) the node's stop cuts the trace client's stage
short, the close queued is dropped (the storage thread abandoned), and the outbox stayed
claimed for the life of the process (the flock's holder is kept in `_KEPT_LOCKS`): another
outbox of that database in this process (the node started again in it: `troth.Node`, the
demo, a test) cannot claim it (flock(2) locks of two opens conflict), its pump told "another
process sends this outbox" for ever. The outbox is let go however the stop ends now (the
flock's release needs no storage).

Shown without real time: the stuck storage call waits on an event the test holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, cast

from tests.test_review63v2_stop import _Outbox
from troth.clock import FixedClock
from troth.node.node import Node
from troth.node.services.trace import NodeTraces, TraceClient
from troth.node.worker import StoreWorker
from troth.trace.batcher import Batcher


def test_a_trace_close_cut_short_behind_a_stuck_storage_call_lets_the_outbox_go() -> None:
    """Traces 1: the storage thread stuck; the trace stage cancelled, then the storage stage
    abandoned: the outbox is let go all the same."""
    outbox = _Outbox()
    never = asyncio.Event()

    async def send(method: str, body: Any) -> Any:
        await never.wait()

    async def main() -> None:
        worker = StoreWorker()
        running, release = threading.Event(), threading.Event()

        def stuck() -> None:
            running.set()
            release.wait(5)

        client = TraceClient(send, cast(Batcher, outbox), clock=FixedClock(1_000), run=worker.run)
        traces = NodeTraces(cast(Node, None), clock=FixedClock(1_000))
        traces._client = client
        held = asyncio.ensure_future(worker.run(stuck))
        await asyncio.to_thread(running.wait, 5)
        try:
            closing = asyncio.ensure_future(traces.close())
            for _ in range(5):  # the outbox's close queued behind the stuck call
                await asyncio.sleep(0)
            closing.cancel()  # the trace client's stage past its share
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            worker.abandon()  # the storage thread's stage past its share
        finally:
            release.set()
        await held

    asyncio.run(main())
    assert outbox.closed, "the outbox is let go for the next sender"
