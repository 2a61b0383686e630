"""Review 71a (second review of the MCP held-request weighing, area mcpheld), findings.

Mcpheld 1. A request's `inputResponses` (the 2026-07-28 input-required round trip, which the
gate never asks for) are parsed by the SDK into its models (`CallToolRequestParams`), held
with the request as it waits in the gate: ~3 times their weight (1,000 roots: ~1.05 MB held
a call, 0.34 MB weighed, in a real session), so a session's 32 MiB of such calls held ~100 MB.
They and `requestState` are dropped as the request is sent (`held.UNSERVED`).

Mcpheld 2. A request's tool name is copied by the SDK's OpenTelemetry middleware into its
span name (`tools/call <name>`), held while the call waits: a call of a 400 KB name held
~2 times its weight.

Mcpheld 3. A request's `_meta` object's table is copied twice (the request context's and the
typed params'), held with it: a wide `_meta` held ~1.08 times its weight.

Mcpheld 5. A small tools/call waiting in the gate held ~13.4-14.6 KB (the SDK's task, request
context and session, the dispatcher's scopes, its span), weighed ~9-10 KB: each request weighs
`held.SERVED_OVERHEAD` (8 KiB) more.

Mcpheld 7. A request's id, an int of up to 4,300 digits, is held as its decimal text too (the
span's `jsonrpc.request.id`): ~0.9 KB a call under its weight. Counted.

Mcpheld 6 (session 70's "no server-wide cap"). A full session holds ~31.3 MiB (measured; 4
sessions ~125 MiB: linear), so a server's 256 sessions held up to ~8 GiB, reached by one
authority's members (free for it to mint). MAX_MCP_SERVER_HELD (1 GiB) bounds what a server's
sessions hold together, split by authority as the node's other pools are (troth.node.shares).

Mcpheld 4 (session 70's "two walks"): a tools/call's arguments were walked twice at `send`,
once for the value charge (`argument_values`) and once for the weight (`held._weigh`): one
walk (`held.weigh_arguments`) yields both, exactly as the two did.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from troth import limits


def _frame(params: dict[str, Any]) -> bytes:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    return json.dumps(call).encode()


def weighed_and_served(params: dict[str, Any]) -> tuple[int, int]:
    """(what a session holding nothing counts of a tools/call of `params`, what tracemalloc
    measures it holds decoded and served as the SDK serves it while it waits in the gate: the
    request, the request context's `_meta`, the typed params, the span name, the gate's copy
    of its arguments; not the parser's global cache of short strings)."""
    import gc
    import tracemalloc

    import mcp_types as types

    from troth.integrations.mcp.channel import decode_message
    from troth.integrations.mcp.held import HeldRequests

    frame = _frame(params)
    del params
    held = HeldRequests(1 << 40)
    decode_message(frame)  # the parser's cache of short strings (global, bounded) filled
    gc.collect()
    tracemalloc.start()
    try:
        item = decode_message(frame)
        assert held.hold(item, len(frame))
        request = item.message
        assert isinstance(request, types.JSONRPCRequest)
        raw = request.params or {}
        meta = types.RequestParams.model_validate(raw, by_name=False).meta  # _extract_meta
        typed = types.CallToolRequestParams.model_validate(raw, by_name=False)
        span = f"{request.method} {typed.name}"  # the OpenTelemetry middleware's span name
        copies = [meta, typed, span, dict(typed.arguments or {})]
        served, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del copies
    return held.total, served


_ROOTS = {"a": {"roots": [{"uri": "file:///a"} for _ in range(1000)]}}


def test_mcpheld_1_unserved_params_are_not_held() -> None:
    """71a mcpheld 1: a tools/call's `inputResponses` (roots) were parsed into the SDK's
    models as it was served and held with it, ~3 times their weight (`requestState`, a
    string, ~2 times in a real session): they are dropped as it is sent."""
    from troth.integrations.mcp.channel import decode_message
    from troth.integrations.mcp.held import HeldRequests

    extra = {"inputResponses": _ROOTS, "requestState": "s" * 100_000}
    item = decode_message(_frame({"name": "t", "arguments": {}, **extra}))
    assert HeldRequests(1 << 40).hold(item, 1)
    assert set(getattr(item.message, "params", None) or {}) == {"name", "arguments"}
    weight, served = weighed_and_served({"name": "t", "arguments": {}, **extra})
    assert weight >= served - _FREED


_FREED: Final = 32 << 10
"""What the interpreter keeps of the objects freed as the unserved params are dropped (its
free lists of dicts and lists, ~80 each), which tracemalloc still counts."""


def test_mcpheld_2_a_long_tool_name_weighs_its_span_names_copy() -> None:
    """71a mcpheld 2: a call of a 200 KB tool name held it twice (its span name), weighed
    once."""
    weight, served = weighed_and_served({"name": "n" * 200_000, "arguments": {}})
    assert weight >= served


def test_mcpheld_3_a_wide_meta_weighs_its_copies() -> None:
    """71a mcpheld 3: a wide `_meta`'s table was copied twice as the call was served
    (~1.08 times its weight held)."""
    meta = {f"k{i:05d}": 0 for i in range(2000)}
    weight, served = weighed_and_served({"name": "t", "arguments": {}, "_meta": meta})
    assert weight >= served


def _old_weigh(content: Any, most: int, values: int) -> int | None:
    """`held._weigh` as session 70 left it (review 70y, weighing 1): the reference."""
    total = 4096
    pending: list[Any] = [content]
    left = values
    while pending:
        value = pending.pop()
        total += (sys.getsizeof(value) + 15) & ~15
        if total > most:
            return most + 1
        if isinstance(value, dict | list | tuple):
            left -= len(value)
            if left < 0:
                return None
            if isinstance(value, dict):
                for key, item_value in value.items():
                    total += (sys.getsizeof(key) + 15) & ~15
                    pending.append(item_value)
            else:
                pending.extend(value)
    return min(total + (total >> 6), most + 1)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=9),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=24,
)


@settings(max_examples=80, deadline=None)
@given(
    arguments=st.dictionaries(st.text(max_size=4), _JSON) | _JSON,
    limit=st.integers(0, 40),
    most=st.integers(4096, 12_000),
)
def test_mcpheld_4_one_walk_agrees_with_the_two(arguments: Any, limit: int, most: int) -> None:
    """71a mcpheld 4: the folded walk yields exactly the value count `argument_values`
    charges (for an arguments object) and the weight `held._weigh` gave, over and under the
    value limit and the weight's most."""
    from troth.gates.toolschema import argument_values
    from troth.integrations.mcp.held import weigh_arguments

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "MAX_TOOL_ARGUMENT_VALUES", limit)
        values, weight = weigh_arguments(arguments, most)
        assert weight == _old_weigh(arguments, most, limit)
        if isinstance(arguments, dict):
            assert values == argument_values(arguments)


def test_mcpheld_4_a_call_over_the_value_limit_is_charged_and_cut_short() -> None:
    """71a mcpheld 4: a tools/call over MAX_TOOL_ARGUMENT_VALUES is charged one past the limit
    and weighs DENSEST a byte of its frame (review 70y), from the one walk."""
    from tests.support.mcp_weights import weighed
    from troth.integrations.mcp.held import DENSEST, MESSAGE_OVERHEAD

    frame = _frame({"name": "t", "arguments": {"x": [0] * (limits.MAX_TOOL_ARGUMENT_VALUES * 4)}})
    found = weighed(frame)
    assert found.values == limits.MAX_TOOL_ARGUMENT_VALUES + 1
    assert found.fits
    assert found.weight >= MESSAGE_OVERHEAD + DENSEST * len(frame)


@pytest.mark.parametrize("first", [1, 10**4290], ids=["small ids", "ids of 4,291 digits"])
def test_mcpheld_5_a_waiting_call_weighs_what_the_sdk_holds_of_it(
    monkeypatch: pytest.MonkeyPatch, first: int
) -> None:
    """71a mcpheld 5: a small tools/call waiting in the gate for a slot held ~13.4-14.6 KB (the
    SDK's task, request context and session, the dispatcher's scopes, its span), weighed
    ~9-10 KB (MESSAGE_OVERHEAD twice and its values); mcpheld 7: an id of an int of 4,291
    digits is held as its text too (the span's `jsonrpc.request.id`), ~0.9 KB a call under
    its weight. Measured in a real session, calls sent as `McpService.send` weighs them."""
    import anyio

    from tests.support.mcp_weights import held_waiting
    from tests.test_review47m_mcp_cancel import Blocking
    from tests.test_review55s_mcp import call, raw_session
    from troth.gates import ListRecorder
    from troth.integrations.mcp.held import HeldRequests

    monkeypatch.setattr(limits, "MAX_MCP_CALLS_PER_SESSION", 1)
    upstream, held = Blocking(), HeldRequests(1 << 40)
    params = json.dumps({"name": "lookup_order", "arguments": {"order_id": "o1"}})
    frames = [
        b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}'
        % (first + i, params.encode())
        for i in range(10)
    ]
    waiting = [0]

    async def main() -> None:
        async with raw_session(upstream, ListRecorder()) as (send, _):
            await send.send(call(99, "lookup_order", {"order_id": "o1"}))
            await upstream.started.wait()  # the one slot taken: the others wait
            waiting[0] = await held_waiting(send, frames, held)
            upstream.release.set()

    anyio.run(main)
    assert held.total >= waiting[0]


def test_mcpheld_6_a_servers_sessions_hold_a_bounded_weight_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71a mcpheld 6: bounded per session only, a server's MAX_MCP_SESSIONS sessions held up
    to ~8 GiB of requests (~31.3 MiB a full session, measured), reached by one authority's
    members: past MAX_MCP_SERVER_HELD a session of an authority over its share takes no more
    (one request when it holds none still), and a session's end gives its weight back."""
    import anyio

    from tests.support.nodes import MemNet, run_memnet
    from tests.test_mcp_channels import orders_by_frames
    from tests.test_review70l_mcpwait import PING, _answered
    from troth.errors import RemoteError
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call

    monkeypatch.setattr(limits, "MAX_MCP_SERVER_HELD", 1 << 20, raising=False)

    async def test(net: MemNet) -> None:
        service, writer, address = await orders_by_frames(net, "read")

        async def send(session: bytes, message: bytes | None) -> None:
            await call(writer.router, address, "send", [McpFrame(session, message).encode(), "w"])

        await send(b"a" * 16, PING % 1)
        await send(b"b" * 16, PING % 1)
        keys = sorted(service.sessions)  # the first's, the second's
        for key in keys:
            await _answered(service, key)
        first, second = (service.sessions[key].held for key in keys)
        assert second.take("kept", 1)
        # a session holding none: any weight, the pool having room (review 71i, wave2b 1)
        assert first.take("planted", 1 << 20)
        with pytest.raises(RemoteError, match="the MCP session holds"):
            await send(b"b" * 16, PING % 2)
        await send(b"a" * 16, None)  # the first session ends: its weight is given back
        with anyio.fail_after(10):
            while service.status()["sessions"] != 1:
                await anyio.sleep(0.01)
        await send(b"b" * 16, PING % 3)

    run_memnet(test, tmp_path)
