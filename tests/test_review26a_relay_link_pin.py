"""Review 26a, links 1: a relay-only link is pinned by whoever answers any channel to its route
once the link exists, not by its `relay create` (docs/protocols.md, "Links": "A link only to
relays ... is pinned to the identity that answered its `relay create` first").

`create_relay` makes the link (`Links.link`) before it opens the channel: when that first
attempt fails (the relay node is down), a link with no pin, no relay and no authority stays.
The next channel to the route that anyone opens without a pin (`message send`) calls
`Links.opened`, and whoever answers it — mallory, a member, holding the relay node's address
meanwhile — becomes the link's pin, and the link takes her channel as its own (CONNECTED;
once it closes the link reconnects to her). From then on every `relay create` there expects
her: carol, back at her address, is refused (and b's connection to her dropped each time), so
b cannot be relayed at carol until it restarts. Fix: `create_relay` makes the link only once
the relay was created, pinned to the identity that answered that channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect import FAST
from troth.errors import Unreachable
from troth.transport import MemoryTransport

CAROL = "/tcp/carol:4000"


def test_a_failed_relay_create_leaves_no_link_for_another_to_pin(tmp_path: Path) -> None:
    """b's first `relay create` at carol fails (carol is not up yet). Mallory (a member) holds
    carol's address; b sends her an unpinned message there, and she leaves. Once carol is up,
    b's `relay create` there succeeds, and the link is pinned to carol."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        with pytest.raises(Unreachable):  # nothing listens there yet
            await b.create_relay("b", CAROL)
        mallory = await net.node("mallory", listen=("carol", 4000))
        await mallory.enroll(net.ticket(), "mallory")
        assert await b.send_message(f"{CAROL}/service/echo", "carol?") == "carol?"  # hers
        assert isinstance(mallory.tcp, MemoryTransport)
        net.network._unbind(mallory.tcp)  # she leaves the address
        await mallory.stop()  # (and her channels close)
        carol = await net.node("carol", listen=("carol", 4000))
        await carol.enroll(net.ticket(), "carol")
        created = await b.create_relay("b", CAROL)
        assert created["route"] == f"{CAROL}/relay/b"
        assert b.links.links[CAROL].pin == net.identifier(carol)

    run_memnet(test, tmp_path / "home", budget=40)
