"""Review 63v2, stop: the bounded node stop of review 63v (troth.node.runtime's StopBudget)
against the trace client's close (troth.node.services.trace.NodeTraces.close).

Stop 1: the trace client's stage is the third of a node's stop; its share of
NODE_STOP_SECONDS is what the upkeep tasks and the services left (an MCP session's close alone
may take MCP_CLOSE_SECONDS = 3 s of 8, leaving the trace client 3 s) while its close flushes
for up to 5 s to a trace service. Past its share the stage is cancelled, and
`NodeTraces.close` was cut in its flush: the client's `stop` never ran, so its pump ran on
after the node stopped (sending through closed channels, its storage calls refused, an ERROR
each backoff, for the life of the event loop), the outbox stayed claimed (another process, or
the node started again in this process, could not send it) and the node's trace log was never
closed. The client is stopped and the log closed however the close ends now.

Shown without real time: the trace service never answers (an event the test holds).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from troth.clock import FixedClock
from troth.node.node import Node
from troth.node.services.trace import NodeTraces, TraceClient
from troth.trace.batcher import Batcher


class _Outbox:
    """A batcher whose one record is never answered; `close` noted."""

    batch_records = 10
    head_known = False  # the pump asks the trace service first (it never answers)
    in_flight = None

    def __init__(self) -> None:
        self.closed = False

    def pending(self) -> int:
        return 1

    def queued(self) -> int:
        return 1

    def agent(self, now: int) -> str:
        return "agent"

    def claim(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def test_a_trace_client_close_cut_short_still_stops_its_pump_and_lets_the_outbox_go() -> None:
    """Stop 1: the close is cancelled (its stage past its share) during its flush; the pump
    ends and the outbox is let go all the same."""
    outbox = _Outbox()
    never = asyncio.Event()

    async def send(method: str, body: Any) -> Any:
        await never.wait()

    async def main() -> TraceClient:
        client = TraceClient(send, cast(Batcher, outbox), clock=FixedClock(1_000), flush_seconds=0)
        client.recorded = 1
        traces = NodeTraces(cast(Node, None), clock=FixedClock(1_000))
        traces._client = client
        closing = asyncio.ensure_future(traces.close())
        for _ in range(5):  # the flush under way, the pump waiting on the trace service
            await asyncio.sleep(0)
        assert not closing.done()
        closing.cancel()  # the stop's budget: the stage past its share
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        return client

    client = asyncio.run(main())
    assert outbox.closed, "the outbox is let go for the next sender"
    assert client._task is None, "the pump is stopped"
