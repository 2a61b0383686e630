"""Review 63d, the channel core and relays: attacks tried and found to hold (each test fails if
the defence it names breaks).

- A hostile link (hypothesis): the packets of an open channel, whose messages straddle a rekey
  (one-frame, batched and fragmented ones), delivered in any order, duplicated, truncated,
  or fed again after the channel closed: `receive` never raises, never closes the channel on
  what did not authenticate, and never delivers a message twice or one that was not sent; a
  link that loses and cuts nothing delivers every message once, in any order within the
  replay window, across the rekey.
- Someone else's credentials mid-channel: an in-band refresh presenting the peer's own
  credential chain as the sender's closes the channel (`credential_invalid`).
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.channels import T, World, make_world, pump
from troth.channel import ChannelSettings, ChannelState, Closed, Received, SecureChannel
from troth.errors import ChannelFailure

WINDOW = 64
SETTINGS = ChannelSettings(replay_window=WINDOW, rekey_interval=WINDOW)
_WORLD: list[World] = []


def _world() -> World:
    if not _WORLD:
        _WORLD.append(make_world())
    return _WORLD[0]


def _near_a_rekey(lead: int) -> tuple[SecureChannel, SecureChannel]:
    """An open pair whose initiator sent (and its peer read) `lead` one-frame messages: its
    next frames are that close to the end of the first epoch."""
    world = _world()
    a, b = world.initiator(SETTINGS), world.responder(SETTINGS)
    pump(a, b)
    assert a.state is b.state is ChannelState.OPEN
    for n in range(lead):
        a.send(b"%d" % n)  # under MIN_BATCH_MESSAGE: a DATA frame each, sealed at once
    for packet in a.outgoing():
        b.receive(packet, T + 1)
    return a, b


_SIZES = st.sampled_from([1, 40, 200, 70_000])
_LINK = st.lists(
    st.tuples(st.integers(0, 10**6), st.sampled_from(["whole", "twice", "cut", "lost"])),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lead=st.integers(WINDOW - 12, WINDOW - 1),
    sizes=st.lists(_SIZES, min_size=1, max_size=8),
    link=_LINK,
    order=st.randoms(use_true_random=False),
)
def test_a_hostile_link_across_a_rekey_never_breaks_the_channel(
    lead: int, sizes: list[int], link: list[tuple[int, str]], order: random.Random
) -> None:
    a, b = _near_a_rekey(lead)
    sent = {bytes([n % 251]) * size + b"#%d" % n for n, size in enumerate(sizes)}
    for message in sorted(sent):
        a.send(message)
    packets = [bytes(p) for p in a.outgoing()]
    wire: list[bytes] = []
    lossless = True
    for i, packet in enumerate(packets):
        cut, what = link[i % len(link)]
        if what == "lost":
            lossless = False
        elif what == "cut":
            lossless = False
            wire.append(packet[: cut % max(1, len(packet))])
        else:
            wire += [packet] * (2 if what == "twice" else 1)
    order.shuffle(wire)
    got: list[bytes] = []
    for packet in wire:
        for event in b.receive(packet, T + 2):
            assert not isinstance(event, Closed), event
            if isinstance(event, Received):
                got.append(bytes(event.payload))
    assert b.state is ChannelState.OPEN
    assert len(got) == len(set(got))  # none twice
    assert set(got) <= sent  # none made up
    if lossless:
        assert set(got) == sent
    b.close()
    for packet in wire:  # after the close: read nothing, raise nothing
        assert not [e for e in b.receive(packet, T + 3) if isinstance(e, Received)]


def test_a_refresh_with_another_identitys_credential_closes_the_channel() -> None:
    """Mid-channel, alice presents bob's credential as her own (a chain is public: bob showed
    it in his message 2): the chain's subject is not the presenter, so the refresh is refused
    (`credential_invalid`) and the channel closes, never admitting alice on bob's grant."""
    world = _world()
    a, b = world.initiator(), world.responder()
    pump(a, b)
    assert b.peer is not None
    assert b.peer.identifier == world.alice.identifier
    a.send_credentials((world.credential(world.bob),))
    events = [e for p in a.outgoing() for e in b.receive(p, T + 2)]
    (event,) = events
    assert isinstance(event, Closed)
    assert event.reason is ChannelFailure.CREDENTIAL_INVALID
    assert b.state is ChannelState.CLOSED
