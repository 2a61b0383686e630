"""Review 57c, transport 1: a node took a TCP idle timeout at or below its channels' keepalive
interval, and its idle sweep then closed the connection under every quiet, healthy channel.

At a node only authenticated progress keeps an accepted connection from idling out
(`TcpTransport.authenticated_idle`, review 50e): on a quiet channel that is its keepalive, a PING
after `keepalive_interval` (15 s) of silence. Both limits come from the environment
(`TROTH_TCP_IDLE_TIMEOUT`, `TROTH_CHANNELS_KEEPALIVE_INTERVAL`), each checked alone; docs/
protocols.md ("Load limits") says the settings refuse every value that would break each
connection. `TROTH_TCP_IDLE_TIMEOUT=10` (an operator shedding idle connections faster), or a
keepalive interval of 700 s under the default 600 s idle timeout, was taken without a word, and
each connection whose channels were quiet for that long was closed by the sweep, its channels
with it (`peer closed`), though nothing was wrong with them: its peers reconnect and handshake
again, and the ones that only listen lose what was sent meanwhile.

Now `ChannelLimits.check_idle` refuses an idle timeout below twice the keepalive interval in
force (ConfigError naming both variables). The node does not call it yet: that is one line in
`NodeRuntime.__init__` (troth.node.runtime, outside this review's files), after the channel
manager is made: `if isinstance(self.tcp, TcpTransport): self.channels.limits.check_idle(
self.tcp.settings, self.channels.settings)`; the strict xfail below stands until then.

The sweep's check takes the time (`TcpConnection._check(now)`): this test passes it, no waiting
on the clock.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.hostile_tcp import accepted, hostile_hub
from tests.support.load import Stranger
from tests.test_reconnect import until
from troth.channel import ChannelSettings
from troth.errors import ConfigError
from troth.node.channel_limits import ChannelLimits
from troth.node.runtime import NodeRuntime
from troth.routing import Router
from troth.transport import TcpSettings, TcpTransport

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")

IDLE = 10.0
"""The node's TCP idle timeout here: below the channels' default keepalive interval (15 s)."""


async def _quiet_channel_idles_out(hub: NodeRuntime) -> None:
    """A stranger opens a channel to `hub` and is quiet: the hub's sweep, once `IDLE` s passed
    with no keepalive due yet, closes the connection, and the healthy channel goes with it."""
    assert hub.listening is not None
    router = Router()
    client = TcpTransport(router, TcpSettings())
    stranger = Stranger(router)
    try:
        await stranger.open(_At(hub.listening))  # type: ignore[arg-type]
        (connection,) = accepted(hub)
        assert len(hub.channels.ends) == 1
        now = asyncio.get_running_loop().time()
        connection._check(now)  # the sweep sees the handshake's progress
        connection._check(now + IDLE + 1)  # quiet since: no keepalive due before 15 s
        await until(lambda: connection.closed.is_set())
        await until(lambda: not hub.channels.ends)  # the healthy channel went with it
    finally:
        await stranger.manager.close_all()
        await client.close()


class _At:
    def __init__(self, listening: tuple[str, int]) -> None:
        self.address = "/tcp/{}:{}".format(*listening)


@pytest.mark.xfail(
    strict=True,
    reason="review 57c transport 1: a node takes a TCP idle timeout below its channels' "
    "keepalive interval, and closes the connection under every quiet channel",
)
def test_an_idle_timeout_below_the_keepalive_interval_is_refused(tmp_path: Path) -> None:
    """A hub whose TCP idle timeout (10 s) is below its channels' keepalive interval (15 s) must
    be refused as it starts (ConfigError naming both). Before: it started, and a stranger's
    channel to it, healthy and quiet, lost its connection at the first sweep past 10 s of
    silence, before any keepalive was due (`_quiet_channel_idles_out` shows it)."""
    limits = ChannelLimits()
    keepalive = limits.keepalive(ChannelSettings()).keepalive_interval
    assert keepalive > IDLE

    async def main() -> None:
        refused = ""
        try:
            async with hostile_hub(tmp_path, TcpSettings(idle_timeout=IDLE), limits) as hub:
                await _quiet_channel_idles_out(hub)
        except ConfigError as exc:  # refused as the node starts
            refused = str(exc)
        if not refused:
            pytest.fail("took an idle timeout below the keepalive interval: a quiet channel died")
        assert "TROTH_CHANNELS_KEEPALIVE_INTERVAL" in refused

    asyncio.run(main())


@pytest.mark.parametrize(
    ("idle", "limits", "settings"),
    [
        (IDLE, ChannelLimits(), None),  # below the default 15 s interval
        (29.0, ChannelLimits(), None),  # below twice it
        (600.0, ChannelLimits(keepalive_interval=700.0), None),  # the node's interval above
        (600.0, ChannelLimits(keepalive_timeout=1200.0), None),  # (a third of the timeout)
        (1.0, ChannelLimits(), ChannelSettings(keepalive_interval=0.6, keepalive_timeout=2)),
    ],
)
def test_the_check_refuses_an_idle_timeout_below_twice_the_keepalive_interval(
    idle: float, limits: ChannelLimits, settings: ChannelSettings | None
) -> None:
    with pytest.raises(ConfigError, match=r"TROTH_TCP_IDLE_TIMEOUT.*KEEPALIVE_INTERVAL"):
        limits.check_idle(TcpSettings(idle_timeout=idle), settings)


@pytest.mark.parametrize(
    ("idle", "limits", "settings"),
    [
        (600.0, ChannelLimits(), None),  # the defaults
        (30.0, ChannelLimits(), None),  # exactly twice
        (120.0, ChannelLimits(), None),  # docs/protocols.md's example
        (6.0, ChannelLimits(keepalive_interval=2.0), None),
        (1.0, ChannelLimits(), ChannelSettings(keepalive_interval=0.2, keepalive_timeout=0.8)),
    ],
)
def test_the_check_takes_an_idle_timeout_of_twice_the_keepalive_interval_or_more(
    idle: float, limits: ChannelLimits, settings: ChannelSettings | None
) -> None:
    limits.check_idle(TcpSettings(idle_timeout=idle), settings)
