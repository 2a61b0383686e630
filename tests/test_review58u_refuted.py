"""Review 58u: attacks on the channels' re-check (review 58s, channels 2) and the per-member
reassembly bytes (review 58l, reassembly 1) that did not work, kept as tests."""

from __future__ import annotations

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import Net, echo, run, send_fragments, until
from tests.test_review43a_channels import open_as
from tests.test_review58i_channels import delegate_of
from tests.test_review58s_channels import _chain_of as _delegation
from tests.test_review58s_channels import _responder
from tests.test_review58u_channels import _chains
from troth.channel import ChannelState
from troth.node.channels import ChannelEnd, ChannelLimits


def _state(end: ChannelEnd) -> ChannelState:
    """(read afresh: a close between two reads is not narrowed away)"""
    return end.channel.state


def test_the_recheck_closing_a_channel_mid_reassembly_gives_every_member_back() -> None:
    """A delegate of alice and bob leaves a fragment incomplete, then shows bob's chain alone:
    the re-check closes it (alice unshown), and alice, bob and the node get back every byte,
    and both members their channel count (none leaked on this close path)."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_reassembly_per_peer=400_000, max_reassembly_total=2_000_000)
        hub = await net.hub(limits=limits)
        manager = hub.manager
        alice, bob = net.world.alice, net.world.bob
        digests = frozenset(m.party.identifier.digest for m in (alice, bob))
        mallory = net.peer("10.58.22.1")
        who = make_channel_party(net.world.vault, now=T)
        his = _delegation(net, bob, who, 600)
        end = await open_as(mallory, who.me((_delegation(net, alice, who, 600), his)))
        await send_fragments(mallory, end, 300_000, 1)
        await until(lambda: manager._reassembly.places >= 65_000)
        assert all(manager._member_bytes.held(d) for d in digests)
        await end.present((his,))
        held = _responder(manager.ends)
        await until(lambda: held.peer is not None and len(_chains(held)) == 1)
        await manager.check_peers()
        assert _state(held) is ChannelState.CLOSED
        assert not manager.ends
        assert manager._members.most(digests) == 0
        assert (len(manager._member_bytes), manager._reassembly.places) == (0, 0)

    run(test)


def test_a_member_refreshing_its_own_credential_keeps_its_channel() -> None:
    """Alice shows her member credential, then a re-issued one (a refresh): the re-check
    leaves her channel open (the same member at its root)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_member=1))
        alice = net.world.alice
        peer = net.peer("10.58.23.1")
        end = await open_as(peer, alice.me((net.world.credential(alice),)))
        renewed = net.world.credential(alice, ttl=7200)
        await end.present((renewed,))
        held = _responder(hub.manager.ends)
        await until(lambda: held.peer is not None and _chains(held) == (renewed,))
        await hub.manager.check_peers()
        assert _state(held) is ChannelState.OPEN
        assert await echo(peer, end, "kept") == "kept"

    run(test)


def test_a_delegate_showing_another_chain_of_the_same_member_keeps_its_channel() -> None:
    """Alice's delegate shows a new delegation from her (a re-issued chain): it stays open;
    one of a delegate of hers that shows no chain of hers is closed (alice's place freed, a new
    delegate of hers finds it)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_member=1))
        alice, bob = net.world.alice, net.world.bob
        peer = net.peer("10.58.24.1")
        who = make_channel_party(net.world.vault, now=T)
        end = await open_as(peer, who.me((_delegation(net, alice, who, 600),)))
        again = _delegation(net, alice, who, 900)
        await end.present((again,))
        held = _responder(hub.manager.ends)
        await until(lambda: held.peer is not None and _chains(held) == (again,))
        await hub.manager.check_peers()
        assert _state(held) is ChannelState.OPEN
        other = _delegation(net, bob, who, 900)
        await end.present((other,))
        await until(lambda: _chains(held) == (other,))
        await hub.manager.check_peers()
        assert _state(held) is ChannelState.CLOSED
        fresh = net.peer("10.58.24.2")
        end2 = await open_as(fresh, delegate_of(net, alice))
        assert await echo(fresh, end2, "her place") == "her place"

    run(test)
