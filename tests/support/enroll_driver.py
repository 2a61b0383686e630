"""A holder's enrollment over TCP, as the node runtime runs it once it calls troth.enrollment
(NodeRuntime.enroll: the steps driven through a secure channel to `/service/authority`).

    python -m tests.support.enroll_driver NODE IDENTITY TICKET     enroll with a ticket
    python -m tests.support.enroll_driver NODE IDENTITY --resume   resume the pending one

Prints the enrollment's JSON. Run as a real process by the fault-injection tests, so that
TROTH_CRASH_AT can end it at any crash point.
"""

from __future__ import annotations

import asyncio
import json
import sys

from troth import enrollment
from troth.authority import Ticket
from troth.authority.client import ticket_authority
from troth.clock import SystemClock
from troth.encoding import cbor
from troth.node import open_node, troth_home
from troth.node.runtime import AUTHORITY, NodeRuntime
from troth.node.services import call
from troth.routing import parse_route

CALL_TIMEOUT = 3.0  # a crashed authority never answers: give up soon


async def run(node_name: str, identity: str, ticket_text: str) -> dict[str, object]:
    clock = SystemClock()
    with open_node(node_name, home=troth_home()) as node:
        pending = None
        if ticket_text == "--resume":
            pending = node.wallet.pending_enrollments(identity)[0]
            ticket_text = pending.ticket
        ticket = Ticket.parse(ticket_text)
        authority = ticket_authority(ticket, now=clock.now())
        runtime = NodeRuntime(node)
        await runtime.start()
        try:
            end = await runtime.channel_to(
                parse_route(ticket.address), also_trust=frozenset({authority})
            )

            async def send(request: bytes) -> bytes:
                answer = await call(
                    runtime.router, (end.enc, AUTHORITY), "enroll", request, timeout=CALL_TIMEOUT
                )
                return cbor.expect_bytes(answer, "chain")

            if pending is not None:
                done = await enrollment.resume_async(
                    node.identities, node.wallet, pending, clock=clock, send=send
                )
            else:
                done = await enrollment.enroll_async(
                    node.identities, node.wallet, identity, ticket_text, clock=clock, send=send
                )
            return done.to_json()
        finally:
            await runtime.stop()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(*sys.argv[1:4]))))
