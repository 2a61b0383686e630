"""Review 48u: attacks on the check of a quiet channel (docs/protocols.md, "Unanswered
channels") that failed: the code was right."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect_restarted_member import TO_B, B, relayed_b
from tests.test_review48u_relayrestart import channel_to_b_amid_junk
from troth.node.channel_ends import RECHECK_AFTER


def test_junk_cannot_make_a_live_quiet_channel_be_set_aside(tmp_path: Path) -> None:
    """A third party floods a's end of a quiet channel to the live b with frames no key made
    while `channel_to` checks it: the live b answers the PING, and the channel is reused (no
    unauthenticated frame closes a channel, issue #8)."""

    async def test(net: MemNet) -> None:
        await relayed_b(net)
        a = await net.member("a")
        assert await a.send_message(TO_B, "before") == "before"
        end = await a.channel_to(B)
        await asyncio.sleep(RECHECK_AFTER + 0.1)
        assert end.quiet(asyncio.get_running_loop().time())
        heard = end.channel.authenticated

        again = await channel_to_b_amid_junk(a, end, 0.01)
        assert again is end
        assert not end.channel.closed
        assert end.channel.authenticated > heard  # the PONG
        assert not end.quiet(asyncio.get_running_loop().time())
        assert await a.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)
