"""Review 53h, tried and found as designed.

Relays 2 (the closing note of 2026-12-05, "Knowingly left": "a sender without a channel of its
own to the hub waits 10 s"): a sender that holds no channel with the hub over its connection
(not enrolled there, no link) gets no no-route notice when the hub drops its packets for a
member restarted behind it; its call waits its timeout, as before review 49b. By design
(docs/protocols.md, "Unanswered channels"): the connection is plain TCP, so a word the hub
sent on it in the clear anyone able to write into the stream could send (issue #8: no
unauthenticated word is taken for a peer's departure); the stale channel's keys are the
sender's and the member's, so the hub can say nothing inside it; a signature by the hub's
identity would not show it is the node at the other end of the sender's connection, which the
sender never authenticated. Binding the two is a channel over that connection, which such a
sender does not open and which each side admits only under its channel policy: giving senders
one is a new kind of channel (taking only notices, from any identity at the other end of the
sender's own connection) and hubs that admit strangers for it, a design decision, not a fix.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from troth.channel import ChannelState
from troth.node.channel_limits import ChannelCounters
from troth.node.no_route import NoRouteNotices
from troth.routing import Address, RoutedMessage
from troth.transport.connection import Connection

if TYPE_CHECKING:
    from troth.node.channel_ends import ChannelEnd
    from troth.node.channels import ChannelManager


class _Hub:
    """A hub's channels as the notices see them: `ends` over the sender's connection."""

    def __init__(self, ends: tuple[Any, ...]) -> None:
        self.counters = ChannelCounters()
        self.ends = ends
        self.sent: list[RoutedMessage] = []
        self.router = SimpleNamespace(route=self._route)

    async def _route(self, message: RoutedMessage) -> None:
        self.sent.append(message)

    def ends_over(self, connection: Address) -> tuple[ChannelEnd, ...]:
        return cast("tuple[ChannelEnd, ...]", self.ends)


@pytest.mark.parametrize("own_channel", [False, True])
def test_a_sender_with_no_channel_of_its_own_at_the_hub_is_sent_no_notice(
    own_channel: bool,
) -> None:
    """Without a channel of its own with the hub, nothing; with one (the control), a notice."""

    async def test() -> None:
        sender = Connection(
            kind="tcp", outgoing=False, listener=None, peer="192.0.2.7:5000", max_reply_paths=8
        )
        link = SimpleNamespace(
            direct=True,
            peer=object(),
            peer_route=(sender.address, Address("worker", "chan-000000000000001f.dec")),
            channel=SimpleNamespace(state=ChannelState.OPEN),
            enc=Address("worker", "link.enc"),
        )
        hub = _Hub((link,) if own_channel else ())
        notices = NoRouteNotices(cast("ChannelManager", hub))
        dead = Address("worker", "tcp-h00000000-0000000000000000")
        dropped = RoutedMessage(
            (dead, Address("service", "echo")),
            (sender.address, Address("worker", "channel-1.dec")),
            b"call",
        )
        notices.unroutable(dropped, sender)
        for _ in range(3):
            await asyncio.sleep(0)
        assert hub.counters.no_route_notices_sent == len(hub.sent) == int(own_channel)

    asyncio.run(test())
