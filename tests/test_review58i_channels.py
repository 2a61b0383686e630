"""Review 58i, channels 1: the per-member channel limit (`max_channels_per_member`, review 43a)
counted a peer's channels under the exact set of members at the roots of its chains
(`member_accounts`), so a delegate showing chains from two members counted against neither:
members alice and bob, each at the limit with their delegates' channels, opened as many again
through delegates holding a chain from each of them (k members: 2^k - 1 such sets, each with a
limit of its own), and took the places of their authority's share of the node's channels that
other members would have had. A peer's channels now count against every member at the roots of
its chains, as its relay names do (`RelayService._check_quota`)."""

from __future__ import annotations

import pytest

from tests.support.channels import MEMBER, T
from tests.support.parties import ChannelParty, make_channel_party
from tests.test_channel_manager import Net, echo, run
from tests.test_review43a_channels import open_as
from troth.channel import ChannelIdentity
from troth.credentials import CredentialChain
from troth.credentials.issue import delegate
from troth.errors import ChannelError, ChannelFailure
from troth.node.channels import ChannelLimits


def delegate_of(net: Net, *members: ChannelParty) -> ChannelIdentity:
    """A fresh delegate identity holding a chain from each of `members`."""
    who = make_channel_party(net.world.vault, now=T)
    chains = tuple(
        delegate(
            member.party.signer,
            CredentialChain.decode(net.world.credential(member)),
            subject=who.identifier,
            attributes=MEMBER,
            now=T,
            ttl=600,
            purpose="a delegate",
        ).encode()
        for member in members
    )
    return who.me(chains)


def test_a_delegate_of_two_members_counts_against_both() -> None:
    async def test(net: Net) -> None:
        limits = ChannelLimits(max_channels_per_member=2)
        await net.hub(limits=limits)
        alice, bob = net.world.alice, net.world.bob
        peers = [net.peer(f"10.58.{n}.1") for n in range(5)]
        for n, member in enumerate((alice, alice, bob, bob)):  # both at their limit
            end = await open_as(peers[n], delegate_of(net, member))
            assert await echo(peers[n], end, "held") == "held"
        with pytest.raises(ChannelError) as caught:
            await open_as(peers[4], delegate_of(net, alice, bob))
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED

    run(test)
