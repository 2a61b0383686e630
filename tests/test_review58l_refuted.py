"""Review 58l, refuted (attacks tried that found the code right).

Reassembly 1's residual: a delegate holding chains from alice and bob, its bytes now counted
against both (`troth.node.member_reassembly`), shows no chain on its open channel (an in-band
refresh), as a stranger whose budget would be its own, and sends more. Its channel keeps the
account it opened with (`member_accounts` as the channel opened: review 53o, in-band 1), so
what it sends still counts against alice and bob: past alice's limit the channel closes."""

from __future__ import annotations

from tests.test_channel_manager import Net, run, send_fragments, until
from tests.test_review43a_channels import open_as
from tests.test_review53o_refuted import AdmitAnyone
from tests.test_review58i_channels import delegate_of
from troth.errors import ChannelFailure
from troth.node.channels import ChannelLimits
from troth.node.shares import STRANGERS


def test_showing_no_chain_does_not_leave_the_members_limits() -> None:
    """Per member 200 KB. Alice's delegate leaves ~131 KB incomplete; the delegate of alice and
    bob shows no chain (the hub counts its channel's bytes as the strangers'), then leaves
    ~131 KB more: past alice's 200 KB, its channel closes (`too large`)."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_reassembly_per_peer=200_000, max_reassembly_total=2_000_000)
        hub = await net.hub(limits=limits)
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())  # a peer may show no chain
        mallory = net.peer("10.58.13.1")
        first = await open_as(mallory, delegate_of(net, net.world.alice))
        second = await open_as(mallory, delegate_of(net, net.world.alice, net.world.bob))
        await send_fragments(mallory, first, 400_000, 2)
        await second.present(())
        budgets = hub.manager._budgets.values()
        await until(lambda: any(b.authorities == {STRANGERS} for b, _ in budgets))
        await send_fragments(mallory, second, 400_000, 2)
        await until(lambda: second.channel.close_reason is not None)
        assert second.channel.close_reason is ChannelFailure.TOO_LARGE

    run(test)
