"""Review 65k, refresh: the in-band credential refresh on channels still completing their
handshake (the race 65d fixed for `add_service`, in `troth.node.membership`).

refresh 1 (medium; fixed, `membership.refresh_credentials`): a refresh presents the fresh
  credentials in-band on the channels `OPEN` then. A channel this node opened whose handshake
  is under way (message 3, carrying the old credentials, sent; the responder's ACCEPTED not
  back yet: `AWAITING_ACCEPT`, a round trip through relays) was skipped, and it opened with
  the peer holding the credentials the refresh replaced for the rest of its life: one about
  to expire (the peer refused the node's calls once it did, until the node's next refresh, a
  credential's lifetime later), or one issued before its authority rotated (refused at once,
  the reason refreshed it). Now such a channel (and one still handshaking) is shown the
  fresh ones as soon as it opens.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.nodes import MemNet, route, run_memnet
from troth.channel import ChannelState


def test_refresh1_a_channel_awaiting_accept_is_shown_the_fresh_credentials(
    tmp_path: Path,
) -> None:
    """n (a member) opens a channel to p (a member); the ACCEPTED p answers is held back (a
    slow path) while n refreshes its credential: once the channel opens, p holds n's fresh
    credential, not the replaced one."""

    async def test(net: MemNet) -> None:
        p = await net.node("p", listen=("p", 4001))
        await p.enroll(net.ticket(), "p")
        n = await net.member("n")
        held: list[Any] = []
        stashed: list[tuple[bytes, float]] = []
        established = n.channels._on_established

        def hold_accepted(end: Any, peer: Any) -> None:  # the path back is slow
            established(end, peer)
            if peer.identifier == p.identifier and not held:
                held.append((end, end.channel.receive))

                def stash(payload: bytes, now: float) -> list[Any]:
                    stashed.append((payload, now))
                    return []

                end.channel.receive = stash

        n.channels._on_established = hold_accepted  # type: ignore[method-assign]
        opening = asyncio.get_running_loop().create_task(
            n.channel_to(route("/tcp/p:4001"), expect=p.identifier)
        )
        for _ in range(500):
            if stashed:
                break
            await asyncio.sleep(0.002)
        [(end, receive)] = held
        assert end.channel.state is ChannelState.AWAITING_ACCEPT
        assert await n.refresh_credentials(margin=10**6) == 1
        shown, _ = n.channel_identity("n", now=net.clock.now())
        end.channel.receive = receive  # the ACCEPTED arrives
        for payload, now in stashed:
            await end.handle(receive(payload, now))
        await opening
        state: ChannelState = end.channel.state
        assert state is ChannelState.OPEN

        def held_by_p() -> set[bytes]:
            peers = [end.peer for end in p.channels.ends.values() if end.peer is not None]
            return {
                c.chain
                for peer in peers
                if peer.identifier == n.identifier
                for c in peer.credentials
            }

        for _ in range(200):  # the in-band presentation travels
            if held_by_p() == set(shown.credentials):
                break
            await asyncio.sleep(0.005)
        assert held_by_p() == set(shown.credentials)

    run_memnet(test, tmp_path)
