"""What a channel end holds while a packet from its peer is handled (troth.node.channel_ends):
an answer made in the read callback's routing leaves with the others of that packet, but a
handler that sends through the same channel and then waits does not hold its message back
until it ends: what is held leaves before the routing waits (docs/protocols.md, "Secure
channel", coalescing)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from troth.credentials import Attributes
from troth.node import init_node, open_node
from troth.node.access import AnyAuthenticated
from troth.node.channel_ends import ChannelEnd
from troth.node.runtime import ECHO, NodeRuntime
from troth.node.services import Method, RequestContext, call
from troth.routing import Address, RoutedMessage, Router, parse_route

EARLY = Address("service", "early")


@dataclass
class Early:
    """`note`, inline: sends a message back through the caller's channel, then waits, then
    answers how many messages the caller's end had received by then."""

    router: Router
    watched: list[ChannelEnd] = field(default_factory=list)
    name: str = "early"
    oneway: Method | None = None

    def __post_init__(self) -> None:
        self.methods = {"note": Method(self.note, AnyAuthenticated(), inline=True)}

    async def note(self, arguments: Any, context: RequestContext) -> int:
        # a message of its own to the caller's reply worker (dropped there: no call has its
        # id), through the channel the request came in on
        caller = self.watched[0]
        before = caller.messages_in
        await self.router.route(RoutedMessage(context.return_route, (), b"\x00"))
        # waits (the read callback's routing goes on in a task) until the caller has read it,
        # or 5 s: a message held until the handler ends never arrives meanwhile, however slow
        # the machine, where a fixed 0.3 s sleep failed on a loaded one (review 47a, flakes 1)
        deadline = asyncio.get_running_loop().time() + 5  # (inline: not a task of its own)
        while caller.messages_in == before and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return caller.messages_in

    async def maintain(self, now: int) -> None:
        return None

    def status(self) -> dict[str, object]:
        return {}


def test_a_handler_that_sends_then_waits_does_not_hold_its_message(tmp_path: Path) -> None:
    scenario(tmp_path)


def scenario(tmp_path: Path, watched: list[ChannelEnd] | None = None) -> None:
    """Hub and member `a` over TCP; `a`'s channel end to the hub is appended to `watched`
    too (tests/test_review47a_flakes.py slows its reads)."""

    async def main() -> None:
        init_node("hub", home=tmp_path)
        init_node("a", home=tmp_path)
        hub_node, a_node = open_node("hub", home=tmp_path), open_node("a", home=tmp_path)
        hub_node.create_authority("hub", now=int(time.time()))
        hub, a = NodeRuntime(hub_node), NodeRuntime(a_node)
        await hub.start(("127.0.0.1", 0))
        await a.start()
        try:
            assert hub.listening is not None
            address = "/tcp/{}:{}".format(*hub.listening)
            authority = hub_node.authority()
            ticket = authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"agents.team": "x"}),
                address=address,
                now=int(time.time()),
            )
            await a.enroll(str(ticket), "a")
            early = Early(hub.router)
            hub.add_service(early)
            end = await a.channel_to(parse_route(address))
            early.watched.append(end)
            if watched is not None:
                watched.append(end)
            for _ in range(3):  # plain answers on this channel go on as before
                assert await call(a.router, (end.enc, ECHO), "echo", b"x") == b"x"
            before = end.messages_in
            seen = await asyncio.wait_for(call(a.router, (end.enc, EARLY), "note", None), 10)
            assert seen == before + 1  # the handler's message had arrived when it ended
            assert end.messages_in == before + 2  # and then its answer
        finally:
            await a.stop()
            await hub.stop()
            a_node.close()
            hub_node.close()

    asyncio.run(main())
