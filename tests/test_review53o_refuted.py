"""Review 53o, refuted or by design (attacks tried that found the code right).

In-band 1 (review 53g's residual): a channel opened as a stranger (no chain) that later shows
a member's chains (an in-band credential refresh, docs/protocols.md "Secure channel") keeps the
account it opened under: its reassembly budget and its place in the channel counts stay the
stranger's own (`member_accounts` as the channel opened: a peer with no chain, its own
identity), not its member's. By design: a stranger's limits are what any identity minted for
free gets anyway (per identity, per source, the strangers' share of the node's pool), so
staying under them gains nothing a stranger lacks; moving the channel into its member's
account would let a refresh change which limits hold an open channel. Its bytes still count
against its authorities now (`PeerReassembly.count_against`, review 24b).
"""

from __future__ import annotations

from tests.support.channels import MEMBER, T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, echo, run
from tests.test_review43a_channels import delegate_of_alice, open_as
from troth.channel.verification import VerifiedPeer
from troth.credentials import CredentialChain
from troth.credentials.issue import delegate
from troth.node.channels import ChannelLimits
from troth.routing import parse_route


class AdmitAnyone:
    """A channel policy admitting every authenticated peer, strangers too."""

    def admit(self, peer: VerifiedPeer) -> bool:
        return True


def test_a_strangers_channel_that_shows_a_members_chain_keeps_the_strangers_account() -> None:
    """Alice's delegate opens a channel showing no chain, then presents its chain from alice:
    the hub keeps its channel under the delegate's own account (not alice's, which her other
    delegate's channel holds alone), and both still answer."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_member=2))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())  # as a node hosting an
        # authority admits strangers (to enrol them)
        first, second = net.peer("10.6.6.1"), net.peer("10.6.6.2")
        held = await open_as(first, delegate_of_alice(net))
        root = CredentialChain.decode(net.world.credential(net.world.alice))
        who = make_channel_party(net.world.vault, now=T)
        chain = delegate(
            net.world.alice.party.signer,
            root,
            subject=who.identifier,
            attributes=MEMBER,
            now=T,
            ttl=600,
            purpose="shown later",
        ).encode()
        stranger = await second.manager.open(parse_route(HUB), me=who.me(()))
        assert await echo(second, stranger, "as a stranger") == "as a stranger"
        await stranger.present((chain,))
        assert await echo(second, stranger, "as a member") == "as a member"
        ends = {end: hub.manager._budget_of[end] for end in hub.manager.ends.values()}
        accounts = sorted(ends.values(), key=sorted)
        alice = frozenset({net.world.alice.party.identifier.digest})
        mine = frozenset({who.identifier.digest})
        assert mine in accounts
        shown = hub.manager._budgets[mine][0].authorities  # the hub saw the chain: its bytes
        assert shown == frozenset({net.world.authority.identifier.digest})  # count against it
        assert accounts.count(alice) == 1, accounts
        assert await echo(first, held, "alice's") == "alice's"

    run(test)
