"""Review 41b, delegates (what one member's delegate identities hold on a node).

Delegates 1: the bytes that incomplete fragmented messages hold on a node were bounded per peer
identity (`ChannelLimits.max_reassembly_per_peer`, 2 x (16 MiB + 64 KiB)), for the node
(8 x that), and past that within each authority's share. A member mints delegate identities
offline, for free, each with a budget of its own: one member, through its delegates, held the
node's whole total and its authority's share of the rest, and every other member of the same
authority then had each fragmented message's channel closed (`too large`) — where requests,
relay names, sessions and vouchers count a delegate against the member at the root of its
chain (`member_accounts`). The reassembly budget is now kept per member (a delegate's channels
draw on its member's), a stranger's (no chain) per identity as before.
"""

from __future__ import annotations

from tests.support.channels import MEMBER, T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, echo, run, send_fragments, until
from troth.credentials import CredentialChain
from troth.credentials.issue import delegate
from troth.errors import ChannelFailure
from troth.node.channels import ChannelLimits
from troth.routing import parse_route


def test_a_members_delegates_share_its_reassembly_budget() -> None:
    """Delegates 1: per peer 200 KB, node 300 KB. Member alice's two delegates each leave a
    message of ~131 KB incomplete: the second passes alice's 200 KB and its channel closes
    (`too large`); bob, another member of the same authority, then still gets his in, and his
    channel stays open.
    Was a strict xfail until the channel manager kept the reassembly budgets per member
    (`member_accounts`), not per peer identity."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_reassembly_per_peer=200_000, max_reassembly_total=300_000)
        hub = await net.hub(limits=limits)
        root = CredentialChain.decode(net.world.credential(net.world.alice))
        mallory = net.peer("10.6.6.6")
        ends = []
        for _ in range(2):
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
            ends.append(await mallory.manager.open(parse_route(HUB), me=who.me((chain,))))
        first, second = ends
        await send_fragments(mallory, first, 400_000, 2)  # ~131 KB held
        await send_fragments(mallory, second, 400_000, 2)  # alice's would pass 200 KB
        await until(lambda: second.enc not in mallory.manager.ends)
        assert second.channel.close_reason is ChannelFailure.TOO_LARGE
        bob = net.peer("10.0.0.4", net.world.bob)
        end = await bob.manager.open(parse_route(HUB))
        await send_fragments(bob, end, 400_000, 2)  # ~131 KB more: within the node's total
        await until(
            lambda: sum(e.channel.reassembling for e in hub.manager.ends.values()) > 200_000
        )
        assert await echo(bob, end, "bob's channel is open") == "bob's channel is open"
        assert first.enc in mallory.manager.ends

    run(test)
