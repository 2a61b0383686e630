"""Review 27b, links 1: a relay-only link made with a channel that closed before
`create_relay` took it in stays "connected" with that dead channel for good
(docs/protocols.md, "Links").

Since review 26a (links 1) `create_relay` makes a new link only once the relay is created,
and gives it its channel (`Links.opened`) after the `create` call returned. The channel may
close in between: the relay node's answer and its CLOSE (a restart, a keepalive, its own
`relay` re-check) come in the same read, and the channel manager's closed hook runs before
`create_relay` resumes. The hook finds no link holding that channel (the link does not exist
yet), so nothing reconnects; then `Links.opened` makes the link CONNECTED with the dead channel
as its own. No later close names it again: the link never reconnects, the relay is never
created again (the relay node holds the name for the grace period, then frees it), and b is
unreachable at its relay until it restarts, while `node status` says "connected".

The test models the race at its seam: the relay node (carol) closes b's channel as her
answer to `create` reaches b, before `create_relay` resumes. Was a strict xfail until
`Links.opened` took a channel that has already closed as opened and lost at once (the link
reconnects)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect import FAST
from troth.errors import TrothError
from troth.node import runtime as runtime_module
from troth.node.links import LinkState
from troth.node.services import call

CAROL = "/tcp/carol:4000"


def test_a_relay_link_whose_channel_closed_as_it_was_made_reconnects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b creates relay b at carol; carol closes the channel as her answer arrives. The link
    reconnects and creates the relay again: x reaches b's echo through carol's relay."""

    async def test(net: MemNet) -> None:
        carol = await net.node("carol", listen=("carol", 4000))
        await carol.enroll(net.ticket(), "carol")
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        x = await net.member("x")
        real_call = call
        closed_once: list[bool] = []

        async def answered_then_closed(router: Any, to: Any, method: str, *args: Any) -> Any:
            answer = await real_call(router, to, method, *args)
            if method == "create" and not closed_once:
                closed_once.append(True)
                for end in list(carol.channels.ends.values()):  # carol's CLOSE follows
                    if end.peer is not None and end.peer.identifier == net.identifier(b):
                        await end.close()
                async with asyncio.timeout(5):  # b reads it before create_relay resumes
                    while to[0] in {e.enc for e in b.channels.ends.values()}:
                        await asyncio.sleep(0.01)
            return answer

        monkeypatch.setattr(runtime_module, "call", answered_then_closed)
        await b.create_relay("b", CAROL)
        assert closed_once  # the channel did close as the relay was created

        reached = None
        for _ in range(100):  # the link reconnects (FAST backoff) and creates it again
            try:
                reached = await x.send_message(f"{CAROL}/relay/b/service/echo", "hi b")
                break
            except TrothError:
                await asyncio.sleep(0.05)
        (row,) = [r for r in b.link_rows() if r.route == CAROL]
        assert reached == "hi b", f"b unreachable at carol's relay; its link: {row.describe()}"
        assert row.state is LinkState.CONNECTED

    run_memnet(test, tmp_path / "home", budget=40)
