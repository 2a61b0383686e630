"""Review 61o, gates.mcp.call: the MCP gate's own work per tool call (the bench row
`gates.mcp.call`: its added latency less one decision is held to 0.5 ms).

1. Every response the gate's server answered (on the 2026-07-28 protocol) was stamped with its
   `serverInfo` by the MCP SDK's `server_info_stamp`, a `copy.deepcopy` of a dict of two
   strings per response (five Python calls). The gate's stamp is text only (its name and
   version: no icons), so a fresh flat copy is the same fresh dict; any other value is
   deep-copied as before.
2. Every tools/call made a `contextlib.contextmanager` generator for its result's limit
   (`result_limit`) and a `nullcontext` for its room (`_room_for`) where there is neither (over
   stdio, in memory): seven Python calls. Both now hand one shared no-op object then; over a
   channel the limit is narrowed and the room promised as before (tests/test_review58v_mcp.py,
   tests/test_review59a_mcp.py).

Counted, not timed.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from mcp import Client

from tests.support.gates import make_world
from tests.support.mcp_orders import orders_server
from troth import __version__
from troth.integrations.mcp.answers import RESULT_LIMIT, result_limit
from troth.integrations.mcp.gate import GATE_NAME, McpGate, gate_server


def _no_deepcopy(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(value: Any, memo: Any = None) -> Any:
        raise AssertionError("deep-copied")

    monkeypatch.setattr(copy, "deepcopy", refused)  # as the SDK calls it


def test_the_gate_stamps_its_server_info_without_a_deepcopy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    point = world.point(world.store(world.bundle()))
    server = gate_server(McpGate(point, Client(orders_server())), world.support_chain)  # type: ignore[arg-type]
    _no_deepcopy(monkeypatch)
    first, second = server.server_info_stamp, server.server_info_stamp
    assert first == second == {"name": GATE_NAME, "version": __version__}
    assert first is not second  # each response owns its own
    first["name"] = "changed"
    assert server.server_info_stamp["name"] == GATE_NAME


def test_no_limit_nor_room_made_per_call_where_there_are_none() -> None:
    from troth.integrations.mcp.gate import _room_for

    assert RESULT_LIMIT.get() is None
    assert result_limit(1) is result_limit("a long id")  # no object per call
    with result_limit(1):
        assert RESULT_LIMIT.get() is None
    assert _room_for(object()) is _room_for(object())  # type: ignore[arg-type]
    token = RESULT_LIMIT.set(1000)
    try:
        with result_limit(1):
            assert RESULT_LIMIT.get() == 1000  # narrowed only past the frame: as before
        assert result_limit(1) is not result_limit(1)
    finally:
        RESULT_LIMIT.reset(token)
