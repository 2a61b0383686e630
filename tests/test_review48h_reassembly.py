"""Review 48h, reassembly (refuted): one peer's incomplete fragmented messages held on several
channels at exactly its reassembly budget (`ChannelLimits.max_reassembly_per_peer`), and one
fragment past it. The budget is charged per fragment (its whole decrypted frame) against all
the channels of the member together: at the bound every channel stays open; one fragment
more is made room for from its channel's older messages (review 49f, reassembly 1), and where
there are none it closes only the channel it came on (`too large`), and what it held is given
back."""

from __future__ import annotations

from tests.test_channel_manager import HUB, Net, echo, run, send_fragments, until
from troth.errors import ChannelFailure
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.routing import parse_route

MESSAGE = 400_000  # bytes: fragmented into full frames but its last


def test_a_peer_at_exactly_its_reassembly_budget_over_three_channels_keeps_them_all() -> None:
    """A first hub measures what one fragment of a 400 KB message is charged (`frame`). The
    hub under test takes 6 x `frame` per peer (the node's total far above): one peer leaves
    two fragments on each of 3 channels (exactly 6 x `frame`): all three stay open and
    answer; a seventh fragment, a new message on the first channel, takes the place of that
    channel's older message; a new channel's message past the budget closes it alone (`too
    large`), and what it held is free again."""

    async def test(net: Net) -> None:
        probe = await net.hub()
        a = net.peer("10.0.0.3")
        end = await a.manager.open(parse_route(HUB))
        await send_fragments(a, end, MESSAGE, 1)
        (probe_end,) = probe.manager.ends.values()
        await until(lambda: probe_end.channel.reassembling > 0)
        frame = probe_end.channel.reassembling
        await a.manager.close_all()
        await probe.manager.close_all()
        await probe.transport.close()
        net.peers.remove(probe)

        limits = ChannelLimits(max_reassembly_per_peer=6 * frame)
        hub = await net.hub(limits=limits)
        ends: list[ChannelEnd] = [await a.manager.open(parse_route(HUB)) for _ in range(3)]
        for end in ends:
            await send_fragments(a, end, MESSAGE, 2)

        def held() -> int:
            return sum(e.channel.reassembling for e in hub.manager.ends.values())

        await until(lambda: held() == 6 * frame)
        for n, end in enumerate(ends):  # at the bound: every channel open and answering
            assert await echo(a, end, f"open {n}") == f"open {n}"
        first = ends[0]
        await send_fragments(a, first, MESSAGE, 1)  # another message: one frame past it,
        await until(lambda: held() == 5 * frame)  # made room for by the first channel's
        # older message, given up (review 49f, reassembly 1: it closed the channel), counted
        assert hub.manager.counters.reassembly_given_up == 1
        again = await a.manager.open(parse_route(HUB))
        await send_fragments(a, again, MESSAGE, 2)  # its second fragment: one frame past,
        await until(lambda: again.enc not in a.manager.ends)  # and it holds nothing older
        assert again.channel.close_reason is ChannelFailure.TOO_LARGE
        await until(lambda: held() == 5 * frame)  # what it held given back
        for n, end in enumerate(ends):
            assert await echo(a, end, f"still {n}") == f"still {n}"

    run(test)
