"""Review 24b (today's code under hostile peers: the node's reassembly bytes as a pool shared
between authorities, 8d09919, f880517, eba5866).

Read for drift in the node's counts (`ChannelManager._reassembly`, troth.node.shares): a
peer's budget takes and gives the same bytes against the same authorities (`take`/`give`
use its `authorities`, `count_against` moves what it holds when they change), a channel
joins it with what it holds then (0 always fits), and a channel that closes gives back
every fragment it held (`Reassembler.clear`, before the manager forgets the channel and,
with its last channel, the budget). No way was found to take without giving, give more than
taken, or leave counts behind. The guard below keeps it so through the flows that change a
budget's authorities with fragments held: a member that shows no chain (a stranger's share)
and its chain again, with a second channel of the same identity holding fragments too, and
then its connection closing with everything held.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.channels import packet
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_reconnect import until
from tests.test_review23b_limits import BOUND
from troth.channel import split_packet
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.node.runtime import NodeRuntime
from troth.node.shares import STRANGERS
from troth.routing import RoutedMessage


async def _fragments(runtime: NodeRuntime, end: ChannelEnd, keep: int) -> None:
    """`runtime` sends the first `keep` fragments of a 300 KB message on `end`, never the rest."""
    end.channel.send(bytes(300_000))
    fragments = [f for p in end.channel.outgoing() for f in split_packet(p)]
    for fragment in fragments[:keep]:
        await runtime.router.route(RoutedMessage(end.peer_route, (end.dec,), packet(fragment)))


def test_fragments_held_across_a_change_of_authorities_leave_no_count_behind(
    tmp_path: Path,
) -> None:
    """A member holds fragments on two channels to the hub; it shows no chain (its bytes
    count as the strangers'), then its chain again (its authority's), and its connection
    closes: the hub's pool is back at zero bytes and no authority holds any."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        pool = hub.channels._reassembly
        member = await net.member("member")
        first = await member.channel_to(route(HUB))
        second = await member.channels.open(route(HUB))
        await _fragments(member, first, 2)
        await until(lambda: pool.places >= 2 * 65_000)
        held = pool.places
        assert (held > 0, pool.holders()) == (True, 1)  # its authority, not the strangers
        credentials = (await member._renew_identity()).credentials
        theirs = [e for e in hub.channels.ends.values() if e.peer_route and e.direct]
        await first.present(())  # a stranger now: what it holds moves to the strangers
        await until(lambda: pool.held(STRANGERS) == held)
        assert (pool.places, pool.holders()) == (held, 1)
        await _fragments(member, second, 1)  # the second channel's too, then its chain again
        await until(lambda: pool.places > held)
        await first.present(credentials)
        await until(lambda: STRANGERS not in pool._held)
        assert pool.holders() == 1
        (connection,) = member.tcp.connections()
        await connection.close()
        await until(lambda: not any(e in hub.channels.ends.values() for e in theirs))
        assert (pool.places, pool.holders()) == (0, 0)

    limits = ChannelLimits(max_reassembly_per_peer=BOUND, max_reassembly_total=BOUND)
    run_memnet(test, tmp_path / "home", budget=30, limits=limits)
