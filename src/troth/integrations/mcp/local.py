"""`troth mcp gate`: a stdio MCP server in front of another MCP server, acting for one local
identity of a node (docs/policy.md, "The local MCP gate").

The upstream is spawned as the MCP SDK's stdio client spawns it, with its default environment (a
whitelist: PATH, HOME, ...), so nothing of troth's (keys, vault key, secrets) reaches it; its
lines are read within MAX_MCP_UPSTREAM_LINE bytes (troth.integrations.mcp.upstream). The
identity's keys stay in the node's vault; for every request the gate re-reads from the node's
store the identity's credential chains, the bundles the node holds (`troth policy push`, or
the running node's distribution) and the feeds (the running node keeps them fresh; a feed
left stale denies every call). Every decided call, allowed or denied, is a trace record signed
by the identity, in the node's own log (docs/traces.md). An upstream has `START_TIMEOUT` to
answer the MCP handshake, as a published one has (review 44c, gate start 1: one that never
answered hung the gate for good). An upstream that ends mid-session ends the gate: its agent's
stdin read no more, the requests read answered, then OSError (`agent_stdio`; review 65b2, mcp
1: it served on until the agent went away, every call failing). SIGTERM (MCP's end of a stdio
server after its stdin) ends the gate as its agent's going away does (`on_sigterm`; review 66c,
mcp 2: the gate died at once, its upstream left running, the call under way unrecorded), and
so does SIGHUP, its terminal closed (review 67n, mcp 1).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from troth.clock import Clock, SystemClock
from troth.integrations.mcp.agent_stdio import AgentStdio, agent_stdio, on_sigterm
from troth.integrations.mcp.gate import McpGate, UpstreamChanges, gate_server, upstream_error
from troth.integrations.mcp.upstream import upstream_stdio
from troth.node import open_node
from troth.node.services.mcp import START_TIMEOUT
from troth.node.services.node_policies import LocalCredential, NodeFeeds, NodePolicies
from troth.node.services.trace import NodeTraces

__all__ = ["serve_local_gate"]


async def serve_local_gate(
    home: Path,
    node_name: str,
    identity: str,
    command: Sequence[str],
    *,
    cwd: str | None = None,
    clock: Clock | None = None,
    server: str | None = None,
) -> None:
    """Serve the gate on this process's stdin and stdout until the client goes away (OSError
    when the upstream fails: it exits, at the handshake or after, or speaks no MCP).
    `server`: the upstream server's name, its tools decided as `Tool::"<tool>"` in
    `Server::"<server>"` (`McpGate`; review 53c, gates 1); None: in no server."""
    clock = clock or SystemClock()
    with open_node(node_name, home=home) as node:
        feeds = NodeFeeds(node, clock)
        policies = NodePolicies(node, feeds)
        traces = NodeTraces(node, clock=clock)  # every decided call: a record the agent signs
        point = policies.decision_point(traces.decision_recorder(identity))
        caller = LocalCredential(node, identity, policies, anchors=feeds.anchors)
        parameters = StdioServerParameters(command=command[0], args=list(command[1:]), cwd=cwd)
        bound = START_TIMEOUT
        timed_out = False
        ended = anyio.Event()  # the upstream's stdout ended mid-session (review 65b2, mcp 1)
        try:
            async with anyio.create_task_group() as group, on_sigterm(lambda: stop()):
                watch = anyio.CancelScope()
                # SIGTERM: the start abandoned; once serving, the agent read no more
                stop: Callable[[], None] = group.cancel_scope.cancel

                async def watchdog() -> None:
                    # cancels the gate (the SDK's task groups nested in it) when the upstream
                    # has not answered the handshake in time
                    nonlocal timed_out
                    with watch:
                        await anyio.sleep(bound)
                        timed_out = True
                        group.cancel_scope.cancel()

                group.start_soon(watchdog)
                changes = UpstreamChanges()  # its tool-list changes: listed again (review 48e)
                async with (
                    Client(
                        upstream_stdio(parameters, ended=ended),
                        cache=None,
                        message_handler=changes,
                    ) as upstream,
                    anyio.create_task_group() as listening,
                ):
                    watch.cancel()
                    listening.start_soon(changes.watch, upstream)
                    gate = McpGate(point, upstream, clock=clock, changes=changes, server=server)
                    served = gate_server(gate, caller)
                    try:
                        async with agent_stdio() as (read, write, agent):
                            stop = agent.stop
                            listening.start_soon(_stop_when, ended, agent)
                            await served.run(read, write, served.create_initialization_options())
                    finally:  # its records under way written before the trace log closes
                        with anyio.CancelScope(shield=True):  # (bounded: review 64a, mcp 1)
                            await gate.close()
                    listening.cancel_scope.cancel()  # the listen stream ends with the gate
        except BaseException as exc:  # the SDK's errors come in anyio's task groups
            failed = upstream_error(exc, shlex.join(command))
            if failed is None:
                raise
            raise failed from None
        finally:
            await traces.close()
        if ended.is_set():
            raise OSError(
                f"the upstream MCP server {shlex.join(command)} failed: it ended mid-session"
            )
        if timed_out:
            raise OSError(
                f"the upstream MCP server {shlex.join(command)} did not answer the MCP "
                f"handshake within {bound} s"
            )


async def _stop_when(ended: anyio.Event, agent: AgentStdio) -> None:
    """Stops reading the agent once the upstream ended: the gate answers what it read, then
    ends with the I/O error (review 65b2, mcp 1: it served on, every call failing)."""
    await ended.wait()
    agent.stop()
