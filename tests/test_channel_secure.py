"""The secure channel, both ends in memory: handshake binding, every failure path, transport
over a lossy, reordering, duplicating link with a fake clock, rekeying, fragmentation,
padding, in-band credential refresh, continuous re-checks. (Unauthenticated input, the state
machine and reassembly bounds: tests/test_channel_hostile.py.)"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.channels import (
    MEMBER,
    T,
    World,
    closed,
    dropped,
    make_world,
    packet,
    pump,
)
from tests.support.parties import make_channel_party, make_party, verified_feed
from troth.channel import (
    PACKET_LIMIT,
    Accepted,
    AllowIdentifiers,
    AnyAuthenticatedIdentity,
    ChannelSettings,
    ChannelState,
    ChannelTrust,
    Closed,
    DenyAll,
    Dropped,
    DropReason,
    Established,
    Event,
    Received,
    ReplayWindow,
    SecureChannel,
    Verdict,
    VerifiedPeer,
    split_packet,
)
from troth.channel.reassembly import IN_PLACE_ROOM
from troth.credentials import (
    Attributes,
    CredentialChain,
    delegate,
    issue_credential,
)
from troth.errors import ChannelError, ChannelFailure, IdentityError, IdentityFailure
from troth.identity import Identifier, VerifiedIdentity, rotate_identity

F = ChannelFailure


@pytest.fixture
def world() -> World:
    return make_world()


def pair(
    world: World,
    *,
    a_trust: ChannelTrust | None = None,
    b_trust: ChannelTrust | None = None,
    a_creds: tuple[bytes, ...] | None = None,
    b_creds: tuple[bytes, ...] | None = None,
    settings: ChannelSettings | None = None,
) -> tuple[SecureChannel, SecureChannel, list[Event], list[Event]]:
    a_creds = (world.credential(world.alice),) if a_creds is None else a_creds
    b_creds = (world.credential(world.bob),) if b_creds is None else b_creds
    a = SecureChannel.initiate(
        me=world.alice.me(a_creds), trust=a_trust or world.trust(), settings=settings
    )
    b = SecureChannel(
        initiator=False, me=world.bob.me(b_creds), trust=b_trust or world.trust(), settings=settings
    )
    events_a, events_b = pump(a, b)
    return a, b, events_a, events_b


# -- handshake -----------------------------------------------------------------------------------


def test_handshake_binds_identities_and_credentials(world: World) -> None:
    a, b, events_a, events_b = pair(world)
    established_a = [e for e in events_a if isinstance(e, Established)]
    established_b = [e for e in events_b if isinstance(e, Established)]
    assert established_a[0].peer.identifier == world.bob.identifier
    assert established_b[0].peer.identifier == world.alice.identifier
    assert established_b[0].peer.credentials[0].attributes == MEMBER
    assert a.handshake_hash == b.handshake_hash != b""
    assert a.state is b.state is ChannelState.OPEN
    assert Accepted() in events_a  # only the responder's word opens it for the initiator
    a.send(b"hello bob")
    b.send(b"hello alice")
    events_a, events_b = pump(a, b)
    assert events_b == [Received(b"hello bob")]
    assert events_a == [Received(b"hello alice")]


@pytest.mark.parametrize("cipher", ["AESGCM", "ChaChaPoly"])
def test_both_cipher_suites(world: World, cipher: str) -> None:
    a, b, _, _ = pair(world, settings=ChannelSettings(cipher=cipher))
    a.send(b"x" * 1000)
    assert pump(a, b)[1] == [Received(b"x" * 1000)]


def test_wrong_key_attestation(world: World) -> None:
    """The history is alice's, but the attested key is another identity's channel key."""
    me = world.alice.me((world.credential(world.alice),))
    forged = type(me)(me.history, me.static, world.bob.attestation, me.credentials)
    a = SecureChannel.initiate(me=forged, trust=world.trust())
    events_a, events_b = pump(a, world.responder())
    assert closed(events_b).reason is F.PEER_INVALID
    assert closed(events_a) == Closed(F.PEER_INVALID, closed(events_b).detail, by_peer=True)


def test_attested_key_must_be_the_noise_key(world: World) -> None:
    me = world.alice.me((world.credential(world.alice),))
    other = make_channel_party(
        world.vault, now=T
    )  # alice's history + attestation, other's Noise key
    forged = type(me)(me.history, other.me().static, me.attestation, me.credentials)
    a = SecureChannel.initiate(me=forged, trust=world.trust())
    b = SecureChannel(
        initiator=False, me=world.bob.me((world.credential(world.bob),)), trust=world.trust()
    )
    _, events_b = pump(a, b)
    assert closed(events_b).reason is F.PEER_INVALID
    assert "not the Noise static key" in closed(events_b).detail


def test_invalid_and_forked_history(world: World) -> None:
    me = world.alice.me((world.credential(world.alice),))
    bad = bytearray(me.history)
    bad[-3] ^= 1
    a = SecureChannel.initiate(
        me=type(me)(bytes(bad), me.static, me.attestation, me.credentials), trust=world.trust()
    )
    b = SecureChannel(
        initiator=False, me=world.bob.me((world.credential(world.bob),)), trust=world.trust()
    )
    assert closed(pump(a, b)[1]).reason is F.PEER_INVALID

    def known(identity: VerifiedIdentity) -> None:
        raise IdentityError(IdentityFailure.FORK, "stored copy differs")

    trust = world.trust()
    forked = ChannelTrust(trust.policy, trust.verifier, trust.feeds, known)
    _, _, _, events_b = pair(world, b_trust=forked)
    assert closed(events_b).reason is F.PEER_INVALID


def test_a_peer_is_stored_only_once_admitted(world: World) -> None:
    """Store-or-extend on channels: the admitted peer's history is observed; a refused peer
    (no credential from a trusted authority) is judged but never stored."""
    observed: list[VerifiedPeer] = []
    trust = world.trust()
    storing = ChannelTrust(trust.policy, trust.verifier, trust.feeds, None, observed.append)
    pair(world, b_trust=storing)
    assert [p.identifier for p in observed] == [world.alice.identifier]
    observed.clear()
    _, _, _, events_b = pair(world, a_creds=(), b_trust=storing)
    assert closed(events_b).reason is F.PEER_NOT_ALLOWED
    assert observed == []


def test_untrusted_expired_and_revoked_credentials(world: World) -> None:
    stranger_authority = make_party(world.vault, now=T)
    foreign = CredentialChain(
        (
            issue_credential(
                stranger_authority.signer,
                subject=world.alice.identifier,
                attributes=MEMBER,
                now=T,
                ttl=3600,
                depth=1,
            ),
        ),
        (stranger_authority.identity.history,),
    ).encode()
    # a chain of an authority this side does not trust is dropped: it grants nothing (so a
    # members-only policy refuses the peer), and said so; it does not refuse the channel
    _, _, _, events_b = pair(world, a_creds=(foreign,))
    assert closed(events_b).reason is F.PEER_NOT_ALLOWED
    _, _, _, events_b = pair(
        world, a_creds=(foreign,), b_trust=world.trust(AnyAuthenticatedIdentity())
    )
    peer = next(e.peer for e in events_b if isinstance(e, Established))
    assert peer.credentials == ()
    assert peer.dropped == (
        f"a credential from {stranger_authority.identifier}: issuer is not a trust anchor "
        "(ignored)",
    )

    short = world.credential(world.alice, ttl=1)
    a = SecureChannel.initiate(me=world.alice.me((short,)), trust=world.trust())
    b = SecureChannel(
        initiator=False, me=world.bob.me((world.credential(world.bob),)), trust=world.trust()
    )
    _, events_b = pump(a, b, now=T + 1000)
    assert closed(events_b).reason is F.CREDENTIAL_INVALID

    credential = world.credential(world.alice)
    credential_id = CredentialChain.decode(credential).credentials[0].hash
    world.feed = verified_feed(world.authority, [(1, credential_id)], now=T)
    _, _, _, events_b = pair(world, a_creds=(credential,))
    assert closed(events_b).reason is F.REVOKED


def test_peer_not_allowed(world: World) -> None:
    _, _, events_a, events_b = pair(world, b_trust=world.trust(DenyAll()))
    assert closed(events_b).reason is F.PEER_NOT_ALLOWED
    # the initiator (open after message 2) learns why, authenticated, from the responder
    assert closed(events_a) == Closed(F.PEER_NOT_ALLOWED, str(world.alice.identifier), by_peer=True)
    _, _, _, events_b = pair(world, a_creds=())  # no credentials: not a member
    assert closed(events_b).reason is F.PEER_NOT_ALLOWED
    allow = world.trust(AllowIdentifiers(frozenset({world.alice.identifier})))
    _, _, _, events_b = pair(world, a_creds=(), b_trust=allow)
    assert isinstance(events_b[0], Established)
    anyone = world.trust(AnyAuthenticatedIdentity())
    _, _, _, events_b = pair(world, a_creds=(), b_trust=anyone)
    assert isinstance(events_b[0], Established)


def test_responder_rejects_initiator_after_message_2(world: World) -> None:
    """Message 2 reaches an unauthenticated initiator (XX): the responder still rejects at 3."""
    _, b, _, _events_b = pair(world, b_trust=world.trust(DenyAll()))
    assert b.state is ChannelState.CLOSED


def test_tampered_message_1_stalls_the_handshake_without_closing(world: World) -> None:
    """Message 1 is not authenticated by itself: a changed `e` makes the responder answer a
    key the initiator does not hold, so the initiator cannot decrypt message 2 and drops it.
    Neither side closes or establishes (the node's handshake timeout ends it)."""
    a, b = world.initiator(), world.responder()
    (first,) = a.outgoing()
    flipped = bytearray(first)
    flipped[10] ^= 0x01
    assert b.receive(bytes(flipped), T + 1) == []
    assert b.state is ChannelState.AWAITING_MESSAGE_3
    events_a, events_b = pump(a, b)
    assert dropped(events_a) == [DropReason.UNDECRYPTABLE]
    assert not events_b
    assert a.state is ChannelState.AWAITING_MESSAGE_2


@pytest.mark.parametrize("message", [2, 3])
def test_tampered_handshake_message_is_dropped_and_the_genuine_one_completes(
    world: World, message: int
) -> None:
    """A flipped byte in message 2 or 3 does not authenticate: it is dropped, the handshake
    state is kept, and the genuine message still completes the handshake."""
    a, b = world.initiator(), world.responder()
    sides = [(a, b), (b, a), (a, b)]  # (writer, reader) of messages 1, 2, 3
    for index, (writer, reader) in enumerate(sides, start=1):
        (frame,) = writer.outgoing()
        before = reader.state
        if index == message:
            for at in (5, 40, len(frame) - 1):  # the key, the encrypted static key, the tag
                flipped = bytearray(frame)
                flipped[at] ^= 0x01
                events = reader.receive(bytes(flipped), T + 1)
                assert dropped(events) == [DropReason.UNDECRYPTABLE]
                assert reader.state is before
            assert reader.drops[DropReason.UNDECRYPTABLE] == 3
        assert not dropped(reader.receive(frame, T + 1))
    pump(a, b)
    assert a.state is b.state is ChannelState.OPEN
    assert a.handshake_hash == b.handshake_hash


def test_garbage_and_out_of_order_frames_are_dropped(world: World) -> None:
    cases = [
        (packet(b"\x02" + bytes(40)), DropReason.UNEXPECTED),  # transport frame in a handshake
        (packet(b"\x01" + bytes(5)), DropReason.UNDECRYPTABLE),  # a handshake message too short
        (packet(b"\x01" + bytes(33)), DropReason.UNDECRYPTABLE),  # message 1 with a payload
        (packet(b"\x07" + bytes(5)), DropReason.UNEXPECTED),  # an unknown frame type
        (packet(b""), DropReason.MALFORMED),  # an empty frame
        (b"\x00\x10abc", DropReason.MALFORMED),  # a frame longer than its packet
        (b"\x00", DropReason.MALFORMED),  # a truncated length
        (b"", DropReason.MALFORMED),  # an empty packet
        (bytes(140_000), DropReason.MALFORMED),  # a packet over the transport limit
    ]
    for data, reason in cases:
        b = world.responder()
        assert dropped(b.receive(data, T)) == [reason], data[:8]
        assert b.state is ChannelState.AWAITING_MESSAGE_1
        assert b.drops == {reason: 1}


# -- transport -----------------------------------------------------------------------------------


def test_fragmentation_and_padding(world: World) -> None:
    a, b, _, _ = pair(world, settings=ChannelSettings(padding=256))
    for size in (0, 1, 65_000, 65_505, 65_506, 200_000, 1_000_000):
        payload = random.Random(size).randbytes(size)
        a.send(payload)
        packets = a.outgoing()
        frames = [f for p in packets for f in split_packet(p)]
        assert all(len(p) <= PACKET_LIMIT for p in packets)
        assert all(len(f) <= 65535 for f in frames)
        assert all((len(f) - 25) % 256 == 0 for f in frames)  # padded plaintexts
        events = [e for p in packets for e in b.receive(p, T)]
        assert events == [Received(payload)], size
    with pytest.raises(ChannelError) as caught:
        a.send(bytes(16 * 1024 * 1024 + 1))
    assert caught.value.reason is F.TOO_LARGE


@pytest.mark.parametrize("padding", [0, 256])
def test_a_prefix_is_sent_as_if_joined_to_the_payload(world: World, padding: int) -> None:
    """`send(payload, prefix)` (a routed header before a large payload, not copied together
    first) puts the same frames on the wire as `send(prefix + payload)`: same frame sizes, and
    the peer receives the one message."""
    a, b, _, _ = pair(world, settings=ChannelSettings(padding=padding))
    rng = random.Random(padding)
    for head in (0, 1, 61, 8194, 70_000):
        for size in (0, 30, 65_400, 65_468 - head, 65_469 - head, 65_536, 200_001):
            prefix, payload = rng.randbytes(head), rng.randbytes(max(0, size))
            shapes = []
            for message in ((payload, prefix), (prefix + payload, b"")):
                a.send(memoryview(message[0]), message[1])
                packets = a.outgoing()
                shapes.append([len(f) for p in packets for f in split_packet(p)])
                events = [e for p in packets for e in b.receive(p, T)]
                assert events == [Received(prefix + payload)], (head, size)
            assert shapes[0] == shapes[1], (head, size)


def test_a_64_kib_message_is_put_together_in_its_first_frame(world: World) -> None:
    """A message of one full fragment and a small one (64 KiB behind a routed header) is
    completed in the bytearray its first frame was decrypted into (reassembly.py, "In
    place", padded too: a full fragment has no padding); one whose rest does not fit the
    room, or whose first fragment comes last, is copied together as before; each arrives
    whole."""
    rng = random.Random(64)
    for padding, size, reverse in [
        (0, 65_536, False),
        (0, 65_536, True),
        (0, 65_468 + IN_PLACE_ROOM + 1, False),
        (0, 200_000, False),
        (256, 65_536, False),
    ]:
        a, b, _, _ = pair(world, settings=ChannelSettings(padding=padding))
        prefix, payload = rng.randbytes(60), rng.randbytes(size)
        a.send(payload, prefix)
        frames = [bytes(f) for p in a.outgoing() for f in split_packet(p)]
        if reverse:
            frames.reverse()
        events = [e for f in frames for e in b.receive(packet(f), T)]
        assert events == [Received(prefix + payload)]
        assert isinstance(events[0], Received)
        message = events[0].payload
        in_place = isinstance(message, memoryview) and type(message.obj) is bytearray
        # (not when the first fragment is the last to come: its frame is still being read)
        assert in_place is (size == 65_536 and not reverse), (padding, size)
        assert b.reassembling == 0


def test_rekey_epochs(world: World) -> None:
    a, b, _, _ = pair(world, settings=ChannelSettings(replay_window=64, rekey_interval=64))
    for n in range(300):
        a.send(n.to_bytes(2, "big"))
    frames = a.outgoing()
    # deliver with local reordering inside the window, across epoch boundaries
    rng = random.Random(7)
    for start in range(0, len(frames), 16):
        block = frames[start : start + 16]
        rng.shuffle(block)
        frames[start : start + 16] = block
    received = [
        bytes(e.payload) for f in frames for e in b.receive(f, T) if isinstance(e, Received)
    ]
    assert sorted(received) == [n.to_bytes(2, "big") for n in range(300)]


class Link:
    """A lossy, reordering, duplicating link driven by a seeded RNG and a fake clock."""

    def __init__(self, seed: int, loss: float, duplicate: float, max_delay: int) -> None:
        self.rng = random.Random(seed)
        self.loss, self.duplicate, self.max_delay = loss, duplicate, max_delay
        self.in_flight: list[tuple[int, int, bytes | bytearray]] = []
        self.clock = T
        self.counter = 0

    def send(self, frame: bytes | bytearray) -> None:
        if self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            self.counter += 1
            self.in_flight.append(
                (self.clock + self.rng.randint(0, self.max_delay), self.counter, frame)
            )

    def deliver_due(self) -> list[bytes | bytearray]:
        self.clock += 1
        due = sorted(f for f in self.in_flight if f[0] <= self.clock)
        self.in_flight = [f for f in self.in_flight if f[0] > self.clock]
        return [frame for _, _, frame in due]


@pytest.mark.parametrize("seed", range(5))
def test_lossy_reordering_duplicating_link(world: World, seed: int) -> None:
    a, b, _, _ = pair(world)
    link = Link(seed, loss=0.1, duplicate=0.1, max_delay=20)
    sent: list[bytes] = []
    received: list[bytes] = []
    dropped = 0
    for step in range(400):
        payload = f"message {step}".encode()
        a.send(payload)
        sent.append(payload)
        for frame in a.outgoing():
            link.send(frame)
        for frame in link.deliver_due():
            for event in b.receive(frame, link.clock):
                if isinstance(event, Received):
                    received.append(bytes(event.payload))
                elif isinstance(event, Dropped):
                    dropped += 1
                else:
                    pytest.fail(f"unexpected {event}")
    for _ in range(30):
        for frame in link.deliver_due():
            received += [
                bytes(e.payload) for e in b.receive(frame, link.clock) if isinstance(e, Received)
            ]
    assert len(received) == len(set(received))  # nothing delivered twice
    assert set(received) <= set(sent)  # nothing invented
    assert len(received) >= 300  # ~10% lost
    assert dropped > 0  # the duplicates were seen and dropped
    assert b.state is ChannelState.OPEN


def test_a_frame_that_does_not_decrypt_is_dropped_not_fatal(world: World) -> None:
    a, b, _, _ = pair(world)
    a.send(b"secret")
    frame = bytearray(a.outgoing()[0])
    frame[-1] ^= 1
    assert dropped(b.receive(bytes(frame), T)) == [DropReason.UNDECRYPTABLE]
    assert b.state is ChannelState.OPEN
    a.send(b"next")
    assert pump(a, b)[1] == [Received(b"next")]
    b.close()
    with pytest.raises(ChannelError) as caught:
        b.send(b"after close")
    assert caught.value.reason is F.PROTOCOL


def test_replay_inside_the_window_and_below_it_is_dropped(world: World) -> None:
    a, b, _, _ = pair(world, settings=ChannelSettings(replay_window=64, rekey_interval=64))
    a.send(b"first")
    first = a.outgoing()[0]
    assert b.receive(first, T) == [Received(b"first")]
    assert dropped(b.receive(first, T)) == [DropReason.DUPLICATE]
    for n in range(64):  # 64 frames (messages taken together would be one BATCH frame)
        a.send(b"%d" % n)
        for frame in a.outgoing():
            b.receive(frame, T)
    assert dropped(b.receive(first, T)) == [DropReason.REPLAY]  # the keys of its epoch are gone
    assert b.state is ChannelState.OPEN


def test_close_reaches_the_peer(world: World) -> None:
    a, b, _, _ = pair(world)
    a.close(F.NORMAL, "bye")
    events: list[Event] = [e for f in a.outgoing() for e in b.receive(f, T)]
    assert events == [Closed(F.NORMAL, "bye", by_peer=True)]


def test_in_band_credential_refresh_and_revocation(world: World) -> None:
    a, b, _, _ = pair(world)
    fresh = world.credential(
        world.alice, attributes=MEMBER.merged(Attributes({"agents.tier": "gold"}))
    )
    a.send_credentials((fresh,))
    events = [e for f in a.outgoing() for e in b.receive(f, T)]
    assert isinstance(events[0], Established)
    assert events[0].peer.credentials[0].attributes["agents.tier"] == "gold"
    # the refreshed credential is revoked: the next re-check closes the channel
    fresh_id = CredentialChain.decode(fresh).credentials[0].hash
    world.feed = verified_feed(world.authority, [(1, fresh_id)], now=T + 5)
    assert closed(b.check_peer(T + 6)).reason is F.REVOKED
    assert b.state is ChannelState.CLOSED


def test_rotation_of_the_peer_after_the_handshake(world: World) -> None:
    """A channel key attested under an older change is refused once the identity rotates."""
    party = world.alice.party
    _, rotated, _ = rotate_identity(
        world.vault,
        party.identity,
        party.primary,
        party.next_primary,
        now=T + 1,
        valid_for=10**8,
    )
    me = world.alice.me((world.credential(world.alice),))
    stale = type(me)(rotated.history, me.static, me.attestation, me.credentials)
    a = SecureChannel.initiate(me=stale, trust=world.trust())
    b = SecureChannel(
        initiator=False, me=world.bob.me((world.credential(world.bob),)), trust=world.trust()
    )
    assert closed(pump(a, b, now=T + 2)[1]).reason is F.PEER_INVALID


# -- the replay window ---------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.lists(st.integers(0, 5000), max_size=300), st.sampled_from([64, 128, 2048]))
def test_window_delivers_exactly_what_it_admits(nonces: list[int], size: int) -> None:
    """Model: accept a nonce iff it was never accepted and is within `size` of the highest
    accepted so far; every replay is dropped."""
    window = ReplayWindow(size)
    accepted: set[int] = set()
    top = -1
    for nonce in nonces:
        verdict = window.check(nonce)
        fresh = nonce not in accepted and nonce > top - size
        assert (verdict is Verdict.NEW) == fresh, (nonce, top)
        if verdict is Verdict.NEW:
            window.accept(nonce)
            accepted.add(nonce)
            top = max(top, nonce)
        elif nonce in accepted:
            assert verdict in (Verdict.DUPLICATE, Verdict.TOO_OLD)


def test_identifiers_are_used_not_names(world: World) -> None:
    assert isinstance(world.alice.identifier, Identifier)


# -- hardening (review findings) ------------------------------------------------------------------


def test_low_order_ephemeral_key_is_dropped(world: World) -> None:
    b = world.responder()
    events = b.receive(packet(b"\x01" + bytes(32)), T)  # e = 0: an all-zero DH result
    assert dropped(events) == [DropReason.UNDECRYPTABLE]
    assert b.state is ChannelState.AWAITING_MESSAGE_1
    assert not b.outgoing()


def test_padding_is_bounded() -> None:
    with pytest.raises(ValueError, match="padding"):
        ChannelSettings(padding=5000)


def test_revoked_identity_without_credentials_is_closed(world: World) -> None:
    _a, b, _, _ = pair(world, a_creds=(), b_trust=world.trust(AnyAuthenticatedIdentity()))
    assert b.state is ChannelState.OPEN
    world.feed = verified_feed(world.authority, [(2, world.alice.identifier.digest)], now=T + 5)
    assert closed(b.check_peer(T + 6)).reason is F.REVOKED
    # and it cannot come back
    _, _b2, _, events_b = pair(world, a_creds=(), b_trust=world.trust(AnyAuthenticatedIdentity()))
    assert closed(events_b).reason is F.REVOKED


def test_credentials_with_caveats_do_not_admit_until_gates_evaluate_them(world: World) -> None:
    root = world.credential(world.alice)
    carol = make_channel_party(world.vault, now=T)
    caveated = delegate(
        world.alice.party.signer,
        CredentialChain.decode(root),
        subject=carol.identifier,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="p",
        caveats=['context.ticket == "9"'],
    ).encode()
    a = SecureChannel.initiate(me=carol.me((caveated,)), trust=world.trust())
    _, events_b = pump(a, world.responder())
    assert closed(events_b).reason is F.PEER_NOT_ALLOWED


def test_a_superseded_history_is_refused_by_a_peer_holding_the_feed(world: World) -> None:
    """The stolen-backup rollback against a stateless peer: the authority's feed says alice's
    newest change is change 1, so her older history `[c0]` (with a channel key attested under
    c0, as a thief with the old key would present it) is refused at the handshake."""
    from tests.support.feeds import pages
    from troth.credentials import RevocationEntry, RevocationKind, Supersession, verify_feed

    party = world.alice.party
    _, rotated, _ = rotate_identity(
        world.vault, party.identity, party.primary, party.next_primary, now=T + 1, valid_for=10**8
    )
    superseded = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        party.identifier.digest,
        world.authority.identifier,
        T + 1,
        "",
        Supersession(2, rotated.current_change_hash),
    )
    (page,) = pages(world.authority, [superseded], now=T + 2, per_page=1)
    world.feed = verify_feed(
        page, authority=world.authority.identifier, now=T + 2, max_staleness=60
    )
    _, _, _, events_b = pair(world)  # alice presents the pre-rotation history [c0]
    refusal = closed(events_b)
    assert refusal.reason is F.PEER_INVALID
    assert "superseded history" in refusal.detail
