"""In-band credential refresh is rate limited per channel (docs/protocols.md, "Credential
refresh"; limits.CHANNEL_REFRESH_BURST, CHANNEL_REFRESH_SECONDS): each CREDENTIALS frame
makes the receiver verify every chain in it (signatures, feeds, admission), so an
authenticated peer sending them back to back would turn a few KB of traffic into
milliseconds of the node's CPU each. Past the burst the channel closes (PROTOCOL)."""

from __future__ import annotations

from tests.support.channels import T, World, closed, make_world
from tests.test_channel_secure import pair
from troth import limits
from troth.channel import Established
from troth.channel.secure import SecureChannel
from troth.errors import ChannelFailure


def _refresh(a: SecureChannel, b: SecureChannel, chain: bytes, now: int) -> list[object]:
    a.send_credentials((chain,))
    return [e for f in a.outgoing() for e in b.receive(f, now)]


def test_a_peer_refreshing_back_to_back_is_closed_after_the_burst() -> None:
    world: World = make_world()
    a, b, _, _ = pair(world)
    chain = world.credential(world.alice)
    verified = 0
    for _ in range(limits.CHANNEL_REFRESH_BURST):
        events = _refresh(a, b, chain, T)
        assert isinstance(events[0], Established)
        verified += 1
    events = _refresh(a, b, chain, T)
    ended = closed(events)  # type: ignore[arg-type]
    assert ended.reason is ChannelFailure.PROTOCOL
    assert "CHANNEL_REFRESH" in ended.detail
    assert verified == limits.CHANNEL_REFRESH_BURST


def test_refreshes_at_the_sustained_rate_are_all_taken() -> None:
    world: World = make_world()
    a, b, _, _ = pair(world)
    chain = world.credential(world.alice)
    now = T
    for _ in range(3 * limits.CHANNEL_REFRESH_BURST):
        events = _refresh(a, b, chain, now)
        assert isinstance(events[0], Established)
        now += limits.CHANNEL_REFRESH_SECONDS  # one refresh regained
