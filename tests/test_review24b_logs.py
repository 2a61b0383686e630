"""Review 24b (today's code under hostile peers: what a peer makes the node write to its log).

1. `ChannelEnd.direct` (4893f87) makes every channel a peer opened over a connection it made
   to the node a judge of that connection: when the keepalive closes such a channel, the node
   closes the connection (`NodeRuntime._drop_connection`) and logs "closed, its peer went
   silent" at WARNING, a line each time, outside the rate-limited logs of review 23b (logs 2
   bounded the channels' own close lines only). A stranger opens 60 channels to the hub over
   its one connection (identities are free; 256 per source) and goes silent: every channel's
   keepalive close calls the hook while the connection is still listed, so the hub writes a
   warning per channel, again at every reconnect.

The test asserts the secure behaviour and was a strict xfail until its fix. Fixed: the node
closes a connection once (`_drop_connection` skips one it is already closing), and a line
about a connection a peer made goes within lines a minute (the channel limits'
`log_lines_per_minute`); one this node made, a line each as before.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - read: ChannelEnd.direct for a responder is "message 1 came over a connection the peer
#   made"; whoever made it is the only sender over it (a node forwards onto its connections
#   only what its relay service forwards, to relay names, which are incoming connections), so
#   a third party's silence cannot make the node close a connection someone else made to it.
#   An initiator's peer route is taken from message 2's return route, whose first hop the
#   node's own transport set. (What was found: logs 1, above.)
# - read: DecisionRecord.presenter is the verified credential's actor, else the source's
#   `presenter_identifier`: a channel's authenticated peer (PeerCredential), the local
#   identity (LocalCredential), or what the embedding code handed PresentedChain (the CLI's
#   `policy test` hands the chain's own subject, but records nothing). No caller-supplied
#   text reaches it on the node's paths.
# - ran: a JSON null argument is a Cedar "failed to build request" (an arguments denial),
#   so null cannot stand for an omitted argument that the upstream would default; read:
#   anyOf/oneOf/type lists are refused by compile_tool_schema, so a declared tool has no
#   default under them; nested defaults fill the parent's default first, then its own
#   properties (arrays item by item); the MCP gate and the tool gate forward exactly the
#   filled arguments they judged, and the engine's fill is the same schema's (equal shapes).
# - read: the `_exportable` shortcut (ASCII, at most 16 openers) admits only values whose
#   canonical JSON re-parses to itself within the export's nesting; noncharacters are never
#   ASCII in RFC 8785 output (not escaped), so they always take the full check.
# - read: Turns: no deadlock with checkpoint/redact (they never wait for the turn; a leader
#   takes the turn before SQLite's lock, never after); the lock file is created 0600 and
#   opened with O_CLOEXEC (Python's default), so an exec'd child never holds it; a
#   multiprocessing fork child shares the open file description (flock then does not keep
#   parent and child apart, SQLite's lock still does); close() waits for the lead first.
# - ran: cedarpy's validation messages are short and name the policy, not its text (73 bytes
#   for a 100 KB policy set), so the child's output stays small; read: the child prints only
#   json.dump of its own dict (ASCII, escaped), reads its request from stdin, anything else
#   on stdout fails the parse (OVER_LIMIT, fail closed), the wall timeout kills it.

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_reconnect import until
from tests.test_review23b_logs import _stranger_at_hub

CHANNELS = 60


def test_a_silent_peers_channels_write_a_bounded_number_of_connection_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stranger's 60 channels to the hub over its one connection go silent past the
    keepalive timeout (the hub's keepalive run at two monotonic times a timeout apart): the
    hub closes them and the connection, and writes a few lines about the connection, not one
    per channel."""

    async def test(net: MemNet) -> None:
        hub, stranger, trust = await _stranger_at_hub(net)
        for _ in range(CHANNELS):
            await stranger.channels.open(route(HUB), trust=trust)
        theirs = [e for e in hub.channels.ends.values() if e.direct]
        assert len(theirs) == CHANNELS  # each judges the stranger's connection to the hub
        timeout = hub.channels.settings.keepalive_timeout
        caplog.clear()
        with caplog.at_level(logging.INFO):
            later = asyncio.get_running_loop().time() + 1000
            hub.channels.keepalive(later)  # (no yield between: nothing is heard in between)
            hub.channels.keepalive(later + timeout)
            await until(lambda: not any(e.direct for e in hub.channels.ends.values()))
            await until(lambda: not stranger.tcp.connections())
        lines = [r for r in caplog.records if "its peer went silent" in r.getMessage()]
        assert len(lines) <= 10, f"{len(lines)} lines for one connection closed"

    run_memnet(test, tmp_path / "home", budget=30)
