"""Review 58i, channels 1: the per-member channel limit (`max_channels_per_member`, review 43a)
counted a peer's channels under the exact set of members at the roots of its chains
(`member_accounts`), so a delegate showing chains from two members counted against neither:
members alice and bob, each at the limit with their delegates' channels, opened as many again
through delegates holding a chain from each of them (k members: 2^k - 1 such sets, each with a
limit of its own), and took the places of their authority's share of the node's channels that
other members would have had. A peer's channels now count against every member at the roots of
its chains, as its relay names do (`RelayService._check_quota`).

Channels 2: the reassembly budgets are kept by the same exact set, so such a delegate also drew
on a budget of its own, not on its members'. Was a strict xfail until review 58l (reassembly 1):
each budget's bytes now count against every member of its set (`troth.node.member_reassembly`;
tests/test_review58l_reassembly.py)."""

from __future__ import annotations

import pytest

from tests.support.channels import MEMBER, T
from tests.support.parties import ChannelParty, make_channel_party
from tests.test_channel_manager import Net, echo, run, send_fragments, until
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


def test_a_delegate_of_two_members_draws_on_both_reassembly_budgets() -> None:
    """Channels 2: per member 200 KB. Alice's delegate leaves ~131 KB incomplete; a delegate
    holding chains from alice and bob then leaves ~131 KB more, past alice's 200 KB: its
    channel closes (`too large`), as her own delegate's does (tests/test_review41b_delegates.py).
    It had a budget of its own, keyed by the set {alice, bob}, and stayed open: k members held
    2^k - 1 budgets (fixed by review 58l, reassembly 1)."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_reassembly_per_peer=200_000, max_reassembly_total=2_000_000)
        hub = await net.hub(limits=limits)
        alice, bob = net.world.alice, net.world.bob
        mallory = net.peer("10.58.9.1")
        first = await open_as(mallory, delegate_of(net, alice))
        second = await open_as(mallory, delegate_of(net, alice, bob))
        await send_fragments(mallory, first, 400_000, 2)  # ~131 KB held
        await send_fragments(mallory, second, 400_000, 2)

        def held() -> int:
            return sum(e.channel.reassembling for e in hub.manager.ends.values())

        await until(lambda: second.enc not in mallory.manager.ends or held() > 200_000)
        assert second.channel.close_reason is ChannelFailure.TOO_LARGE

    run(test)
