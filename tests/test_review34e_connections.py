"""Review 34e, connections (the node's channels when a transport connection closes).

Connections 1: `ChannelManager.connection_lost`, called for every connection that closes,
looked at every channel end of the node to find the ones over that connection: with 10,000
channels, 2 ms of CPU per connection closed. Opening a TCP connection and closing it costs
an attacker nothing (no frame, no identity, no limit counts a connection that is gone), so
connection churn at a busy node cost it a scan of all its channels each, many times what
accepting the connection did. The ends are now indexed by the connection they run over.
"""

from __future__ import annotations

from tests.test_channel_manager import HUB, Net, only_end, run, until
from troth.channel import ChannelState
from troth.routing import Address, parse_route


class _Spy:
    """A channel end as far as a scan reads it: counts each look at its route."""

    reads = 0

    @property
    def peer_route(self) -> tuple[Address, ...]:
        _Spy.reads += 1
        return (Address("worker", "tcp-elsewhere"),)


def test_a_connection_that_closes_looks_only_at_the_channels_over_it() -> None:
    """Connections 1: with 1,000 other channel ends on the node, a connection that closes
    reads none of them, and the channel over it still closes.
    Was a strict xfail until the manager indexed its ends by their first hop."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        a = net.peer("10.0.0.3")
        await a.manager.open(parse_route(HUB))
        theirs = only_end(hub)
        spies = {Address("worker", f"chan-spy{i}.enc"): _Spy() for i in range(1_000)}
        hub.manager.ends.update(spies)  # type: ignore[arg-type]
        try:
            hub.manager.connection_lost(theirs.peer_route[0])
            assert _Spy.reads == 0
        finally:
            for address in spies:
                hub.manager.ends.pop(address, None)
        assert theirs.channel.state is ChannelState.CLOSED
        await until(lambda: theirs.enc not in hub.manager.ends)

    run(test)
