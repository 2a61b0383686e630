"""The limits of what a published MCP server's session holds of its answers
(troth.integrations.mcp.channel and .gate; docs/protocols.md, "MCP service").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_MCP_GATE_QUEUE",
    "MAX_MCP_GATE_THREADS",
    "MAX_MCP_RESULT",
    "MAX_MCP_SERVER_HELD",
    "MAX_MCP_SESSION_BACKLOG",
    "MAX_MCP_SESSION_HELD",
    "MCP_AT_ONCE_BYTES",
    "MCP_AT_ONCE_FRAMES",
    "MCP_CLOSE_SECONDS",
    "MCP_GATE_DRAIN_SECONDS",
    "MCP_GATE_GRACE_SECONDS",
    "MCP_GATE_IDLE_SECONDS",
    "MCP_UPSTREAM_EXIT_IDLE_SECONDS",
    "MCP_VALUE_CHARGE",
]

MAX_MCP_RESULT: Final = (1 << 20) - 3072
"""Largest tools/call result (its compact UTF-8 JSON, as the MCP SDK writes it in the response) the
MCP gate serves in a session over a secure channel: MAX_MCP_FRAME less 1 KiB for the frame's header
(40 bytes) and the JSON-RPC response around the result (33 bytes and the request's id: one of over
951 bytes narrows it by as much more, review 58v, mcp 2; so does a 2026-07-28 answer's serverInfo
`_meta` stamp, review 62c, mcp 1). A larger one is refused as the upstream
answers it, before it waits anywhere: the call is answered with the gate's error naming this limit
and recorded unanswered after its allowed record (review 58t, mcp 1: one over a frame, which could
never be sent, waited whole, up to MAX_MCP_UPSTREAM_LINE each). The stdio gate (`troth mcp gate`)
has no such limit."""
MAX_MCP_SESSION_BACKLOG: Final = 8 << 20
"""Most bytes of frames one MCP session holds waiting for its client to take them (each at most
MAX_MCP_FRAME: room for the answers of the MAX_MCP_CALLS_PER_SESSION calls it may have at the
upstream at once, whole), the room promised to the answers of its tools/call and tools/list in
progress counted (MAX_MCP_FRAME and one frame each: troth.integrations.mcp.room). A call or listing
waits for that room (and MCP_AT_ONCE_BYTES left over) before it is decided, so a client slow to take
its answers makes its next calls wait (review 59a, mcp 1: a few more calls than run at once, with
answers near a frame each, overflowed it and ended an honest session); an answer given at once (a
ping's, an error, a notification) without room, as past 2 x MAX_MCP_QUEUE frames waiting, means the
client has fallen behind, and the session ends (review 58t, mcp 2: a count of answers bounded it,
128 of up to a frame each). So one member's MAX_MCP_SESSIONS_PER_PEER sessions hold at most 64 MiB
of answers, and a frame each on its way out (72 MiB); a server's MAX_MCP_SESSIONS, 2.25 GiB."""
MAX_MCP_SESSION_HELD: Final = 32 << 20
"""Most bytes of decoded requests one MCP session over a secure channel holds from their `send`
until they are answered (troth.integrations.mcp.held: each weighed as its Python objects,
`message_weight`, up to ~40 times its frame; a tools/call over MAX_TOOL_ARGUMENT_VALUES by its
frame's bytes, `DENSEST` each, its values walked no further: review 70y, weighing 1), one
request of any weight when it holds none: past it one more is refused at `send`, never decided
(`the MCP session holds ... send again later`);
a notification or a response from the client, or a request but for a tools/call's arguments,
weighs at most this / MAX_MCP_QUEUE. Room for MAX_MCP_CALLS_PER_SESSION calls of a frame at the
upstream, arguments at MAX_TOOL_ARGUMENT_VALUES of records included (~2-4 MB each), and more
waiting. The SDK's copies and own objects of a request served are counted, and what the gate
never serves is dropped (review 71a, mcpheld 1-3, 5 and 7); all of a server's sessions together
hold at most MAX_MCP_SERVER_HELD. So one member's MAX_MCP_SESSIONS_PER_PEER sessions hold at
most 256 MiB of requests (and a call each over MAX_TOOL_ARGUMENT_VALUES, up to ~50 MB
weighed, only while it is decided: it waits for no slot nor room). Review 70f, values 3
(review 70l, mcpwait 1): bounded by count only (MAX_MCP_CALLS_PER_SESSION + MAX_MCP_QUEUE), a
session held ~1.5 GB of waiting calls, a member ~12 GB."""
MAX_MCP_SERVER_HELD: Final = 1 << 30
"""Most bytes of decoded requests (weighed as MAX_MCP_SESSION_HELD weighs them) a published MCP
server's sessions hold together, split between the authorities the node trusts, the strangers
and the local callers as the node's other pools are (troth.node.shares: past it, a session
whose authorities all hold their share takes no more), a session holding none one request of
any weight while its authorities have a byte of room (below the bound, or one of them holding
less than its share): past it one more is refused at `send` as past MAX_MCP_SESSION_HELD, so
the pool holds at most twice this and one request. Room for 32 sessions at their most.
Review 71a, mcpheld 6: bounded per session only, the server's MAX_MCP_SESSIONS held up to
~8 GiB (a full session holds ~31.3 MiB, measured, linear in the sessions: 4 held ~125 MiB),
reached by one authority's members, free for it to mint. Review 71i, wave2b 1: a session
holding none took its one request whatever the pool held, so one authority's sessions, one
request each, took the pool past twice this, where every other authority's members were
refused their share."""
MCP_AT_ONCE_BYTES: Final = 8 << 10
"""Bytes of MAX_MCP_SESSION_BACKLOG a tools/call or tools/list leaves free for the answers given
at once (a ping's, an error, the gate's notifications) as it takes room for its own answer
(troth.integrations.mcp.room), besides MCP_AT_ONCE_FRAMES of its frames: within the 16 KiB that
the room of MAX_MCP_CALLS_PER_SESSION answers leaves, so as many calls still run at once. Review
59h, mcp 1: the calls' room left none, and a slow honest client's keepalive ping ended its
session with under 16 KiB of answers unread and its calls at the upstream."""
MCP_AT_ONCE_FRAMES: Final = 8
"""Frames of a session's backlog a tools/call or tools/list leaves free for the answers given at
once as it takes room for its own (MCP_AT_ONCE_BYTES; review 59h, mcp 1)."""
MCP_CLOSE_SECONDS: Final = 3.0
"""How long (seconds) a published MCP server's close waits for its sessions and its upstream to
end, all of them together, before it cancels those left (troth.node.services.mcp; review 63v,
stop 3: it waited up to 10 s for each, one after another, and never cancelled them). Within a
node's stop, its share of NODE_STOP_SECONDS bounds it too."""
MAX_MCP_GATE_THREADS: Final = 8
"""Threads one MCP gate judges and records its tools/call on (daemons:
troth.integrations.mcp.worker; review 63x2, exit 3: anyio's worker threads, not daemons, let a
recorder that never returned hold the process's exit). A recording point's records are signed and
appended one at a time anyway."""
MAX_MCP_GATE_QUEUE: Final = 2048
"""tools/call one MCP gate holds waiting for one of its MAX_MCP_GATE_THREADS threads to decide
them: MAX_MCP_SESSIONS x MAX_MCP_CALLS_PER_SESSION, so a published server's sessions never find it
full while its threads answer; past it (threads stuck in a recorder that never returns) one more is
answered at once with the gate's error, never decided. What completes a record already written
(a call recorded allowed, refused after all) is never refused."""
MCP_GATE_IDLE_SECONDS: Final = 10.0
"""How long (seconds) an MCP gate's thread waits for a call to decide before it ends."""
MCP_GATE_DRAIN_SECONDS: Final = 1.0
"""How long (seconds) an MCP gate's close waits for the records under way on its threads (a
call being decided, a refusal after an allowed record), before the recorder's trace log is closed;
past it they are left to the gate's daemon threads (`McpGate.close`)."""
MCP_GATE_GRACE_SECONDS: Final = 1.0
"""How long (seconds) a tools/call cancelled while its record is written on an MCP gate's thread
(its decision, or its refusal after an allowed record) waits for it before its cancellation goes
on: so a session ended by its client or the node's stop ends with its records written, and a
recorder that never returns holds it no longer (review 63x2, exit 3: for ever)."""
MCP_UPSTREAM_EXIT_IDLE_SECONDS: Final = 0.2
"""How long (seconds) the stdout of an upstream MCP server that exited, its process group ended,
is read with nothing coming (since the group's end at least: review 66p, mcp 3) before it is
closed: what the upstream wrote is read by then, and a child that left the group (`setsid`, a
daemon) and holds the pipe does not keep its session open (troth.integrations.mcp.upstream;
review 66c, mcp 3: the call under way waited for ever)."""
MCP_VALUE_CHARGE: Final = 256
"""What each value of a tools/call's arguments costs of its member's MCP budget (bytes of
MCP_BYTES_PER_SECOND; a call is charged the more of its bytes and this for its values): its
decision costs ~4-16 us a value (the GIL held) whatever their bytes, the most for records
nested deep (each checked against its type at each level), so a call of
MAX_TOOL_ARGUMENT_VALUES (~0.06-0.26 s) costs 4 MiB, one every 4 seconds and 4 in a burst.
Owed once the frame is decoded (its bytes paid first): the budget may go below zero.
Review 69s, wave2 2: counted in bytes only, a member sent ~18 such calls (~56 KB each) a
second, ~1.6 CPU-seconds; review 70f, values 1: at 64 bytes a value, 16 calls of records
nested five deep (~0.26 s each) in a burst, one a second after it."""
