"""Review 63r: crashes and reconnection, findings (each test failed on the code before its fix).

reconnect 1 (medium): a link pinned to a node that left its address kept cutting the node's
  channels to the node that took the address. A member enrolled with an authority whose node
  listened at an address; that node went (moved, or stopped for good) and another node took
  the address (a port reused). The member's link there, pinned to the authority that left,
  retried within its backoff (at most 10 s) for good; each attempt was answered by the new
  node, refused (rightly), and closed the connection "as going to the wrong node" — with every
  channel the member had opened over it to the new node, pinned to that node's identity (its
  enrollment with the new node's authority, `message send --expect`, a service client): each
  was cut within 10 s of its opening, and the enrollment itself failed with "channel closed"
  when an attempt fell in it. A fresh connection goes to the same node: closing it reached
  the pinned one no sooner. Fixed: the connection is not closed while an open channel over it
  is answered by an identity a caller of this node pinned there (`channel_to(expect=)`), as
  it already was not for the link's own pin (review 25).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect import FAST, until
from troth.credentials import Attributes
from troth.node import Node
from troth.node.links import LinkRow
from troth.routing import parse_route

SHARED = "/tcp/shared:4000"


def test_a_stale_links_attempts_leave_pinned_channels_to_the_new_node_open(
    tmp_path: Path,
) -> None:
    """reconnect 1."""

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
        await b.enroll(net.ticket(), "b")  # b trusts the hub's authority too
        now = await net.node("now", listen=("shared", 4000))  # the address taken by a member
        await now.enroll(net.ticket(), "now")  # of the hub's authority
        now_id = net.identifier(now)
        end = await b.channel_to(parse_route(SHARED), expect=now_id)
        assert await b.send_message(f"{SHARED}/service/echo", "hi", expect=now_id) == "hi"

        def stale() -> LinkRow:
            return next(row for row in b.link_rows() if row.route == SHARED)

        attempts = stale().attempts
        await until(lambda: stale().attempts >= attempts + 3)
        assert "expected" in (stale().error or "")  # refused: `now` answered there
        assert end.enc in b.channels.ends  # the channel pinned to `now` was left open
        assert await b.send_message(f"{SHARED}/service/echo", "again", expect=now_id) == "again"

    run_memnet(test, tmp_path)
