"""Review 70l (the MCP gate's waiting calls, and what a member owes of its MCP budget),
findings with their fixes.

Mcpwait 1 (70f values 3, closed). A request sent to a published MCP server waits decoded, in
the session's queue then in the gate (for a slot at the upstream, for room for its answer),
bounded by count only (MAX_MCP_CALLS_PER_SESSION + MAX_MCP_QUEUE a session): a 1 MiB frame
of empty arrays decodes to ~22 MB (of `{"":0}`, ~28 MB), so a session held ~1.5-2 GB, a
member's 8 sessions ~12-16 GB. Each request is now weighed as it is sent
(troth.integrations.mcp.held: `message_weight`, at least what tracemalloc measures), counted
until it is answered (or cancelled), and a session holds at most MAX_MCP_SESSION_HELD (32 MiB;
one request of any weight when it holds none, so an honest call at the limits is served): one
more is refused at `send`, never decided, as a spent budget is. A notification or response
from the client weighs at most MAX_MCP_SESSION_HELD / MAX_MCP_QUEUE. A request of an id the
session holds is refused (its answer would let go of the other's weight). A tools/call over
MAX_TOOL_ARGUMENT_VALUES waits for no slot at the upstream: decided (denied and recorded by
the gate, as before) as it comes. The measurement is test_review70f_values.py's values 3.

Mcpwait 2. `ByteBudgets.take_all` with its table full: the bucket it made for one new source
was forgotten (`prune`: it is full) as it made the next one's, and the charge went to the
forgotten bucket, so a delegate counting against two new members was served with one of
them charged nothing (deny when in doubt: refused now, nothing spent).

Mcpwait 3. `ByteBudgets.owe` dropped a debt whose source had no bucket and no room for one:
a trace query's answer, owed after the query ran on the storage thread, cost nothing when the
member's bucket had refilled and been pruned meanwhile and the table filled with others. A
debt always gets its bucket now (past `max_sources`, one per answer in progress at most).

Mcpwait 4. A tools/call's params besides its arguments (`_meta`, any other field) are charged
nothing (the values charge counts the arguments) and waited with the call: a frame of them
weighed ~22 MB, within the session's limit when it held nothing. The rest of a request weighs
at most what a notification may (MAX_MCP_SESSION_HELD / MAX_MCP_QUEUE, 512 KiB), so a session
holds at most MAX_MCP_SESSION_HELD, or one call over the value limit while it is decided.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from troth import limits
from troth.errors import RemoteError
from troth.rates import ByteBudgets

PING = b'{"jsonrpc":"2.0","id":%d,"method":"ping"}'


async def _answered(service: object, key: tuple[str, bytes]) -> None:
    """Wait (bounded) until the session `key` holds no request."""
    import anyio

    with anyio.fail_after(10):
        while service.sessions[key].held.total:  # type: ignore[attr-defined]
            await anyio.sleep(0.01)


def test_mcpwait_1_a_session_refuses_requests_past_what_it_holds(tmp_path: Path) -> None:
    """70l mcpwait 1: what a session holds of decoded requests is counted as they are sent
    and let go as they are answered; past MAX_MCP_SESSION_HELD one more is refused at `send`,
    a request of an id held too, a heavy notification as well (a session it opened closed)."""
    import anyio

    from tests.test_mcp_channels import orders_by_frames
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call

    async def test(net: MemNet) -> None:
        service, writer, address = await orders_by_frames(net, "read")

        async def send(session: bytes, message: bytes) -> None:
            await call(writer.router, address, "send", [McpFrame(session, message).encode(), "w"])

        await send(b"s" * 16, PING % 1)
        (key,) = service.sessions
        held = service.sessions[key].held
        await _answered(service, key)  # the ping answered: let go
        assert held.take("planted", limits.MAX_MCP_SESSION_HELD)
        with pytest.raises(RemoteError, match="the MCP session holds"):
            await send(b"s" * 16, PING % 2)
        held.let_go("planted")
        assert held.take(9, 1)  # a request of id 9 waiting
        with pytest.raises(RemoteError, match="the MCP session holds"):
            await send(b"s" * 16, PING % 9)
        held.let_go(9)
        await send(b"s" * 16, PING % 3)
        await _answered(service, key)
        heavy = b'{"jsonrpc":"2.0","method":"notifications/x","params":{"x":['
        heavy += b",".join([b"[]"] * (200_000)) + b"]}}"
        with pytest.raises(RemoteError, match="the MCP session holds"):
            await send(b"n" * 16, heavy)
        with anyio.fail_after(10):  # the one it opened is closed, its task ends
            while service.status()["sessions"] != 1:
                await anyio.sleep(0.01)

    run_memnet(test, tmp_path)


def test_mcpwait_2_take_all_with_a_full_table_charges_every_source_or_none() -> None:
    """70l mcpwait 2: `take_all` of two new sources with room for one: the first's bucket,
    made full, was pruned as the second's was made, its charge lost (served uncharged)."""
    budgets = ByteBudgets(rate=1, burst=100, max_sources=2)
    assert budgets.take("x", 50, now=0)  # in use: not pruned
    if budgets.take_all(["a", "b"], 10, now=0):  # each charged, in a bucket kept
        kept = budgets._buckets
        assert [kept[s].level if s in kept else None for s in ("a", "b")] == [90, 90]


def test_mcpwait_1_a_call_over_the_value_limit_waits_for_no_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70l mcpwait 1: a tools/call over MAX_TOOL_ARGUMENT_VALUES waited, its arguments held,
    for a slot at the upstream (behind slow calls) only to be denied: it is decided as it
    comes, denied and recorded by the gate as before (the reason naming the limit)."""
    import anyio
    import mcp_types as types

    from tests.test_review47m_mcp_cancel import Blocking
    from tests.test_review55s_mcp import call, raw_session
    from troth.gates import ListRecorder

    monkeypatch.setattr(limits, "MAX_MCP_CALLS_PER_SESSION", 1)
    recorder, upstream = ListRecorder(), Blocking()
    over = {"order_id": "o1", "x": [0] * limits.MAX_TOOL_ARGUMENT_VALUES}

    async def main() -> None:
        async with raw_session(upstream, recorder) as (send, out):
            await send.send(call(1, "lookup_order", {"order_id": "o1"}))
            await upstream.started.wait()
            await send.send(call(2, "lookup_order", over))
            with anyio.fail_after(10):  # the upstream's one slot still taken
                answer = (await out.receive()).message
            upstream.release.set()
            with anyio.fail_after(10):
                await out.receive()
        assert isinstance(answer, types.JSONRPCResponse)
        assert answer.id == 2
        assert answer.result["isError"]

    anyio.run(main)
    denied = [r.decision for r in recorder.records if not r.decision.allowed]
    assert len(denied) == 1
    assert "MAX_TOOL_ARGUMENT_VALUES" in denied[0].reason


def test_mcpwait_1_a_cancelled_call_lets_go_of_its_weight() -> None:
    """70l mcpwait 1: a call its client cancels (`notifications/cancelled`: the SDK writes it
    no answer) lets go of what its session counted of it, as it was sent at once or once at
    the upstream, so a session cancelling its calls is not left refusing its next ones."""
    import anyio

    from tests.test_review47m_mcp_cancel import Blocking
    from tests.test_review55s_mcp import call, raw, raw_session
    from troth.gates import ListRecorder
    from troth.integrations.mcp.held import HELD, HeldRequests

    held = HeldRequests(limits.MAX_MCP_SESSION_HELD)

    async def main() -> None:
        HELD.set(held)  # as run_session sets it around the server
        upstream = Blocking()
        async with raw_session(upstream, ListRecorder()) as (send, _):
            for ident, at_once in ((1, True), (2, False)):
                assert held.take(ident, limits.MAX_MCP_SESSION_HELD)
                await send.send(call(ident, "lookup_order", {"order_id": "o1"}))
                if not at_once:
                    await upstream.started.wait()
                cancelled = {"requestId": ident}
                notice = {"jsonrpc": "2.0", "method": "notifications/cancelled"}
                await send.send(raw({**notice, "params": cancelled}))
                with anyio.fail_after(10):
                    while len(held):
                        await anyio.sleep(0.01)

    anyio.run(main)
    assert held.total == 0


def test_mcpwait_3_a_debt_is_owed_with_the_table_full() -> None:
    """70l mcpwait 3: `owe` of a source whose bucket is gone (refilled and pruned while its
    answer was made: a trace query's, owed after the query ran on the storage thread) with
    the table full of others dropped the debt: the answer cost nothing. A debt is always kept
    now (its bucket made past `max_sources`: one per answer in progress at most, pruned once
    refilled)."""
    budgets = ByteBudgets(rate=10, burst=100, max_sources=2)
    assert budgets.take_all([b"a"], 10, now=0)
    assert budgets.take(b"x", 50, now=1)  # a has refilled by now: pruned for y's bucket
    assert budgets.take(b"y", 50, now=1)
    budgets.owe([b"a"], 1_000, now=1)  # the answer's weight, known once it is made
    assert not budgets.take(b"a", 1, now=10)  # x and y refilled: room, and a still owes


def test_mcpwait_1_a_call_over_the_value_limit_waits_for_no_room() -> None:
    """70l mcpwait 1: nor does a tools/call over MAX_TOOL_ARGUMENT_VALUES wait for room for
    its answer (a client that reads no answers held it, its arguments with it, for as long
    as it liked): its denial is answered at once, as an error is."""
    import anyio
    import mcp_types as types

    from tests.test_review47m_mcp_cancel import Blocking
    from tests.test_review55s_mcp import call, raw_session
    from troth.gates import ListRecorder
    from troth.integrations.mcp.room import ANSWER_ROOM, AnswerRoom

    over = {"order_id": "o1", "x": [0] * limits.MAX_TOOL_ARGUMENT_VALUES}

    async def main() -> None:
        ANSWER_ROOM.set(AnswerRoom(0, 0, limits.MAX_MCP_FRAME))  # a backlog with no room left
        async with raw_session(Blocking(), ListRecorder()) as (send, out):
            await send.send(call(1, "lookup_order", over))
            with anyio.fail_after(10):
                answer = (await out.receive()).message
        assert isinstance(answer, types.JSONRPCResponse)
        assert answer.result["isError"]

    anyio.run(main)


def test_mcpwait_4_a_calls_other_params_weigh_as_a_notification(tmp_path: Path) -> None:
    """70l mcpwait 4: a tools/call's params besides its arguments (its `_meta`, any other
    field: charged nothing, as only the arguments' values are) held ~22 MB a frame of empty
    arrays, waiting with the call as long as it waits, and decided within the value limit
    (the arguments tiny). They weigh at most what a notification may now (512 KiB): a heavier
    call is refused at `send`, a session it opened closed."""
    import anyio

    from tests.test_mcp_channels import orders_by_frames
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call

    arrays = b",".join([b"[]"] * 200_000)
    heavy = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_order",'
    heavy += b'"arguments":{"order_id":"o1"},"_meta":{"x":[' + arrays + b"]}}}"

    async def test(net: MemNet) -> None:
        service, writer, address = await orders_by_frames(net, "read")
        with pytest.raises(RemoteError, match="the MCP session holds"):
            await call(writer.router, address, "send", [McpFrame(b"m" * 16, heavy).encode(), "w"])
        with anyio.fail_after(10):  # the session it opened is closed, its task ends
            while service.status()["sessions"]:
                await anyio.sleep(0.01)

    run_memnet(test, tmp_path)
