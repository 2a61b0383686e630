"""Review 58u, channels 1: the re-check of open channels (review 58s, channels 2: a channel that
shows no more a chain of each member it counts against is closed) closed an honest node's
channel after it refreshed its own member credential.

A node shows at most MAX_CHANNEL_CREDENTIALS of the chains it holds (`fitting_chains`), each
authority's that expires last first, then the rest newest expiry first
(`troth.node.shown_identity._each_authority_first`), and after refreshing its member credential
presents that choice again on every open channel (`membership.refresh_credentials`, in-band).
The refreshed credential is one more chain (the old one is kept until it expires), so the chain
that expired first falls off what the node shows: a delegation from alice, its only chain of
hers, still valid and still held. The hub's next re-check found alice unshown and closed the
channel (`peer not allowed`, UNSHOWN), though the node did nothing but refresh."""

from __future__ import annotations

from tests.support.channels import T
from tests.support.parties import ChannelParty, make_channel_party
from tests.test_channel_manager import Net, echo, run, until
from tests.test_review43a_channels import open_as
from tests.test_review58s_channels import _chain_of as _delegation
from tests.test_review58s_channels import _responder
from troth.channel import ChannelState
from troth.channel.payloads import fitting_chains
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.node.shown_identity import _each_authority_first
from troth.storage.base import HeldCredential


def _shown(net: Net, who: ChannelParty, held: list[tuple[bytes, int]]) -> tuple[bytes, ...]:
    """What a node holding `held` (chain, expiry) shows, as `channel_identity` chooses."""
    authority = net.world.authority.identifier.digest
    rows = [
        HeldCredential(who.identifier.digest, bytes([i]), chain, authority, expires)
        for i, (chain, expires) in enumerate(sorted(held, key=lambda h: -h[1]))
    ]
    ordered = tuple(h.chain for h in _each_authority_first(rows))
    return fitting_chains(who.party.identity.history, who.attestation, ordered)


def test_a_node_refreshing_its_own_credential_keeps_its_channel() -> None:
    """The node (a member itself) holds its member credential, six delegations from bob and one
    from alice (the first to expire): eight chains, all shown as it opens. It refreshes its
    member credential (a ninth chain, expiring last) and presents what it shows now: alice's
    delegation, still valid, is the one left out. The hub's re-check must leave the channel
    open (it closed it: alice unshown)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_member=4))
        alice, bob = net.world.alice, net.world.bob
        node = net.peer("10.58.21.1")
        who = make_channel_party(net.world.vault, now=T)
        held = [(net.world.credential(who, ttl=3600), T + 3600)]
        held += [(_delegation(net, bob, who, 900 + i), T + 900 + i) for i in range(6)]
        hers = _delegation(net, alice, who, 700)
        held.append((hers, T + 700))
        opening = _shown(net, who, held)
        assert len(opening) == 8
        assert hers in opening
        end = await open_as(node, who.me(opening))
        assert await echo(node, end, "open") == "open"
        held.append((net.world.credential(who, ttl=7200), T + 7200))  # refreshed
        refreshed = _shown(net, who, held)
        # (the node's own choice: alice's delegation, still held and valid, falls off it)
        await end.present(refreshed)
        channel = _responder(hub.manager.ends)
        await until(lambda: channel.peer is not None and _chains(channel) == refreshed)
        await hub.manager.check_peers()
        assert channel.channel.state is ChannelState.OPEN
        assert await echo(node, end, "still open") == "still open"

    run(test)


def _chains(end: ChannelEnd) -> tuple[bytes, ...]:
    assert end.peer is not None
    return tuple(c.chain for c in end.peer.credentials)
