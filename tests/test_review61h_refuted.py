"""Review 61h: attacks on the secure channel core, routing and relays that did NOT work (each a
real attempt, in process, sans-IO: the channel cores take bytes and `now`). Each test fails if
the defence it exercises breaks (docs/protocols.md, "Secure channel", "Routing", "Relays")."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.channels import T, World, closed, dropped, make_world, pump
from tests.support.nodes import MemNet, run_memnet
from tests.support.parties import ChannelParty, make_channel_party
from tests.support.relayed import FAST
from tests.test_review45e_relay import HUB_AT_R1, _ticket
from tests.test_review50f_noroute import ECHO_B, behind_two_relays
from troth.channel import (
    ChannelIdentity,
    ChannelSettings,
    ChannelState,
    CipherState,
    DropReason,
    Event,
    GivenUp,
    Received,
    RouteProblem,
    SecureChannel,
    route_error,
    split_packet,
)
from troth.channel.claims import ClaimCache
from troth.channel.payloads import FRAGMENT, Kind
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.errors import ChannelError, ChannelFailure, DecodeError, RoutingError
from troth.identity import attest_purpose_key
from troth.identity.create import rotate_identity
from troth.identity.known import KnownHistories
from troth.node.access import AccessRequest, ChannelAdmission, Decision
from troth.node.services.relay import RelayService
from troth.routing import Address, RoutedMessage, parse_route
from troth.routing.notice import no_route, parse_no_route
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose
from troth.vault.ephemeral import VaultDhKey

F = ChannelFailure
S = ChannelState


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(scope="module")
def mallory(world: World) -> ChannelParty:
    """A third member of the same authority (a valid credential of its own)."""
    return make_channel_party(world.vault, now=T)


def _deliver(
    packets: Sequence[bytes | bytearray], to: SecureChannel, now: int = T + 1
) -> list[Event]:
    return [e for p in packets for e in to.receive(p, now)]


def _state(channel: SecureChannel) -> ChannelState:
    """The channel's state now (read again after it was asserted once)."""
    return channel.state


def _open(
    a: SecureChannel, b: SecureChannel
) -> tuple[list[Event], list[Event]]:  # (the handshake's events)
    seen = pump(a, b)
    assert a.state is b.state is S.OPEN
    return seen


def _impostor(world: World, victim: ChannelParty, thief: ChannelParty) -> ChannelIdentity:
    """What a party on the path shows as `victim`: the victim's history, attestation and
    credential bytes (copied off an earlier handshake), with its own Noise static key."""
    return ChannelIdentity(
        victim.party.identity.history,
        VaultDhKey(thief.vault, thief.channel_key),
        victim.attestation,
        (world.credential(victim),),
    )


# -- claims bound to the handshake ----------------------------------------------------------------


def test_a_relay_splicing_two_handshakes_with_the_victims_claims_is_refused(
    world: World, mallory: ChannelParty
) -> None:
    """Mallory sits between alice and bob (two handshakes) and shows each the other's claims
    (history, attestation, credentials, copied off earlier handshakes) under its own static
    key. Both sides refuse it, also when the claims were verified and kept before (the claim
    cache keys on the bytes alone: the attested key is still compared with the handshake's)."""
    cache = ClaimCache()
    trust = dataclasses.replace(world.trust(), claims=cache)
    _open(world.initiator(trust=trust), world.responder(trust=trust))  # bob's and alice's claims
    assert len(cache) == 2  # kept

    # toward alice: mallory answers her message 1 as "bob"
    alice = world.initiator(trust=trust)
    fake_bob = SecureChannel(initiator=False, me=_impostor(world, world.bob, mallory), trust=trust)
    seen_alice, _ = pump(alice, fake_bob)
    assert closed(seen_alice).reason is F.PEER_INVALID
    assert "not the Noise static key" in closed(seen_alice).detail
    assert alice.peer is None

    # toward bob: mallory opens as "alice"
    fake_alice = SecureChannel.initiate(me=_impostor(world, world.alice, mallory), trust=trust)
    bob = world.responder(trust=trust)
    _seen_mallory, seen_bob = pump(fake_alice, bob)
    assert closed(seen_bob).reason is F.PEER_INVALID
    assert bob.peer is None
    assert not any(isinstance(e, Received) for e in seen_bob)


def test_message_3_replayed_from_another_channel_is_dropped(world: World) -> None:
    """Alice's message 3 of one channel, sent by someone else into another handshake with bob
    (after its own message 1): it does not authenticate under that handshake's keys; bob drops
    it and keeps waiting, and the genuine message 3 then opens the channel."""
    a1, b1 = world.initiator(), world.responder()
    b1.receive(a1.outgoing()[0], T)
    a1.receive(b1.outgoing()[0], T)
    message_3 = a1.outgoing()[0]

    a2, b2 = world.initiator(), world.responder()
    b2.receive(a2.outgoing()[0], T)
    a2.receive(b2.outgoing()[0], T)
    assert dropped(b2.receive(message_3, T)) == [DropReason.UNDECRYPTABLE]
    assert b2.state is S.AWAITING_MESSAGE_3
    assert b2.peer is None
    _deliver(a2.outgoing(), b2)
    assert _state(b2) is S.OPEN


def test_a_reflected_handshake_opens_nothing(world: World) -> None:
    """A party on the path sends alice's own message 1 back to her, and bob's message 2 back
    to bob: both are dropped unauthenticated, neither state moves, and the genuine exchange
    still opens the channel."""
    a, b = world.initiator(), world.responder()
    message_1 = a.outgoing()[0]
    assert dropped(a.receive(message_1, T))
    assert a.state is S.AWAITING_MESSAGE_2
    b.receive(message_1, T)
    message_2 = b.outgoing()[0]
    assert dropped(b.receive(message_2, T))
    assert b.state is S.AWAITING_MESSAGE_3
    a.receive(message_2, T)
    assert dropped(a.receive(message_2, T))  # a second copy: the initiator has moved on
    _deliver(a.outgoing(), b)
    assert _state(b) is S.OPEN
    assert not b.drops[DropReason.UNDECRYPTABLE] > 1


class _AllowAll:
    def decide(self, request: AccessRequest) -> Decision:
        return Decision(True)


def test_expect_holds_whoever_a_relay_forwards_to(world: World, mallory: ChannelParty) -> None:
    """A sender pins bob (--expect). Whatever a relay, or two, forward its message 1 to —
    another member with a valid credential, or the sender's own responder (a reflection) —
    the channel core refuses the one that answers, naming both identities."""
    expect = ChannelAdmission(_AllowAll(), clock=lambda: T, expect=world.bob.identifier)
    pinned = dataclasses.replace(world.trust(), policy=expect)
    answers = {
        "another member": mallory.me((world.credential(mallory),)),
        "the sender itself": world.alice.me((world.credential(world.alice),)),
    }
    for who, me in answers.items():
        alice = world.initiator(trust=pinned)
        other = SecureChannel(initiator=False, me=me, trust=world.trust())
        seen_alice, _seen_other = pump(alice, other)
        refusal = closed(seen_alice)
        assert refusal.reason is F.PEER_NOT_ALLOWED, who
        assert str(world.bob.identifier) in refusal.detail, who
        assert alice.peer is None, who
        assert other.state is not S.OPEN, who
    alice, bob = world.initiator(trust=pinned), world.responder()
    _open(alice, bob)
    assert alice.peer is not None
    assert alice.peer.identifier == world.bob.identifier


# -- transport nonces, epochs and replays ---------------------------------------------------------

SMALL_EPOCHS = ChannelSettings(replay_window=64, rekey_interval=64)


def _sealed(sender: SecureChannel, count: int) -> list[bytes]:
    """`count` one-frame messages, each sealed alone (one packet each)."""
    packets: list[bytes] = []
    for i in range(count):
        sender.send(b"m%05d" % i + bytes(40))
        packets += [bytes(p) for p in sender.outgoing()]
    return packets


def _nonce_of(packet: bytes) -> int:
    (frame,) = split_packet(packet)
    return int.from_bytes(frame[1:9], "big")


def _with_nonce(packet: bytes, nonce: int) -> bytes:
    return packet[:3] + nonce.to_bytes(8, "big") + packet[11:]


def test_frames_replayed_after_a_rekey_are_dropped(world: World) -> None:
    """Epochs of 64 messages: after bob read into epoch 3, every frame of alice's replayed (the
    previous epoch's inside the window, older ones below it) is dropped, and a frame moved
    to another epoch's nonce (its key differs) does not authenticate; none of this moves the
    window or the keys: alice's next frame is read."""
    a, b = world.initiator(SMALL_EPOCHS), world.responder(SMALL_EPOCHS)
    _open(a, b)
    packets = _sealed(a, 3 * 64 + 10)
    assert [_nonce_of(p) for p in packets] == list(range(3 * 64 + 10))
    assert all(isinstance(e, Received) for e in _deliver(packets, b))
    late = packets[150]  # epoch 2, inside the window (the top is 201)
    old = packets[5]  # epoch 0, below it
    assert dropped(b.receive(late, T + 1)) == [DropReason.DUPLICATE]
    assert dropped(b.receive(old, T + 1)) == [DropReason.REPLAY]
    shifted = _with_nonce(late, _nonce_of(late) + 64)  # epoch 3's nonce, not yet seen
    assert dropped(b.receive(shifted, T + 1)) == [DropReason.UNDECRYPTABLE]
    ahead = _with_nonce(packets[-1], 5 * 64 + 1)  # an epoch ahead, a nonce never used
    assert dropped(b.receive(ahead, T + 1)) == [DropReason.UNDECRYPTABLE]
    (event,) = _deliver(_sealed(a, 1), b)
    assert isinstance(event, Received)
    assert bytes(event.payload).startswith(b"m00000")


def test_forged_nonces_near_2_64_move_nothing(world: World) -> None:
    """Frames naming nonces at the top of the 64-bit space (the reserved 2^64-1 included)
    are dropped and leave the replay window where it was: a genuine frame after them is read
    (were the window slid to 2^64-1 first, every genuine nonce would be below it)."""
    a, b = world.initiator(), world.responder()
    _open(a, b)
    (genuine,) = _sealed(a, 1)
    for nonce in (2**64 - 1, 2**64 - 2, 2**63, (1 << 16) * 4 - 1):
        assert dropped(b.receive(_with_nonce(genuine, nonce), T + 1)) == [
            DropReason.UNDECRYPTABLE
        ], nonce
    assert isinstance(b.receive(genuine, T + 1)[0], Received)
    assert b.state is S.OPEN


# -- fragments reordered and spliced on the way ----------------------------------------------------


def test_fragments_of_two_messages_reordered_on_the_way_reassemble_each_whole(
    world: World,
) -> None:
    """A relay reorders the frames of two fragmented messages (interleaved, the last first):
    each is put back together as sent, never one message's chunk in the other (the message
    id, total and offset ride inside the AEAD)."""
    a, b = world.initiator(), world.responder()
    _open(a, b)
    one, two = os.urandom(150_000), os.urandom(140_000)
    a.send(one)
    a.send(two)
    frames = [bytes(f) for p in a.outgoing() for f in split_packet(p)]
    assert len(frames) >= 5
    reordered = frames[::-1]
    reordered[0], reordered[2] = reordered[2], reordered[0]
    got = [
        bytes(e.payload)
        for f in reordered
        for e in b.receive(len(f).to_bytes(2, "big") + f, T + 1)
        if isinstance(e, Received)
    ]
    assert sorted(got, key=len) == [two, one]


def test_a_peer_splicing_fragments_is_closed_before_delivering(world: World) -> None:
    """The authenticated peer itself lies: a fragment that reuses a message id with another
    total, one at an offset already held, one past its total, overlapping ones summing to the
    total. Each closes the channel (its own violation) and no message is delivered."""
    chunk = bytes(5000)
    lies = {
        "another total": [(7, 10_000, 0, chunk), (7, 12_000, 5000, chunk)],
        "the same offset twice": [(7, 12_000, 0, chunk), (7, 12_000, 0, chunk)],
        "past its total": [(7, 9_000, 5000, chunk)],
        "overlapping": [(7, 9_000, 0, chunk), (7, 9_000, 4000, chunk)],
    }
    for lie, fragments in lies.items():
        a, b = world.initiator(), world.responder()
        _open(a, b)
        for message_id, total, offset, part in fragments:
            a._emit([(Kind.FRAGMENT, (FRAGMENT.pack(message_id, total, offset), part))])
        events = _deliver(a.outgoing(), b)
        assert closed(events).reason in (F.PROTOCOL, F.TOO_LARGE), lie
        assert not any(isinstance(e, Received | GivenUp) for e in events), lie
        assert b.reassembling == 0, lie


def test_junk_between_a_messages_fragments_does_not_cut_it(world: World) -> None:
    """Frames forged by the path between the fragments of a message are dropped; the message
    is still put together from the genuine ones."""
    a, b = world.initiator(), world.responder()
    _open(a, b)
    message = os.urandom(200_000)
    a.send(message)
    frames = [bytes(f) for p in a.outgoing() for f in split_packet(p)]
    got: list[bytes] = []
    for frame in frames:
        forged = frame[:9] + bytes(len(frame) - 9)
        assert dropped(b.receive(len(forged).to_bytes(2, "big") + forged, T + 1))
        got += [
            bytes(e.payload)
            for e in b.receive(len(frame).to_bytes(2, "big") + frame, T + 1)
            if isinstance(e, Received)
        ]
    assert got == [message]
    assert b.state is S.OPEN


# -- routing: addresses, hop lists, notices --------------------------------------------------------


def test_relay_names_are_exact_no_folding_into_another_owners() -> None:
    """Names are compared as written: `B`, `b` and a Cyrillic look-alike are never one
    address (the last is no address at all), so a relay name cannot be claimed through a
    confusable or another case of it."""
    assert Address("relay", "bob") != Address("relay", "Bob")
    for confusable in ("b\u043eb", "bob\u200b", "bob ", "b/ob", "\uff42\uff4f\uff42", ""):
        with pytest.raises(RoutingError):
            Address("relay", confusable)
    with pytest.raises(RoutingError):
        parse_route("/relay/b\u043eb")


def test_hop_lists_past_the_limit_or_looping_are_bounded() -> None:
    """A header with 17 onward hops is refused; a return route at 16 cannot grow at the next
    hop (a loop, each hop prepending itself, ends there); a route that names the same relay
    over and over is consumed one hop per step, never grown by the router."""
    hop = [["relay", "a"]]
    from troth.encoding import cbor

    header = cbor.encode([hop * 17, []])
    with pytest.raises(DecodeError):
        RoutedMessage.decode(len(header).to_bytes(2, "big") + header)
    full = RoutedMessage((Address("relay", "a"),), (Address("worker", "w"),) * 16, b"x")
    with pytest.raises(RoutingError):
        RoutedMessage.arrived(full.encode(), Address("worker", "c"))
    with pytest.raises(RoutingError):
        full.stepped_in(Address("worker", "c"))
    looping = RoutedMessage((Address("relay", "a"),) * 16, (), b"x")
    steps = 0
    while looping.onward:
        looping, steps = looping.stepped(), steps + 1
    assert steps == 16


def test_a_notice_naming_anything_but_node_local_addresses_is_malformed() -> None:
    """A no-route notice can only name `/worker/...` addresses (a way and a sender): one
    naming a relay, a service or a TCP address to tear a route down is refused as malformed."""
    worker = (Address("worker", "w1"),)
    parse_no_route(no_route(worker, worker))  # the well-formed one
    for other in (Address("relay", "b"), Address("service", "echo"), Address("tcp", "h:1")):
        for way, sender in ((other,), worker), (worker, (other,)), ((*worker, other), worker):
            with pytest.raises(DecodeError):
                parse_no_route(no_route(way, sender))


# -- a peer whose history rotated mid-channel ----------------------------------------------------


def test_a_peer_that_rotated_mid_channel_loses_its_old_channel_and_its_old_claims(
    tmp_path: Path,
) -> None:
    """Bob opens a channel with alice, then rotates (a new primary key; his channel key was
    attested under the old change). Once alice stores the rotated history: her re-check of
    the open channel closes it, and a new handshake showing the old history and attestation
    (a stolen backup), kept in the claim cache from before, is refused; bob's own new claim,
    attested under his new change, opens a channel."""
    world = make_world()
    known = KnownHistories(
        SqliteIdentityStore(SqliteDatabase(tmp_path / "node.db")), FixedClock(T), cache_seconds=0
    )
    cache = ClaimCache()
    trust = dataclasses.replace(
        world.trust(),
        known=known.check,
        observe=lambda peer: known.observe(peer.identity),
        claims=cache,
    )
    alice, bob = world.initiator(trust=trust), world.responder()
    _open(alice, bob)
    assert len(cache) == 1

    party = world.bob.party
    held = rotate_identity(
        world.vault, party.identity, party.primary, party.next_primary, now=T + 5, valid_for=10**8
    )
    rotated = held.identity
    known.observe(rotated)  # alice learns of it (another channel, a feed)
    assert closed(alice.check_peer(T + 10)).reason is F.PEER_INVALID

    stolen = world.responder()  # the old history and attestation, the claim kept
    seen_alice, _ = pump(world.initiator(trust=trust), stolen, now=T + 10)
    assert closed(seen_alice).reason is F.PEER_INVALID

    vault = world.vault
    handle = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    attestation = attest_purpose_key(
        vault,
        held.primary,
        held.identity,
        KeyPurpose.SECURE_CHANNEL,
        vault.public_key(handle),
        now=T + 6,
        expires_at=T + 3600,
    )
    me = ChannelIdentity(
        rotated.history, VaultDhKey(vault, handle), attestation, (world.credential(world.bob),)
    )
    alice = world.initiator(trust=trust)
    _open(alice, SecureChannel(initiator=False, me=me, trust=world.trust()))
    assert alice.peer is not None
    assert alice.peer.identity.history == rotated.history


def test_a_route_error_into_an_open_channel_is_junk(world: World) -> None:
    """A route error ("relay not found") is taken only while a handshake waits for message 2:
    sent by the path into an open channel it is dropped, the channel stays open."""
    a, b = world.initiator(), world.responder()
    _open(a, b)
    error = route_error(RouteProblem.RELAY_NOT_FOUND)
    for side in (a, b):
        assert dropped(side.receive(error, T + 1)), side
        assert side.state is S.OPEN


def test_a_transport_frame_reflected_to_its_sender_or_spliced_into_another_channel(
    world: World,
) -> None:
    """Alice's frame sent back to her (each direction has its own key: Split), or into
    another channel between the same two parties (other keys): dropped, never read."""
    a, b = world.initiator(), world.responder()
    _open(a, b)
    a2, b2 = world.initiator(), world.responder()
    _open(a2, b2)
    *_, frame = _sealed(a, 3)  # (nonce 2: above what alice's own window saw, bob's ACCEPTED)
    assert dropped(a.receive(frame, T + 1)) == [DropReason.UNDECRYPTABLE]
    assert dropped(b2.receive(frame, T + 1)) == [DropReason.UNDECRYPTABLE]
    assert isinstance(b.receive(frame, T + 1)[0], Received)
    assert a.state is b2.state is S.OPEN


def test_a_credential_of_another_identity_in_message_3_refuses_the_channel(
    world: World, mallory: ChannelParty
) -> None:
    """Mallory shows, beside her own history and key, bob's credential chain (copied off a
    handshake): it is a chain of a trusted root that does not verify for her as presenter, so
    the channel is refused, not opened with the chain silently dropped (which a policy that
    admits strangers would then let in)."""
    me = mallory.me((world.credential(world.bob),))
    bob = world.responder()
    _, seen_bob = pump(SecureChannel.initiate(me=me, trust=world.trust()), bob)
    assert closed(seen_bob).reason is F.CREDENTIAL_INVALID
    assert bob.peer is None


def test_expect_holds_through_two_relays(tmp_path: Path) -> None:
    """The chain a -> hub -> r1 -> b of review 45e, and c behind r1 too: the hub forwards
    `/relay/b` to c's way through r1 instead. a, pinning b, is refused over that way of two
    relays; unpinned, it reaches c."""

    async def test(net: MemNet) -> None:
        a, _, b = await behind_two_relays(net)
        c = await net.node("c", backoff=FAST)
        await c.enroll(_ticket(net, HUB_AT_R1, **{"troth.relay": "c"}), "c")
        await c.create_relay("c", HUB_AT_R1)
        hub = net.hub
        assert hub is not None
        relays = hub.host.services["relay"]
        assert isinstance(relays, RelayService)
        assert relays.relays["c"].beyond  # c's way from the hub goes on past r1's connection
        relays.relays["b"] = relays.relays["c"]
        for end in list(a.channels.ends.values()):
            await end.close()
        with pytest.raises(ChannelError) as refused:
            await a.send_message(ECHO_B, "b?", expect=net.identifier(b))
        assert refused.value.reason is F.PEER_NOT_ALLOWED
        assert str(net.identifier(c)) in str(refused.value)
        assert await a.send_message(ECHO_B, "c!") == "c!"

    run_memnet(test, tmp_path / "home", budget=60)


def test_forged_frames_naming_epochs_ahead_cost_one_derivation_each_epoch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames forged with nonces of the epochs ahead (each REKEY is an AEAD call): 200 of them
    over the 4 epochs a receiver derives ahead cost 4 derivations, not one a frame; and the
    genuine frames of those epochs are then read with the keys derived."""
    a, b = world.initiator(SMALL_EPOCHS), world.responder(SMALL_EPOCHS)
    _open(a, b)
    packets = _sealed(a, 4 * 64 + 1)  # into epoch 4
    derived = 0
    original = CipherState.rekeyed

    def counted(self: CipherState) -> CipherState:
        nonlocal derived
        derived += 1
        return original(self)

    monkeypatch.setattr(CipherState, "rekeyed", counted)
    for n in range(200):
        forged = _with_nonce(packets[0], 64 + n % 4 * 64 + n // 4)
        assert dropped(b.receive(forged, T + 1)) == [DropReason.UNDECRYPTABLE]
    assert derived == 4
    assert isinstance(b.receive(packets[-1], T + 1)[0], Received)  # epoch 4, its key derived
    assert derived == 4
