"""Review 65e, the channel protocol core: attacks that did not work. Each test is the attack;
it fails if the defence it names breaks."""

from __future__ import annotations

import dataclasses
import functools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.channels import T, World, closed, dropped, make_world, packet, pump
from troth.channel import (
    ChannelIdentity,
    ChannelSettings,
    ChannelState,
    Closed,
    DropReason,
    Established,
    Received,
    SecureChannel,
    split_packet,
)
from troth.channel.claims import ClaimCache
from troth.channel.payloads import FRAGMENT
from troth.channel.reassembly import Reassembler, ReassemblyBudget
from troth.crypto import KeyType, PublicKey
from troth.errors import ChannelError, ChannelFailure
from troth.vault.ephemeral import DhKey


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


class _TopBitSet:
    """The static key of a party, sent with bit 255 of its encoding set: X25519 ignores that
    bit (RFC 7748 §5), so every DH agrees with the attested key's."""

    def __init__(self, key: DhKey) -> None:
        self._key = key
        data = bytearray(key.public_key.data)
        data[31] |= 0x80
        self.public_key = PublicKey(KeyType.X25519, bytes(data))

    def dh(self, peer: PublicKey) -> bytes:
        return self._key.dh(peer)


def test_a_static_key_in_another_encoding_is_not_the_attested_key(world: World) -> None:
    """Defence: the attested key is compared with the handshake's static key byte for byte
    (verification.py, `_authenticate`), not by what DH makes of it."""
    me = world.alice.me((world.credential(world.alice),))
    twin = ChannelIdentity(me.history, _TopBitSet(me.static), me.attestation, me.credentials)
    a = SecureChannel.initiate(me=twin, trust=world.trust())
    b = world.responder()
    _, seen_b = pump(a, b)
    refusal = closed(seen_b)  # message 3 authenticated (the DH agreed), then refused
    assert refusal.reason is ChannelFailure.PEER_INVALID
    assert "not the Noise static key" in refusal.detail
    assert b.peer is None


def test_message_3_of_another_handshake_is_dropped(world: World) -> None:
    """A recorded message 1 and message 3, replayed to a new responder: message 3 is bound to
    the responder's fresh ephemeral key (Noise "se" and the handshake hash), so it does not
    decrypt, and the new end stays waiting."""
    a, b = world.initiator(), world.responder()
    message_1 = a.outgoing()
    for sent in message_1:
        b.receive(sent, T + 1)
    message_2 = b.outgoing()
    for sent in message_2:
        a.receive(sent, T + 1)
    message_3 = a.outgoing()
    replayed = world.responder()
    replayed.receive(message_1[0], T + 1)
    assert replayed.state is ChannelState.AWAITING_MESSAGE_3
    assert dropped(replayed.receive(message_3[0], T + 1)) == [DropReason.UNDECRYPTABLE]
    assert replayed.state is ChannelState.AWAITING_MESSAGE_3
    assert replayed.peer is None


def test_a_replayed_credential_refresh_is_not_verified_again(world: World) -> None:
    """Defence: the replay window drops a CREDENTIALS frame seen before, before it reaches the
    refresh (and its token bucket)."""
    a, b = world.initiator(), world.responder()
    pump(a, b)
    a.send_credentials((world.credential(world.alice),))
    refresh = a.outgoing()
    assert [type(e) for e in b.receive(refresh[0], T + 2)] == [Established]
    for _ in range(20):  # more than CHANNEL_REFRESH_BURST: none counts
        assert dropped(b.receive(refresh[0], T + 2)) == [DropReason.DUPLICATE]
    assert b.state is ChannelState.OPEN


def test_frames_sealed_before_a_close_are_not_delivered_after_it(world: World) -> None:
    """Reordered so the CLOSE arrives first: the closed end reads nothing more (no half-open
    state that later accepts data), though the frames are authentic and never seen."""
    a, b = world.initiator(), world.responder()
    pump(a, b)
    a.send(b"x" * 40)
    data = a.outgoing()
    a.close()
    bye = a.outgoing()
    assert closed(b.receive(bye[0], T + 2)).by_peer
    assert dropped(b.receive(data[0], T + 2)) == [DropReason.UNEXPECTED]


def test_a_fragment_declaring_a_huge_message_leaves_nothing_held(world: World) -> None:
    """An authenticated peer's fragment of a message over this end's `max_message` closes the
    channel (TOO_LARGE), and what the peer's incomplete messages held is given back to its
    budget (a leak would starve its other channels)."""
    a = world.initiator()
    b = world.responder(ChannelSettings(max_message=100_000))
    pump(a, b)
    budget = ReassemblyBudget(1 << 26)
    assert b.share_reassembly_budget(budget) is None
    a.send(bytes(90_000))  # two fragments: only the first is delivered
    first = split_packet(a.outgoing()[0])[0]
    assert b.receive(packet(first), T + 2) == []
    assert budget.held > 0
    a.send(bytes(200_000))  # within the sender's limit, over the receiver's
    events = [e for p in a.outgoing() for e in b.receive(p, T + 2)]
    assert closed(events).reason is ChannelFailure.TOO_LARGE
    assert budget.held == 0
    assert b.reassembling == 0


_FRAGMENT_OP = st.tuples(
    st.integers(0, 3), st.integers(0, 70_000), st.integers(0, 70_000), st.integers(0, 9_000)
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_FRAGMENT_OP, max_size=30), st.integers(0, 100))
def test_reassembly_gives_back_every_byte_it_charged(
    fragments: list[tuple[int, int, int, int]], step: int
) -> None:
    """Fragments of any ids, totals, offsets and sizes, overlapping and interleaved: what a
    channel holds is what its peer's budget and the node's were charged, at every step, and
    nothing stays charged once the channel closes (a leak would starve the peer's other
    channels, then every peer's)."""
    node = ReassemblyBudget(300_000)
    peer = ReassemblyBudget(200_000, node)
    reassembler = Reassembler(max_message=60_000, timeout=10, max_messages=3, budget=peer)
    now = 0
    for message_id, total, offset, size in fragments:
        body = bytearray(FRAGMENT.pack(message_id, total, offset) + bytes([message_id]) * size)
        now += step
        try:
            message = reassembler.add(memoryview(body), now)
        except ChannelError:
            break
        if message is not None:
            assert len(message) == total
        reassembler.expire(now)
        assert reassembler.held == peer.held == node.held
    reassembler.clear()
    assert reassembler.held == peer.held == node.held == 0


def _mutated(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    choice = rng.randrange(4)
    if choice == 0 and data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif choice == 1:
        del data[rng.randrange(len(data) + 1) :]
    elif choice == 2:
        data += bytes(rng.randrange(1, 40))
    else:
        data *= 2
    return bytes(data)


@functools.cache
def _world() -> World:
    return make_world()


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**32))
def test_a_hostile_link_never_breaks_the_channel_invariants(seed: int) -> None:
    """Both ends through a link that replays any packet seen, mutates them, and duplicates
    them (in order otherwise), handshake and transport alike. `receive` never raises, a
    Closed event always leaves the end closed, and nothing is delivered that was not sent, or
    twice."""
    rng = random.Random(seed)
    world = _world()
    a, b = world.initiator(), world.responder()
    sent: dict[int, list[bytes]] = {id(a): [], id(b): []}
    seen: list[bytes] = []
    for _ in range(12):
        for src, dst in ((a, b), (b, a)):
            if src.state is ChannelState.OPEN and rng.random() < 0.6:
                message = rng.randbytes(rng.choice((40, 70_000)))
                sent[id(src)].append(message)
                src.send(message)
            packets = [bytes(p) for p in src.outgoing()]
            seen += packets
            if seen and rng.random() < 0.5:
                packets.insert(rng.randrange(len(packets) + 1), rng.choice(seen))
            if seen and rng.random() < 0.5:
                packets.insert(rng.randrange(len(packets) + 1), _mutated(rng, rng.choice(seen)))
            for each in packets:
                for event in dst.receive(each, T + 1):
                    if isinstance(event, Closed):
                        assert dst.closed
                    if isinstance(event, Received):
                        sent[id(src)].remove(bytes(event.payload))  # ValueError: not sent


def test_anothers_claim_bytes_with_my_key_are_refused_though_kept(world: World) -> None:
    """Alice's history and attestation bytes are no secret (every responder she reaches reads
    them in message 3): shown by Bob's static key, right after Alice's own handshake put them
    in the claim cache, they are refused. Defence: the attested key is compared with the
    handshake's static key at every handshake, kept claim or not (claims.py)."""
    cache = ClaimCache()
    trust = dataclasses.replace(world.trust(), claims=cache)
    a, b = world.initiator(), world.responder(trust=trust)
    pump(a, b)
    assert b.state is ChannelState.OPEN
    assert len(cache) == 1
    alice = world.alice.me((world.credential(world.alice),))
    bob = world.bob.me()
    thief = ChannelIdentity(alice.history, bob.static, alice.attestation, alice.credentials)
    stolen = SecureChannel.initiate(me=thief, trust=world.trust())
    victim = world.responder(trust=trust)
    refusal = closed(pump(stolen, victim)[1])
    assert refusal.reason is ChannelFailure.PEER_INVALID
    assert "not the Noise static key" in refusal.detail
    assert victim.peer is None


def test_a_chain_issued_to_another_identity_refuses_the_channel(world: World) -> None:
    """Alice shows Bob's credential chain (a trusted root's, valid, not hers): refused, not
    dropped as a chain of an unknown root would be. Defence: the verifier checks the chain's
    subject against the presenter the handshake proved."""
    alice = world.alice.me((world.credential(world.bob),))
    a = SecureChannel.initiate(me=alice, trust=world.trust())
    b = world.responder()
    refusal = closed(pump(a, b)[1])
    assert refusal.reason is ChannelFailure.CREDENTIAL_INVALID
    assert b.peer is None
