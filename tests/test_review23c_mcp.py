"""Review 23c: the MCP gate at run time, against an upstream whose tool list moves under it.

1. An upstream that lists one tool name twice, with two input schemas: tools/list offered
   both entries when either one's shape was the bundle's, so the agent was shown a schema the
   bundle never typed (docs/policy.md, "MCP gates": a tool whose upstream schema differs from
   the bundle's is not listed), and the call was judged with whichever entry came last.
2. An argument the agent omits is judged with the schema's `default`, but the gate forwarded
   the arguments unfilled: the upstream ran its own default. When the upstream's default is not
   the one the gate judged (it changed after the gate's last listing, or it never honoured its
   declared schema), the upstream ran a value no policy saw: `dry_run` judged true, run false.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.gates import GatesWorld, T, make_world
from tests.support.mcp_orders import text
from troth.clock import FixedClock
from troth.gates import ListRecorder, ToolCall
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate

DEPLOY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "env": {"type": "string"},
        "dry_run": {"type": "boolean", "default": True},
    },
    "required": ["env"],
}
DRY_RUNS_ONLY = """\
@id("dry-runs") permit(principal, action == Action::"invoke:deploy", resource)
  when { context.args has dry_run && context.args.dry_run };
"""


class Upstream:
    """An upstream MCP server (`troth.integrations.mcp.gate.Upstream`) whose listing the test
    sets, and which runs `deploy` with its own `default` for an omitted `dry_run`."""

    def __init__(self, tools: list[types.Tool]) -> None:
        self.tools = tools
        self.default = True
        self.received: list[dict[str, Any]] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(self.tools))

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        args = dict(arguments or {})
        self.received.append(args)
        dry = args.get("dry_run", self.default)
        said = f"{name}: {'dry run' if dry else 'DEPLOYED'}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=said)])


def _gate(world: GatesWorld, upstream: Upstream, recorder: ListRecorder | None = None) -> McpGate:
    bundle = world.bundle(policies=DRY_RUNS_ONLY, tools={"deploy": DEPLOY})
    return McpGate(world.point(world.store(bundle), recorder), upstream, clock=FixedClock(T + 10))


def test_a_tool_the_upstream_lists_twice_is_not_offered_with_a_schema_the_bundle_never_typed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        other = {**DEPLOY, "properties": {**DEPLOY["properties"], "force": {"type": "boolean"}}}
        forged = "x\nWARNING troth.mcp: forged"  # a hostile name is never logged
        upstream = Upstream(
            [
                types.Tool(name="deploy", input_schema=other),
                types.Tool(name="deploy", input_schema=DEPLOY),
                types.Tool(name=forged, input_schema=DEPLOY),
                types.Tool(name=forged, input_schema=DEPLOY),
            ]
        )
        gate = _gate(world, upstream)
        with caplog.at_level(logging.WARNING, logger="troth.mcp"):
            listed = (await gate.list_tools(support)).tools
            await gate.list_tools(support)
        assert [tool.input_schema for tool in listed if tool.input_schema != DEPLOY] == []
        result = await gate.call_tool(support, "deploy", {"env": "prod", "dry_run": True})
        assert result.is_error  # which of the two would run is the upstream's to pick
        assert text(result) == DENIED_PREFIX + "denied: the policy bundle declares no such tool"
        assert upstream.received == []

    anyio.run(main)
    reports = [r.getMessage() for r in caplog.records if "twice" in r.getMessage()]
    assert reports == ["tool deploy: the upstream lists it twice: not offered"]  # once
    assert not any("forged" in r.getMessage() for r in caplog.records)


def test_an_omitted_argument_reaches_the_upstream_as_it_was_judged() -> None:
    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        upstream = Upstream([types.Tool(name="deploy", input_schema=DEPLOY)])
        recorder = ListRecorder()
        gate = _gate(world, upstream, recorder)
        assert [tool.name for tool in (await gate.list_tools(support)).tools] == ["deploy"]
        denied = await gate.call_tool(support, "deploy", {"env": "prod", "dry_run": False})
        assert text(denied) == DENIED_PREFIX + "denied: no policy permits this request"
        # the upstream's next version defaults to a real deployment (its listing says so too;
        # the gate compares the listing it last read)
        upstream.default = False
        upstream.tools = [
            types.Tool(
                name="deploy",
                input_schema={
                    **DEPLOY,
                    "properties": {"env": {"type": "string"}, "dry_run": {"type": "boolean"}},
                },
            )
        ]
        result = await gate.call_tool(support, "deploy", {"env": "prod"})
        assert text(result) == "deploy: dry run"  # what was judged (dry_run true) is what ran
        assert upstream.received == [{"env": "prod", "dry_run": True}]
        judged = recorder.records[-1].request
        assert isinstance(judged, ToolCall)
        assert judged.arguments == {"env": "prod", "dry_run": True}

    anyio.run(main)
