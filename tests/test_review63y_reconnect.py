"""Review 63y: the fix of review 63r reconnect 1, attacked (each test failed on the code
before its fix).

reconnect 1 (medium): a channel pinned to the node that took an address kept a link from
  ever reaching the node it pins when that one came back. A member's link is pinned to
  the authority node `gone` at an address; `now` took the address and the member holds a
  channel pinned to `now` over its one connection there (63r's case). The name then points
  at `gone` again (the address re-pointed, `now` listening elsewhere: its connection to the
  member stays). Each attempt of the link went over the kept connection, was answered by
  `now`, refused, and — since review 63r — the connection was kept for the channel pinned
  to `now`: no attempt ever dialled the address again, and the link to `gone` stayed down
  as long as anything spoke to `now` over that connection (its keepalive does, for good).
  Before 63r the refusal closed the connection and the next attempt reached `gone`.
  Fixed: the connection is kept for the pinned channels for PINNED_CONNECTION_KEPT_SECONDS
  (120 s) from the first refusal, then closed once, and the link dials the address afresh
  (the channels pinned to `now` are cut once a window, not within each 10 s backoff).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect import FAST, until
from troth import limits
from troth.credentials import Attributes
from troth.node import Node, open_node
from troth.node.links import LinkRow, LinkState
from troth.node.runtime import NodeRuntime
from troth.routing import parse_route
from troth.transport import MemoryTransport

SHARED = "/tcp/shared:4000"


def test_a_pinned_channel_to_the_node_that_took_the_address_does_not_hold_the_link_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reconnect 1 (the window shortened to 0.5 s; the 63r test keeps its channel within it)."""
    monkeypatch.setattr(limits, "PINNED_CONNECTION_KEPT_SECONDS", 0.5, raising=False)

    async def test(net: MemNet) -> None:
        def prepare(node: Node) -> None:
            node.create_authority("gone", now=net.clock.now())

        gone = await net.node("gone", listen=("shared", 4000), prepare=prepare)
        authority = gone.node.authority()
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "x"}),
            address=SHARED,
            now=net.clock.now(),
        )
        b = await net.node("b", backoff=FAST)
        await b.enroll(str(ticket), "b")  # b's link at SHARED is pinned to `gone`
        await gone.tcp.close()
        await gone.stop()
        await b.enroll(net.ticket(), "b")
        now = await net.node("now", listen=("shared", 4000))
        await now.enroll(net.ticket(), "now")
        now_id = net.identifier(now)
        await b.channel_to(parse_route(SHARED), expect=now_id)

        def stale() -> LinkRow:
            return next(row for row in b.link_rows() if row.route == SHARED)

        attempts = stale().attempts
        await until(lambda: stale().attempts >= attempts + 1)
        transport = now.tcp
        assert isinstance(transport, MemoryTransport)
        net.network._unbind(transport)  # the address points elsewhere; `now`'s connection stays
        back = NodeRuntime(
            open_node("gone", home=net.home), clock=net.clock, transport=net.transport("shared")
        )
        net.runtimes.append(back)
        net.opened.append(back.node)
        await back.start(("shared", 4000))  # `gone` is back at its address
        await until(lambda: stale().state is LinkState.CONNECTED, timeout=5)

    run_memnet(test, tmp_path)
