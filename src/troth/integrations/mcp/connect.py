"""`troth mcp connect`: a local stdio MCP server that forwards to an MCP server published on
another node, through a secure channel opened as one local identity (docs/policy.md, "MCP
over secure channels").

The node runs in this process without services or a listening port (beside its daemon, if
that runs), opens a channel of its own as the identity to the route's node (through relays
too) and carries the session's JSON-RPC messages in `McpFrame`s. The serving node decides
every call on this identity's standing and credentials. The session ends when the client goes
away (it closes its stdin): once the requests it sent are answered (within
MCP_GATE_DRAIN_SECONDS), connect ends, though the channel still runs (review 71m, ci 1: it
waited for the server's stream, which ends only with the channel, until its client's SIGTERM).
It ends too when the channel closes or the server ends the session: connect then reads no more
of its client's stdin and ends with OSError, without waiting for the client's next line.
The client's lines are read as the local gate reads its agent's (`agent_stdio`, within
MAX_MCP_UPSTREAM_LINE; review 66c, mcp 1: the SDK's reader, a thread nothing cancels, held a
dead connect until the client wrote again, and held a line of any length). SIGTERM ends it as
the client's going away does (`on_sigterm`; review 66c, mcp 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
from mcp.client._transport import ReadStream, WriteStream
from mcp.shared.message import SessionMessage

from troth import limits
from troth.identity import Identifier
from troth.integrations.mcp.agent_stdio import agent_stdio, on_sigterm
from troth.integrations.mcp.channel import ChannelTransport
from troth.node import open_node
from troth.node.runtime import NodeRuntime, split_service_route

__all__ = ["connect", "serve_connect"]

log = logging.getLogger("troth.mcp")


@contextlib.asynccontextmanager
async def connect(
    runtime: NodeRuntime, identity: str, to: str, *, expect: Identifier | None = None
) -> AsyncIterator[ChannelTransport]:
    """A transport to the MCP server at `to` (a route ending /service/mcp.NAME), over a new
    channel opened as local `identity` (closed afterwards): `mcp.Client(transport)`."""
    route, service = split_service_route(to)
    end = await runtime.channel_as(identity, route, expect=expect)
    try:
        yield ChannelTransport(runtime.router, runtime.channels, end, service)
    finally:
        await end.close()


async def _pump(
    source: ReadStream[SessionMessage | Exception], sink: WriteStream[SessionMessage]
) -> None:
    async with source, sink:
        async for message in source:
            if isinstance(message, Exception):
                log.warning("dropped a message that is not JSON-RPC: %s", message)
                continue
            await sink.send(message)


async def serve_connect(
    home: Path, node_name: str, identity: str, to: str, *, expect: Identifier | None = None
) -> None:
    """Forward this process's stdin and stdout to the MCP server at `to` until either side
    ends the session (OSError when the server ends it: module docstring)."""
    with open_node(node_name, home=home) as node:
        node.config = dataclasses.replace(node.config, services=())  # a client only
        runtime = NodeRuntime(node)
        await runtime.start()
        server_ended = False
        try:
            with anyio.CancelScope() as connecting:
                stop: Callable[[], None] = connecting.cancel  # SIGTERM: connecting abandoned
                async with (
                    on_sigterm(lambda: stop()),
                    connect(runtime, identity, to, expect=expect) as transport,
                    transport as (remote_read, remote_write),
                    agent_stdio() as (local_read, local_write, agent),
                    anyio.create_task_group() as group,
                ):
                    stop = agent.stop  # then: the client read no more, as at its end
                    client_done = anyio.Event()
                    serving = anyio.CancelScope()

                    async def from_client() -> None:
                        await _pump(local_read, remote_write)
                        client_done.set()
                        # the client went away: its requests answered, the session ends (the
                        # server's stream ends only with the channel: review 71m, ci 1)
                        agent.stop()
                        with anyio.move_on_after(limits.MCP_GATE_DRAIN_SECONDS):
                            await agent.answered.wait()
                        serving.cancel()

                    group.start_soon(from_client)
                    with serving:
                        await _pump(remote_read, local_write)
                    server_ended = not client_done.is_set()
                    agent.stop(drain=False)  # nothing more can be answered
                    group.cancel_scope.cancel()
        finally:
            await runtime.stop()
        if server_ended:
            raise OSError(f"the MCP server at {to} ended the session")
