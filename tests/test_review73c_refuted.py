"""Review 73c: attacks on the room a node keeps for its own channels, handshakes and handshake
openings at another node (reviews 72p, 72r, 72x; 73c rooms 1-3) that did not work (each passes
on the code as it is; kept so a change that makes one work fails here)."""

from __future__ import annotations

import pytest

from tests.test_channel_manager import Net, run
from tests.test_review72i_ends import _AT_B, _Behind
from tests.test_review72p_ends2 import _connection
from tests.test_review73c_rooms import _LIMIT, _fill
from troth import limits
from troth.node import opening_rates
from troth.node.channel_sources import behind_other_end, forwarded_room
from troth.node.channels import ChannelLimits
from troth.node.opening_rates import OpeningRates
from troth.routing import Address

_REPLY = Address("worker", "chan-00000000000000aa.dec")


class _Clock:
    """The event loop's clock as the handshake budgets read it, moved by the test only."""

    now = 1000.0

    @classmethod
    def get_running_loop(cls) -> type[_Clock]:
        return cls

    @classmethod
    def time(cls) -> float:
        return cls.now


def _taken(rates: OpeningRates, *, forwarded: bool) -> int:
    """How many openings one source takes until it is refused."""
    count = 0
    while rates.take("tcp 192.0.2.7", "tcp 192.0.2.0/24", forwarded=forwarded):
        count += 1
    return count


@pytest.mark.parametrize("burst", [1, 2, 16, 17, 32, 33, 256])
def test_the_openings_kept_for_the_node_are_of_its_own_share(
    burst: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """73c refuted 1: at an operator's burst at an edge (1, 2, 16, 17, 32, 33, 256:
    `TROTH_CHANNELS_HANDSHAKE_BURST`, at least 1), the parties behind a node take at least one
    opening of a fresh share, never all of it past a burst of one; the node's own then take
    the rest, no more: one source opens no more than its burst in all (no host gains rate by
    the room kept), and after a second of refill, no more than the share's refill."""
    monkeypatch.setattr(opening_rates, "asyncio", _Clock)
    rates = OpeningRates(rate=64, burst=burst)
    behind = _taken(rates, forwarded=True)
    assert behind == forwarded_room(burst) >= 1
    kept = burst - behind
    assert kept == min(limits.SOURCE_CHANNELS_KEPT_FOR_OWN, burst // 2)
    assert _taken(rates, forwarded=False) == kept  # the node's own: the rest, no more
    assert _taken(rates, forwarded=True) == 0
    monkeypatch.setattr(_Clock, "now", 1001.0)  # a second of refill
    refill = min(burst, 64 // limits.HANDSHAKE_SOURCE_SHARE)
    assert _taken(rates, forwarded=True) + _taken(rates, forwarded=False) == refill


def test_only_a_relayed_senders_own_channel_end_is_that_sender() -> None:
    """73c refuted 2: behind a sender a relay names (over a connection this node made), only
    the route of that sender's own channel end (the relay's connection to it, then a channel
    end's reply address) keeps the whole limit: a member behind it (its node's connection to it
    put in the route after the relay's, whatever reply address it names, none included) and
    the sender naming no reply address of its own get the smaller room; the relay's own channel
    and a sender a relay names on an accepted connection are judged as before."""
    made = _connection(True, "192.0.2.8:4000")
    tagged = _connection(False, "198.51.100.9:5000").address
    own = (made.address, tagged, _REPLY)
    assert not behind_other_end(made, own, made.origin(own))
    for route in ((made.address, tagged, _AT_B, _REPLY), (made.address, tagged, _AT_B)):
        assert behind_other_end(made, route, made.origin(route))
    assert behind_other_end(made, (made.address, tagged), made.origin((made.address, tagged)))
    relays_own = (made.address, _REPLY)
    assert not behind_other_end(made, relays_own, str(made.address))
    accepted = _connection(False, "192.0.2.7:5000")
    forwarded = (accepted.address, tagged, _REPLY)  # a member behind a node that connected
    assert behind_other_end(accepted, forwarded, accepted.origin(forwarded))


def test_a_refused_forwarded_opening_spends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """73c refuted 3: a party behind a node refused for the part kept for the node's own
    spends nothing of the network's budget either: the node's neighbours on its network keep
    theirs (as a source's own refusal spent nothing: review 57c)."""
    monkeypatch.setattr(opening_rates, "asyncio", _Clock)
    rates = OpeningRates(rate=1, burst=4)
    for _ in range(forwarded_room(4)):
        assert rates.take("tcp 192.0.2.7", "tcp 192.0.2.0/24", forwarded=True)
    for _ in range(10):
        assert not rates.take("tcp 192.0.2.7", "tcp 192.0.2.0/24", forwarded=True)
    neighbour = [rates.take("tcp 192.0.2.9", "tcp 192.0.2.0/24") for _ in range(4)]
    assert neighbour == [True, True, False, False]  # the network's 4 less the members' 2


def test_a_relayed_senders_room_comes_back_when_the_connection_resets() -> None:
    """73c refuted 4: the members behind b, reached through the relay, fill their room at a
    and leave their handshakes in progress; a's connection to the relay resets: a counts
    nothing left for b's key (no channel nor handshake), so no room is lost for good."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        limits = ChannelLimits(max_half_open_per_source=_LIMIT)
        a = await net.relayed(hub, "a", limits=limits)
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        assert await _fill(a, behind, answer=False) == forwarded_room(_LIMIT)
        (connection,) = a.transport.connections()
        await connection.close()  # (the node's transport tells its channels: as it does)
        a.manager.connection_lost(connection.address)
        assert not a.manager.ends
        assert not a.manager._per_source
        assert not a.manager._half_open
        assert not a.manager._networks

    run(test)
