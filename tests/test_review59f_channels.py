"""Review 59f (short adversarial review of the lead's late fixes), channels: a node shows each
authority's chain that expires last first, then each root member's (review 58u, channels 1:
`troth.node.shown_identity._each_authority_first`), so that refreshing its own credential does
not push a member's delegation off what it shows (the hub's re-check then closes the channel
that no longer shows that member: review 58s, channels 2)."""

from __future__ import annotations

from tests.support.channels import T
from tests.support.parties import ChannelParty, make_channel_party
from tests.test_channel_manager import Net, echo, run, until
from tests.test_review43a_channels import open_as
from tests.test_review58s_channels import _chain_of as _delegation
from tests.test_review58s_channels import _responder
from tests.test_review58u_channels import _chains, _shown
from troth.channel import ChannelState
from troth.limits import MAX_CHANNEL_CREDENTIALS
from troth.node.channels import ChannelLimits


def test_channels1_a_refresh_beside_seven_members_keeps_the_channel() -> None:
    """review 59f, channels 1: the node holds its member credential and one delegation from
    each of seven members (eight chains, MAX_CHANNEL_CREDENTIALS: all shown). It refreshes its
    member credential (a ninth chain, expiring last; the old one held until it expires). The
    refreshed one is its authority's first; the old one, another chain of the same root member
    (the node), was given a root member's place too, ahead of the members' delegations, so the
    one expiring first fell off, and the hub's re-check closed the channel (UNSHOWN): review
    58u's fix, beaten by one member more than its test had."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_member=4))
        node = net.peer("10.59.6.1")
        who = make_channel_party(net.world.vault, now=T)
        members: list[ChannelParty] = [
            make_channel_party(net.world.vault, now=T) for _ in range(MAX_CHANNEL_CREDENTIALS - 1)
        ]
        held = [(net.world.credential(who, ttl=3600), T + 3600)]
        held += [(_delegation(net, m, who, 700 + i), T + 700 + i) for i, m in enumerate(members)]
        opening = _shown(net, who, held)
        assert len(opening) == MAX_CHANNEL_CREDENTIALS
        end = await open_as(node, who.me(opening))
        assert await echo(node, end, "open") == "open"
        held.append((net.world.credential(who, ttl=7200), T + 7200))  # refreshed
        refreshed = _shown(net, who, held)
        assert all(chain in refreshed for chain, _ in held[1:MAX_CHANNEL_CREDENTIALS])
        await end.present(refreshed)
        channel = _responder(hub.manager.ends)
        await until(lambda: channel.peer is not None and _chains(channel) == refreshed)
        await hub.manager.check_peers()
        assert channel.channel.state is ChannelState.OPEN

    run(test)
