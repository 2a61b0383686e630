"""The secure channel against unauthenticated input (anyone on the path can send bytes to a
channel end): junk never changes state or closes a channel, in any state; the state machine
and its AWAITING_ACCEPT state; reassembly bounded per channel and per peer, expired by timer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.channels import (
    T,
    World,
    closed,
    dropped,
    frames_of,
    make_world,
    packet,
    pump,
)
from troth.channel import (
    Accepted,
    ChannelSettings,
    ChannelState,
    Closed,
    DropReason,
    Established,
    Event,
    GivenUp,
    ReassemblyBudget,
    Received,
    SecureChannel,
)
from troth.channel.payloads import FRAGMENT, Kind
from troth.channel.state import TRANSITIONS, Step, next_state
from troth.errors import ChannelError, ChannelFailure

F = ChannelFailure
S = ChannelState


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def open_pair(world: World, settings: ChannelSettings | None = None) -> tuple[SecureChannel, ...]:
    a, b = world.initiator(settings), world.responder(settings)
    pump(a, b)
    assert a.state is b.state is S.OPEN
    return a, b


def state_of(channel: SecureChannel) -> tuple[ChannelState, bytes, int]:
    """What an unauthenticated frame must not change (state, keys' transcript, nonces seen)."""
    return channel.state, channel.handshake_hash, sum(channel.drops.values())


# -- the state machine ---------------------------------------------------------------------------


def test_every_pair_outside_the_table_is_a_protocol_violation() -> None:
    for state in ChannelState:
        for step in Step:
            following = TRANSITIONS.get((state, step))
            if following is not None:
                assert next_state(state, step) is following
                continue
            with pytest.raises(ChannelError) as caught:
                next_state(state, step)
            assert caught.value.reason is F.PROTOCOL
    assert all(next_state(s, Step.CLOSE) is S.CLOSED for s in ChannelState if s is not S.CLOSED)


def test_the_initiator_awaits_accept_between_message_3_and_accepted(world: World) -> None:
    a, b = world.initiator(), world.responder()
    assert (a.state, b.state) == (S.AWAITING_MESSAGE_2, S.AWAITING_MESSAGE_1)
    for packet_1 in a.outgoing():
        b.receive(packet_1, T)
    assert b.state is S.AWAITING_MESSAGE_3
    events = [e for p in b.outgoing() for e in a.receive(p, T)]
    assert [type(e) for e in events] == [Established]  # the responder is verified ...
    assert a.state is S.AWAITING_ACCEPT  # ... but has not admitted us yet
    assert a.handshaking
    with pytest.raises(ChannelError) as caught:
        a.send(b"too early")
    assert caught.value.reason is F.PROTOCOL
    events = [e for p in a.outgoing() for e in b.receive(p, T)]
    assert [type(e) for e in events] == [Established]
    assert (a.state, b.state) == (S.AWAITING_ACCEPT, S.OPEN)
    assert [e for p in b.outgoing() for e in a.receive(p, T)] == [Accepted()]
    assert (a.state, a.handshaking) == (S.OPEN, False)


def test_data_before_accepted_is_a_protocol_violation(world: World) -> None:
    a, b = world.initiator(), world.responder()
    pump_until = [(a, b), (b, a), (a, b)]  # messages 1-3
    for writer, reader in pump_until:
        for p in writer.outgoing():
            reader.receive(p, T)
    held_accept = b.outgoing()  # ACCEPTED, held back
    b.send(b"data first")
    assert closed([e for p in b.outgoing() for e in a.receive(p, T)]).reason is F.PROTOCOL
    assert held_accept


def test_accepted_twice_is_a_protocol_violation(world: World) -> None:
    a, b = open_pair(world)
    b._emit([(Kind.ACCEPTED, ())])  # a misbehaving (authenticated) responder
    assert closed([e for p in b.outgoing() for e in a.receive(p, T)]).reason is F.PROTOCOL


def test_close_while_awaiting_accept_reaches_the_initiator(world: World) -> None:
    a, b = world.initiator(), world.responder()
    for writer, reader in [(a, b), (b, a), (a, b)]:
        for p in writer.outgoing():
            reader.receive(p, T)
    b.outgoing()  # ACCEPTED lost
    b.close(F.NORMAL, "going away")
    events = [e for p in b.outgoing() for e in a.receive(p, T)]
    assert events == [Closed(F.NORMAL, "going away", by_peer=True)]
    assert a.state is S.CLOSED


# -- unauthenticated bytes -----------------------------------------------------------------------


JUNK = st.one_of(
    st.binary(max_size=200),
    st.binary(min_size=1, max_size=120).map(lambda f: packet(f)),
    st.binary(min_size=8, max_size=120).map(lambda f: packet(b"\x02" + f)),
    st.binary(min_size=33, max_size=120).map(lambda f: packet(b"\x01" + f)),  # not a message 1
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JUNK, min_size=1, max_size=5), st.sampled_from(["1", "2", "3", "accept", "open"]))
def test_junk_never_changes_state_in_any_state(world: World, junk: list[bytes], where: str) -> None:
    a, b = world.initiator(), world.responder()
    steps = {"1": 0, "2": 1, "3": 2, "accept": 3, "open": 4}[where]
    sides = [(a, b), (b, a), (a, b), (b, a)]
    for writer, reader in sides[:steps]:
        for p in writer.outgoing():
            reader.receive(p, T)
    target = {"1": b, "2": a, "3": b, "accept": a, "open": b}[where]
    before = state_of(target)
    count = 0
    for data in junk:
        events = target.receive(data, T)
        assert events
        assert len(dropped(events)) == len(events)  # every frame of it: dropped, and counted
        assert not target.outgoing()
        count += len(events)
    assert state_of(target) == (*before[:2], before[2] + count)
    if where != "1":  # the genuine handshake (or traffic) still goes through
        pump(a, b)
        assert a.state is b.state is S.OPEN
        a.send(b"still here")
        assert pump(a, b)[1] == [Received(b"still here")]


def test_a_41_byte_junk_frame_to_an_open_channel_is_dropped(world: World) -> None:
    a, b = open_pair(world)
    junk = packet(b"\x02" + bytes(range(38)))  # 41 bytes: length, type, nonce 0, "ciphertext"
    assert len(junk) == 41
    for _ in range(100):
        assert dropped(b.receive(junk, T)) == [DropReason.UNDECRYPTABLE]
    assert b.drops[DropReason.UNDECRYPTABLE] == 100
    a.send(b"the next real message")
    assert pump(a, b)[1] == [Received(b"the next real message")]


def test_a_forged_transport_frame_far_ahead_does_not_move_the_window(world: World) -> None:
    a, b = open_pair(world)
    ahead = packet(b"\x02" + (2**40).to_bytes(8, "big") + bytes(32))
    assert dropped(b.receive(ahead, T)) == [DropReason.UNDECRYPTABLE]
    a.send(b"nonce 1")  # would be "too old" had the forged nonce slid the window
    assert pump(a, b)[1] == [Received(b"nonce 1")]


def test_a_message_2_from_another_handshake_is_dropped(world: World) -> None:
    """An answer built for someone else's message 1 does not decrypt: the real one still
    completes the handshake."""
    a, b, other = world.initiator(), world.responder(), world.initiator()
    for p in other.outgoing():
        b.receive(p, T)
    stray = b.outgoing()
    b = world.responder()
    for p in a.outgoing():
        b.receive(p, T)
    assert dropped([e for p in stray for e in a.receive(p, T)]) == [DropReason.UNDECRYPTABLE]
    assert a.state is S.AWAITING_MESSAGE_2
    pump(a, b)
    assert a.state is b.state is S.OPEN


# -- reassembly ----------------------------------------------------------------------------------


def send_partial(
    sender: SecureChannel, receiver: SecureChannel, size: int, keep: int
) -> list[Event]:
    """Deliver the first `keep` fragments of a `size`-byte message (a packet each): the
    receiver's events."""
    sender.send(bytes(size))
    fragments = frames_of(sender.outgoing())[:keep]
    return [e for f in fragments for e in receiver.receive(packet(f), T)]


def test_expire_releases_an_incomplete_message_without_another_fragment(world: World) -> None:
    a, b = open_pair(world, ChannelSettings(reassembly_timeout=30))
    assert send_partial(a, b, 200_000, 2) == []
    assert b.reassembling > 0
    assert b.next_expiry() == T + 30
    assert b.expire(T + 29) == 0
    assert b.expire(T + 30) > 0
    assert b.reassembling == 0
    assert b.next_expiry() is None
    assert b.state is S.OPEN
    a.send(bytes(200_000))  # a complete one still goes through
    assert pump(a, b)[1] == [Received(bytes(200_000))]


def test_reassembly_is_bounded_per_channel(world: World) -> None:
    a, b = open_pair(world, ChannelSettings(max_message=300_000))
    for n in range(4):  # each holds 2 frames of ~131 KB: the third passes 300 KB + a frame,
        given_up = [GivenUp(1)] if n >= 2 else []  # and the oldest is given up for it
        assert send_partial(a, b, 300_000, 2) == given_up
    assert b.state is S.OPEN  # (its sender's first hop lost their tails: review 49f)
    assert b.reassembling <= 300_000 + 65_535
    assert b._reassembler.given_up == 2


def test_reassembly_is_bounded_per_peer_across_channels(world: World) -> None:
    budget = ReassemblyBudget(200_000)  # each fragment holds its ~64 KiB decrypted frame
    a1, b1 = open_pair(world)
    a2, b2 = open_pair(world)
    b1.share_reassembly_budget(budget)
    b2.share_reassembly_budget(budget)
    assert send_partial(a1, b1, 400_000, 2) == []
    held = budget.held
    assert 0 < held <= 200_000
    assert closed(send_partial(a2, b2, 400_000, 2)).reason is F.TOO_LARGE
    assert budget.held == held  # the refused channel released what it held
    assert b1.state is S.OPEN
    b1.expire(T + 10_000)
    assert budget.held == 0


def test_fragments_held_before_the_budget_is_shared_are_charged_to_it(world: World) -> None:
    a, b = open_pair(world)
    send_partial(a, b, 200_000, 1)
    held = b.reassembling
    budget = ReassemblyBudget(10 * held)
    assert b.share_reassembly_budget(budget) is None
    assert budget.held == held
    with pytest.raises(ValueError, match="already shares"):
        b.share_reassembly_budget(ReassemblyBudget(10 * held))


def test_fragments_held_past_the_budget_when_it_is_shared_close_the_channel(
    world: World,
) -> None:
    a, b = open_pair(world)
    send_partial(a, b, 200_000, 1)
    budget = ReassemblyBudget(10)
    event = b.share_reassembly_budget(budget)
    assert event is not None
    assert event.reason is F.TOO_LARGE
    assert b.state is S.CLOSED
    assert budget.held == 0


def test_small_non_final_fragments_are_refused(world: World) -> None:
    a, b = open_pair(world)
    a._emit([(Kind.FRAGMENT, (FRAGMENT.pack(7, 100_000, 0), b"x"))])
    assert closed([e for p in a.outgoing() for e in b.receive(p, T)]).reason is F.PROTOCOL
