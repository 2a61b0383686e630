"""Review 70u (70l's MCP held-weight limits, area mcpheld), findings with their fixes.

Mcpheld 1. `message_weight` counted each value's `sys.getsizeof`, which is less than what
Python allocates for an int of one 30-bit digit (28 bytes, 32 allocated, as tracemalloc
measures): a frame of ints 257..2**30 weighed ~10% under what it held (its 1/64 margin short
of it), so a session held more than MAX_MCP_SESSION_HELD and the docstring's "at least what
tracemalloc measures" was false. Each size is now rounded up to pymalloc's 16 bytes.

Mcpheld 2. A tools/call's arguments object is copied as the call is served, the request
itself held by the SDK's dispatcher all along: the SDK's typed params (`CallToolRequestParams`
copies the top-level dict) and the gate's own `dict(arguments)` (and a filler's, for a tool
with fillers), each the size of the original's table. Weighed once, a wide object of 16,000
members (within MAX_TOOL_ARGUMENT_VALUES, so it waits for a slot) held ~1.2x its weight, one of
100,000 (over it) ~1.35x: a session's 32 MiB of such calls held ~40 MB. Its table is counted
three more times now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mcp.shared.message import SessionMessage


def call_frame(arguments: Any) -> bytes:
    """The frame of a tools/call of `arguments` (`decoded_call`'s)."""
    import json

    params = {"name": "t", "arguments": arguments}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    return json.dumps(call).encode()


def decoded_call(arguments: Any, serve: bool = False) -> tuple[SessionMessage, int]:
    """A tools/call of `arguments` decoded as a session's `send` does, and what tracemalloc
    measures it holds (`serve`: and the copies of its arguments made as it is served, the SDK's
    typed params and the gate's dict, kept as it is measured)."""
    import gc
    import tracemalloc

    import mcp_types as types

    from troth.integrations.mcp.channel import decode_message

    frame = call_frame(arguments)
    del arguments
    gc.collect()
    tracemalloc.start()
    try:
        item = decode_message(frame)
        copies: list[Any] = []
        if serve:
            request = item.message
            assert isinstance(request, types.JSONRPCRequest)
            typed = types.CallToolRequestParams.model_validate(request.params)  # the SDK's
            copies += [typed, dict(typed.arguments or {})]  # and McpGate.call_tool's
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return item, held


@pytest.mark.parametrize("first", [300, 1000, 1 << 20])
def test_mcpheld_1_the_weight_of_ints_is_at_least_what_they_hold(first: int) -> None:
    """70u mcpheld 1: a tools/call of ints of one 30-bit digit weighed ~10% under what
    tracemalloc measured of it decoded (28 bytes counted of each, 32 allocated)."""
    from troth.integrations.mcp.held import message_weight

    item, held = decoded_call({"x": [first + i for i in range(100_000)]})
    assert message_weight(item, 1 << 40) >= held


@pytest.mark.parametrize("members", [16_000, 100_000])
def test_mcpheld_2_a_calls_arguments_weigh_with_their_copies(members: int) -> None:
    """70u mcpheld 2: what a session counted of a tools/call with a wide arguments object was
    less than it holds as the call is served (the request, the SDK's typed params and the
    gate's dict of the arguments, as tracemalloc measures them)."""
    from troth.integrations.mcp.held import HeldRequests

    arguments: dict[str, list[Any]] = {f"{i:06d}": [] for i in range(members)}
    item, served = decoded_call(arguments, serve=True)
    held = HeldRequests(1 << 40)
    assert held.hold(item, len(call_frame(arguments)))
    assert held.total >= served
