"""Review 70l (what a member owes of its MCP budget, review 70f's `ByteBudgets.owe`): attacks
that did not work, each a test that fails if the defence it names breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mcp_weights import weighed
from tests.support.nodes import MemNet, run_memnet
from tests.test_review70f_values import _dense_call
from troth import limits
from troth.errors import RemoteError
from troth.node.services.mcp import _values_charge
from troth.rates import ByteBudgets

_MOST_OWED = (limits.MAX_TOOL_ARGUMENT_VALUES + 1) * limits.MCP_VALUE_CHARGE


def _budgets() -> ByteBudgets:
    return ByteBudgets(
        rate=limits.MCP_BYTES_PER_SECOND, burst=limits.MCP_BURST_BYTES, max_sources=4
    )


def test_a_member_overdraws_at_most_one_calls_values() -> None:
    """Tried: overdraw without bound, a member's 8 sessions sending the densest calls back to
    back, as `McpService.send` charges them (bytes taken, then values owed; nothing awaited
    between them, so no frame of another session comes between): a frame is taken only while
    the budget holds its bytes, and its values are counted up to one past the limit, so the
    budget never goes below ~-4 MiB, and a burst buys 4 of them."""
    charge = _values_charge(weighed(_dense_call(b"[]")))
    assert charge == _MOST_OWED  # counted up to one past MAX_TOOL_ARGUMENT_VALUES
    budgets, taken = _budgets(), 0
    for _ in range(limits.MAX_MCP_SESSIONS_PER_PEER * 16):
        if budgets.take_all([b"m"], limits.MAX_MCP_FRAME, now=0):
            budgets.owe([b"m"], charge - limits.MAX_MCP_FRAME, now=0)
            taken += 1
    assert budgets._buckets[b"m"].level >= -_MOST_OWED
    assert taken <= 4


def test_owing_neither_leaks_to_another_member_nor_is_pruned_away() -> None:
    """Tried: one member's debt charged to another (a delegate of two members owes both,
    a third untouched), and a debt forgotten by `prune` (a reset of the table, as at its
    scan for room) or by the table filling with newcomers: a bucket below its burst is kept,
    so a debtor starts over full only once it has refilled."""
    budgets = _budgets()
    assert budgets.take_all([b"a", b"b"], limits.MCP_MESSAGE_CHARGE, now=0)
    budgets.owe([b"a", b"b"], _MOST_OWED, now=0)
    assert budgets.take(b"c", limits.MCP_BURST_BYTES, now=0)  # c's budget whole
    budgets.prune(now=5)
    for newcomer in (b"d", b"e", b"f"):
        budgets.take(newcomer, 1, now=5)
    assert not budgets.take(b"a", limits.MCP_BURST_BYTES, now=5)
    assert not budgets.take(b"b", limits.MCP_BURST_BYTES, now=5)


def test_a_debt_outlives_the_session_that_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: a frame owed, then its session ended (the client's null frame) to start over in
    a new one: the debt is the member's, not the session's; the new session's first frame is
    refused until the budget refills."""
    from tests.test_mcp_channels import orders_by_frames
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call

    monkeypatch.setattr(limits, "MCP_BURST_BYTES", 256 << 10)
    monkeypatch.setattr(limits, "MCP_BYTES_PER_SECOND", 1)
    dense = _dense_call(b"0")[: 64 << 10].rsplit(b",", 1)[0] + b"]}}}"
    ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'

    async def test(net: MemNet) -> None:
        _, writer, address = await orders_by_frames(net, "read")
        await call(writer.router, address, "send", [McpFrame(b"d" * 16, dense).encode(), "w"])
        await call(writer.router, address, "send", [McpFrame(b"d" * 16, None).encode(), "w"])
        with pytest.raises(RemoteError, match="MCP budget is spent"):
            await call(writer.router, address, "send", [McpFrame(b"p" * 16, ping).encode(), "w"])

    run_memnet(test, tmp_path)
