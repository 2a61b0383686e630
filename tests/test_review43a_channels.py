"""Review 43a, channels (what one member's delegate identities hold open on a node).

Channels 1: open channels were bounded per peer identity (`ChannelLimits.max_channels_per_peer`,
64) and per source address (`max_channels_per_source`, 256), but not per member. A member mints
delegate identities offline, for free: its delegates, each under its own per-identity limit,
from addresses each under its own per-source limit, held as many (idle) channels as it cared
to make. Channels are now bounded per member too (`max_channels_per_member`, 256 by default,
`troth.limits.MAX_CHANNELS_PER_MEMBER`), counted by `member_accounts` as the reassembly budget
is (a peer with no chain: its own identity, where the per-peer limit is the lower).
"""

from __future__ import annotations

import pytest

from tests.support.channels import MEMBER, T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, Peer, echo, run, until
from troth.channel import ChannelIdentity
from troth.credentials import CredentialChain
from troth.credentials.issue import delegate
from troth.errors import ChannelError, ChannelFailure
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.routing import parse_route


def delegate_of_alice(net: Net) -> ChannelIdentity:
    """A fresh delegate identity of member alice (minted offline, at no cost)."""
    root = CredentialChain.decode(net.world.credential(net.world.alice))
    who = make_channel_party(net.world.vault, now=T)
    chain = delegate(
        net.world.alice.party.signer,
        root,
        subject=who.identifier,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="a throwaway delegate",
    ).encode()
    return who.me((chain,))


async def open_as(peer: Peer, me: ChannelIdentity) -> ChannelEnd:
    return await peer.manager.open(parse_route(HUB), me=me)


def test_a_members_delegates_share_its_channel_limit() -> None:
    """Channels 1: per peer 2, per source 2, per member 3. Member alice's delegates, one
    channel each from three addresses, hold her 3; a fourth delegate from a fourth address
    (under its own per-peer and per-source limits) is refused `peer-not-allowed`; bob, another
    member, still opens his; once one of alice's closes, a new delegate of hers gets one.
    Was a strict xfail until the channel manager counted open channels per member
    (`member_accounts`, `ChannelLimits.max_channels_per_member`), in the handshake's policy and
    again once the channel is taken in."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(
            max_channels_per_peer=2, max_channels_per_source=2, max_channels_per_member=3
        )
        hub = await net.hub(limits=limits)
        attackers = [net.peer(f"10.6.6.{n}") for n in range(1, 6)]
        held = [await open_as(attackers[n], delegate_of_alice(net)) for n in range(3)]
        for n, end in enumerate(held):
            assert await echo(attackers[n], end, "held") == "held"
        with pytest.raises(ChannelError) as caught:
            await open_as(attackers[3], delegate_of_alice(net))
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        bob = net.peer("10.0.0.4", net.world.bob)
        end = await bob.manager.open(parse_route(HUB))
        assert await echo(bob, end, "bob's channel") == "bob's channel"
        await held[0].close()
        await until(lambda: len(hub.manager.ends) == 3)  # alice's other two and bob's
        again = await open_as(attackers[4], delegate_of_alice(net))
        assert await echo(attackers[4], again, "room again") == "room again"

    run(test)
