"""Review 65x, links 2 (low): a hub restarted on another port, and the member re-enrolled with
a ticket naming the new address: the member's link to the old address reconnected for good
(docs/protocols.md, "Reconnecting").

`NodeRuntime._sync_links` made a link for every remote authority's route and set its
`authority`, but never took it off a link whose authority the node's trust no longer routes
there. So the link to the old address, lost when the hub went down, kept the authority (the
feed it syncs there) and reconnected to an address nothing answers at, for as long as the node
ran: a connection attempt and a warning every `max_delay` (10 s), and `node status` showing
the authority's link `reconnecting` (attempt N: connection refused) though the node reached it
at its new address. Fixed: the link keeps only its relays there (pinned as before), and a
link left needing nothing is forgotten, its reconnecting stopped (`Links.forget_unneeded`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect import FAST, until
from troth.credentials import Attributes
from troth.node import open_node
from troth.node.links import LinkState
from troth.node.runtime import NodeRuntime

OLD, NEW = "/tcp/hub:4000", "/tcp/hub:5000"


def test_a_link_to_the_address_the_hub_left_stops_reconnecting(tmp_path: Path) -> None:
    """Links 2: once the member re-enrolled at the hub's new port, the old address has no
    link left reconnecting; the new one is connected."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(), "b")
        assert net.hub is not None
        await net.hub.tcp.close()
        await net.hub.stop()
        node = open_node("hub", home=net.home)
        net.opened.append(node)
        moved = NodeRuntime(node, clock=net.clock, transport=net.transport("hub"))
        net.runtimes.append(moved)
        await moved.start(("hub", 5000))
        await until(lambda: any(row.attempts >= 2 for row in b.link_rows()))  # the old one
        authority = node.authority()
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address=NEW,
            now=net.clock.now(),
        )
        await b.enroll(str(ticket), "b")
        await asyncio.sleep(0.3)  # more than the backoff's cap (0.2 s): attempts, if any
        rows = {row.route: row for row in b.link_rows()}
        assert OLD not in rows, rows[OLD].describe()
        assert rows[NEW].state is LinkState.CONNECTED

    run_memnet(test, tmp_path)
