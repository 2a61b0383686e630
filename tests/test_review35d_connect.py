"""Review 35d, connect: two `connect` blocks of one running node to the same route, one
pinning the identity it expects there (`expect=`), the other not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

import troth

LOOPBACK = ("127.0.0.1", 0)


def door() -> troth.Service:
    """A service open to any authenticated identity (so its node takes channels from
    strangers too)."""
    service = troth.Service("door")

    @service.method("knock", allow=troth.AnyAuthenticated())
    async def knock(request: troth.Request) -> str:
        return f"the stranger heard {request.arguments}"

    return service


def scenario(
    inside: Callable[[troth.RunningNode, troth.Channel, str], Awaitable[None]],
) -> None:
    """`member` (enrolled with acme) runs, and pins a stranger (no credential from acme) at
    its route; `inside` runs while the pinned channel is open."""

    async def test() -> None:
        with (
            troth.Node.open("acme") as hub,
            troth.Node.open("member") as member,
            troth.Node.open("stranger") as stranger,
        ):
            acme = hub.create_authority()
            member.enroll(acme.ticket({"agents.team": "support"}))
            async with (
                stranger.serve(listen=LOOPBACK, services=[door()]) as far,
                member.serve() as running,
            ):
                with pytest.raises(troth.ChannelError) as refused:  # member's trust: no
                    async with running.connect(far.address, expect=None):
                        pass
                assert refused.value.reason is troth.ChannelFailure.PEER_NOT_ALLOWED
                async with running.connect(far.address, expect=far.identifier) as pinned:
                    assert await pinned.call("door", "knock", "hello") == (
                        "the stranger heard hello"
                    )
                    await inside(running, pinned, far.address)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_an_unpinned_connect_does_not_inherit_another_blocks_pin() -> None:
    """Connect 1: `connect(route, expect=None)` promises the peer this node's trust admits,
    and alone it refuses the stranger; but while another block of the same running node held
    a channel to that route pinned to the stranger (admitted by that pin only), the unpinned
    block was handed that very channel, and its call, arguments and all, went to an identity
    its node's trust refuses. Was a strict xfail until an unpinned `connect` checked the
    peer of the channel it is handed against the node's trust."""

    async def inside(running: troth.RunningNode, pinned: troth.Channel, route: str) -> None:
        with pytest.raises(troth.ChannelError) as refused:
            async with running.connect(route, expect=None) as channel:
                await channel.call("door", "knock", "the customer's address")
        assert refused.value.reason is troth.ChannelFailure.PEER_NOT_ALLOWED
        assert "holds no credential from an authority member trusts" in refused.value.detail

    scenario(inside)


def test_a_connect_block_ending_leaves_the_others_channel_open() -> None:
    """Connect 2: two blocks to one route and identity share the runtime's channel, and the
    first to end closed it under the other, whose next call failed (RoutingError: no worker
    for the channel): one task of a running node cut another's channel off. Was a strict
    xfail until the last block using a channel closes it."""

    async def inside(running: troth.RunningNode, pinned: troth.Channel, route: str) -> None:
        async with running.connect(route, expect=pinned.peer) as channel:
            assert await channel.call("door", "knock", "twice") == "the stranger heard twice"
        assert await pinned.call("door", "knock", "again") == "the stranger heard again"

    scenario(inside)
