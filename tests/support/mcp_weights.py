"""A client's MCP message weighed as a published server's `send` weighs it (its value charge
counted in the same walk: review 71a, mcpheld 4), and what the requests waiting in a session
hold, measured."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from troth import limits
from troth.integrations.mcp.channel import decode_message
from troth.integrations.mcp.held import HeldRequests, Weighed


def weighed(message: bytes) -> Weighed:
    """The JSON-RPC `message` decoded and weighed by a session holding nothing."""
    return HeldRequests(limits.MAX_MCP_SESSION_HELD).weigh(decode_message(message), len(message))


async def held_waiting(
    send: MemoryObjectSendStream[Any], frames: list[bytes], held: HeldRequests
) -> int:
    """What tracemalloc measures `frames` hold, each counted into `held` as `McpService.send`
    counts it and sent to the session `send` feeds, once all of them wait (its slots at the
    upstream taken)."""
    gc.collect()
    tracemalloc.start()
    try:
        for frame in frames:
            item: Any = decode_message(frame)
            assert held.hold(item, len(frame))
            await send.send(item)
        item = None
        await anyio.wait_all_tasks_blocked()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
