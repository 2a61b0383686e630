"""Review 71w, wave4a: the no-route notice for a hop a source was cut off from (review 71s,
relaywait 1), along a chain of relays.

1. A notice passed back (`NoRouteNotices._pass_back`, review 50f, relays 2) still went only
   toward a connection that may reach the one it came from (`allows`): a sender's connection
   cut off from the next relay (the hub refused a relay whose owner's connection it is, e.g.
   that node rotated) no longer allows it, so a notice for a packet it sent there before the
   cut (dropped further along, the notice arriving after it) was dropped at the hub, and the
   sender's call waited out its timeout with nothing more to send. A connection cut off from
   the one the notice came from reached it before the cut (`AllowSet.cut_from`): the packet
   could have gone that way, and the channels naming it are dead at the hub anyway; the
   notice is passed back to it as to one that still may reach it. One that never reached it
   still gets nothing (review 50f refuted: a member cannot have the hub pass a notice to a
   connection that never reached its own).
"""

from __future__ import annotations

import asyncio
from hashlib import sha256
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from tests.test_review53h_refuted import _Hub
from troth.channel import ChannelState
from troth.node.no_route import NoRouteNotices
from troth.routing import Address, RoutedMessage
from troth.routing.notice import NOTICE_SERVICE, no_route, parse_no_route
from troth.transport.connection import Connection

if TYPE_CHECKING:
    from troth.node.channel_ends import ChannelEnd
    from troth.node.channels import ChannelManager


class _Chain(_Hub):
    """A hub's channels as a notice passed back sees them (what it notes is dropped)."""

    def __init__(self, ends: tuple[Any, ...]) -> None:
        super().__init__(ends)
        self.noted: list[str] = []

    def note(self, message: str, *args: object) -> None:
        self.noted.append(message % args)


def _connection() -> Connection:
    return Connection(
        kind="tcp", outgoing=False, listener=None, peer="192.0.2.7:5000", max_reply_paths=8
    )


def _link(connection: Address, name: str) -> Any:
    """The hub's open direct channel with the node at the other end of `connection` (its peer
    route: the connection and that node's channel end, a reply address as a node names it)."""
    reply = Address("worker", f"chan-{sha256(name.encode()).hexdigest()[:16]}.dec")
    return SimpleNamespace(
        direct=True,
        peer=object(),
        peer_route=(connection, reply),
        channel=SimpleNamespace(state=ChannelState.OPEN),
        enc=Address("worker", f"{name}.enc"),
        name=name,
    )


@pytest.mark.parametrize("reached", ["allowed", "cut", "never"])
def test_a_notice_is_passed_back_to_a_sender_cut_off_from_the_next_relay(reached: str) -> None:
    """71w wave4a 1: the hub's connection to the next relay (`ahead`) was a reply path of the
    sender's (`back`), then a relay's refusal cut it (`forget_each`); the next relay's notice
    for the sender's channel is passed back to the sender all the same (before: dropped). The
    controls: one still allowed is passed back, one never reached is not."""

    async def test() -> None:
        sender, ahead = _connection(), Address("worker", "tcp-next-relay")
        if reached != "never":
            sender.allow(ahead)
        if reached == "cut":
            sender.allowed.forget_each({ahead})
        hub = _Chain((_link(sender.address, "to-sender"),))
        hub.router.has = lambda address: address == sender.address
        out = hub.ends[0]
        out.source = sender
        notices = NoRouteNotices(cast("ChannelManager", hub))
        end = cast("ChannelEnd", _link(ahead, "to-next-relay"))
        dead, channel = Address("worker", "tcp-member"), Address("worker", "chan-a.dec")
        notice = no_route((dead,), (sender.address, channel))
        notices.received(end, RoutedMessage((NOTICE_SERVICE,), (), notice))
        for _ in range(3):
            await asyncio.sleep(0)
        passed = [parse_no_route(m.payload) for m in hub.sent]
        assert passed == ([] if reached == "never" else [((ahead, dead), (channel,))])
        assert hub.counters.no_route_notices_forwarded == len(passed)
        assert len(hub.noted) == 1 - len(passed)  # "could not pass back"

    asyncio.run(test())
