"""Review 49o, refuted: tool-call arguments nested far past any schema's depth (5,000 levels of
arrays, past CPython's recursion limit for a recursive walk) are denied as arguments that do not
match, or as an undeclared tool, by the tool gate and the MCP gate alike: no RecursionError
escapes, and the upstream is never called (the upstream schema's depth is 49o, mcp 1)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.support.gates import T, make_world
from tests.test_review49d_gates import POLICIES, SCHEMA, _annotate, _Upstream
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate
from troth.integrations.mcp.gate import McpGate


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("key", ["notes", "unknown"])
def test_deeply_nested_arguments_are_denied_by_both_gates(key: str) -> None:
    world = make_world()
    store = world.store(world.bundle(policies=POLICIES, tools={"annotate": SCHEMA}))
    point = world.point(store, ListRecorder())
    caller = world.credential(world.support_chain, world.support)
    arguments = {key: _deep(5000)}
    gate = ToolGate(point, [Tool("annotate", SCHEMA, _annotate)], clock=FixedClock(T + 10))
    assert gate.invoke(caller, "annotate", arguments).decision.outcome is Outcome.ARGUMENTS
    assert gate.invoke(caller, "other", arguments).decision.outcome is Outcome.UNKNOWN_REQUEST
    upstream = _Upstream()
    mcp = McpGate(point, upstream, clock=FixedClock(T + 10))

    async def call(name: str) -> tuple[bool, str]:
        result = await mcp.call_tool(caller, name, arguments)
        content = result.content[0]
        return bool(result.is_error), getattr(content, "text", "")

    assert anyio.run(call, "annotate") == (
        True,
        "troth: denied: the arguments do not match the tool's input schema",
    )
    assert anyio.run(call, "other")[0]
    assert upstream.calls == []
