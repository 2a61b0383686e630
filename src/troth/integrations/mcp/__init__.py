"""troth's MCP gates (the `mcp` extra: `pip install 'troth[mcp]'`; docs/policy.md, "MCP
gates"): `gate` (an MCP server in front of an upstream, deciding every tools/list and
tools/call), `channel` (MCP sessions over secure channels), `frames` (their wire format, no
SDK needed), `local` (`troth mcp gate`) and `connect` (`troth mcp connect`).

Nothing is imported here, so the node can decode frames without the SDK."""
