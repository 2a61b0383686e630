"""Review 68g (channel: Noise conformance, the resumed path): attacks that did not work, each
a test that fails if the defence it names breaks.

troth has no resumption ticket: a reconnection (`channel.establish.tcp.resumed` in the bench)
is a full Noise XX handshake with fresh ephemeral keys, and only the verification of the
claim bytes is kept (troth.channel.claims.ClaimCache). So "replaying a ticket" is replaying a
recorded handshake or a kept claim; both are tried here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.channels import T, closed, dropped, make_world, packet, pump
from tests.support.feeds import pages, superseded
from tests.support.parties import verified_feed
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, SecureChannel, verify_peer
from troth.channel.claims import ClaimCache
from troth.channel.events import DropReason, Established, Received
from troth.channel.noise import MAX_NONCE, TAGLEN, CipherState, HandshakeState
from troth.channel.verification import HandshakeClaim
from troth.credentials import RevocationKind, verify_pages
from troth.crypto import AeadAlgorithm, KeyType
from troth.crypto.private import load_private_key
from troth.errors import ChannelError, ChannelFailure
from troth.identity import rotate_identity

AES = AeadAlgorithm.AES_256_GCM
VECTORS: list[dict[str, Any]] = [
    {**vector, "file": path.name}
    for path in sorted((Path(__file__).parent / "vectors" / "noise").glob("*.json"))
    for vector in json.loads(path.read_text())["vectors"]
]


def _handshake(vector: dict[str, Any], initiator: bool) -> HandshakeState:
    side = "init" if initiator else "resp"
    return HandshakeState(
        vector["protocol_name"],
        initiator=initiator,
        prologue=bytes.fromhex(vector[f"{side}_prologue"]),
        static=load_private_key(KeyType.X25519, bytes.fromhex(vector[f"{side}_static"])),
        ephemeral=load_private_key(KeyType.X25519, bytes.fromhex(vector[f"{side}_ephemeral"])),
    )


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['file']}:{v['protocol_name']}")
def test_the_vectors_transport_through_the_channels_explicit_nonce_path(
    vector: dict[str, Any],
) -> None:
    """tests/test_noise_vectors.py checks `encrypt_with_ad`; the channel seals with
    `encrypt_at_into` and opens with `decrypt_at` (explicit nonces, §12 byte order per
    cipher): the same published ciphertexts, for every vector of both files."""
    initiator, responder = _handshake(vector, True), _handshake(vector, False)
    for index, message in enumerate(vector["messages"][:3]):
        writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        reader.read_message(writer.write_message(bytes.fromhex(message["payload"])))
    i_send, i_recv = initiator.split()
    r_recv, r_send = responder.split()
    sent = [0, 0]  # messages each way so far: the explicit nonce
    for index, message in enumerate(vector["messages"][3:]):
        payload = bytes.fromhex(message["payload"])
        sender, receiver = (r_send, i_recv) if index % 2 == 0 else (i_send, r_recv)
        nonce = sent[index % 2]
        sent[index % 2] += 1
        out = bytearray(len(payload) + TAGLEN)
        sender.encrypt_at_into(nonce, b"", payload, memoryview(out))
        assert out.hex() == message["ciphertext"]
        assert receiver.decrypt_at(nonce, b"", bytes(out)) == payload
        with pytest.raises(ChannelError):  # another nonce does not open it
            receiver.decrypt_at(nonce + 1, b"", bytes(out))


def test_the_reserved_nonce_is_refused_and_n_is_kept() -> None:
    """§5.1: n = 2^64-1 never encrypts or decrypts, and a refusal leaves n as it was."""
    sender, receiver = CipherState(AES, bytes(32)), CipherState(AES, bytes(32))
    sender.n = receiver.n = MAX_NONCE - 1
    sealed = sender.encrypt_with_ad(b"", b"last")
    assert receiver.decrypt_with_ad(b"", sealed) == b"last"
    for state in (sender, receiver):
        with pytest.raises(ChannelError) as refused:
            (state.encrypt_with_ad if state is sender else state.decrypt_with_ad)(b"", sealed)
        assert refused.value.reason is ChannelFailure.NONCE_EXHAUSTED
        assert state.n == MAX_NONCE


def test_the_last_nonce_before_the_reserved_one_still_sends() -> None:
    world = make_world()
    alice, bob = world.initiator(), world.responder()
    pump(alice, bob)
    alice._next_nonce = MAX_NONCE - 1
    alice._send_epoch = alice._next_nonce // alice.settings.rekey_interval
    alice.send(b"x" * 5)  # nonce 2^64-2: allowed
    assert alice._next_nonce == MAX_NONCE
    with pytest.raises(ChannelError) as refused:
        alice.send(b"y" * 5)
    assert refused.value.reason is ChannelFailure.NONCE_EXHAUSTED


def test_a_frame_naming_the_reserved_nonce_is_dropped_and_the_channel_stays_open() -> None:
    world = make_world()
    alice, bob = world.initiator(), world.responder()
    pump(alice, bob)
    frame = bytes((2,)) + MAX_NONCE.to_bytes(8, "big") + bytes(5 + TAGLEN)
    events = bob.receive(packet(frame), T + 1)
    assert dropped(events) == [DropReason.UNDECRYPTABLE]
    assert bob.state.value == "open"


def test_an_empty_message_arrives_as_an_empty_message() -> None:
    world = make_world()
    alice, bob = world.initiator(), world.responder()
    pump(alice, bob)
    alice.send(b"")
    alice.send(b"", prefix=b"")
    _, seen = pump(alice, bob)
    assert [bytes(e.payload) for e in seen if isinstance(e, Received)] == [b"", b""]


def test_a_recorded_handshake_replayed_to_a_new_responder_never_establishes() -> None:
    """A stolen recording of a whole session (the initiator's messages 1 and 3 and its data)
    replayed later: the responder answers message 1 with a new ephemeral key, so the recorded
    message 3 does not authenticate (dropped, the handshake goes on), nothing is accepted."""
    world = make_world()
    alice, bob = world.initiator(), world.responder()
    recorded: list[bytes] = []
    for _ in range(10):
        to_bob, to_alice = alice.outgoing(), bob.outgoing()
        if not to_bob and not to_alice:
            break
        recorded += [bytes(p) for p in to_bob]
        for p in to_bob:
            bob.receive(p, T + 1)
        for p in to_alice:
            alice.receive(p, T + 1)
    alice.send(b"secret" * 20)
    recorded += [bytes(p) for p in alice.outgoing()]
    again = world.responder()
    events = [e for p in recorded for e in again.receive(p, T + 2)]
    assert not any(isinstance(e, (Established, Received)) for e in events)
    assert DropReason.UNDECRYPTABLE in dropped(events)
    assert again.handshaking
    assert again.peer is None


def test_a_reconnection_with_kept_claims_has_fresh_keys() -> None:
    """The reconnection keeps the claim verifications only: its handshake hash and transport
    keys are new (fresh ephemerals), so a frame of the first channel opens nothing in the
    second, and the first channel's ephemeral keys are dropped once it is open."""
    world = make_world()
    cache = ClaimCache()
    trust = ChannelTrust(policy=AnyAuthenticatedIdentity(), claims=cache)
    first = (world.initiator(trust=trust), world.responder(trust=trust))
    pump(*first)
    assert len(cache) == 2  # both claims kept
    assert first[0]._handshake is None
    second = (world.initiator(trust=trust), world.responder(trust=trust))
    pump(*second)
    assert second[0].handshake_hash != first[0].handshake_hash
    first[0].send(b"old keys" * 20)
    events = [e for p in first[0].outgoing() for e in second[1].receive(p, T + 2)]
    assert dropped(events) == [DropReason.UNDECRYPTABLE]


def test_a_kept_claim_of_a_revoked_identity_is_refused() -> None:
    world = make_world()
    feeds = {world.authority.identifier: world.feed}
    trust = ChannelTrust(
        policy=AnyAuthenticatedIdentity(), feeds=lambda: feeds, claims=ClaimCache()
    )
    verify_peer(trust, world.alice.claim(), (), T)  # kept
    feeds[world.authority.identifier] = verified_feed(
        world.authority, [(RevocationKind.IDENTITY, world.alice.identifier.digest)], now=T + 1
    )
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, world.alice.claim(), (), T + 1)
    assert refused.value.reason is ChannelFailure.REVOKED


def test_a_kept_claim_from_before_a_compromise_rotation_is_refused() -> None:
    """A stolen backup's history (kept from a handshake before the rotation) once the
    authority publishes that the rotated history supersedes it."""
    world = make_world()
    party = world.alice.party
    feeds = {world.authority.identifier: world.feed}
    trust = ChannelTrust(
        policy=AnyAuthenticatedIdentity(), feeds=lambda: feeds, claims=ClaimCache()
    )
    verify_peer(trust, world.alice.claim(), (), T)  # kept
    rotated = rotate_identity(
        world.vault, party.identity, party.primary, party.next_primary, now=T + 1, valid_for=10**7
    ).identity
    entry = superseded(
        0,
        rotated.identifier,
        world.authority.identifier,
        len(rotated.changes),
        rotated.current_change_hash,
        at=T + 1,
    )
    feeds[world.authority.identifier] = verify_pages(
        pages(world.authority, [entry], now=T + 1, per_page=1),
        authority=world.authority.identifier,
        now=T + 1,
    )
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, world.alice.claim(), (), T + 1)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "superseded" in refused.value.detail


def test_claims_that_fail_leave_nothing_kept() -> None:
    """A failed verification keeps no result: 300 forged attestations beside a real history
    leave the cache empty (memory per source stays what the bounded caches allow)."""
    world = make_world()
    cache = ClaimCache()
    trust = ChannelTrust(policy=AnyAuthenticatedIdentity(), claims=cache)
    claim = world.alice.claim()
    for n in range(300):
        forged = bytearray(claim.attestation)
        forged[-1 - n % 64] ^= 1 + n // 64
        with pytest.raises(ChannelError):
            verify_peer(
                trust, HandshakeClaim(claim.history, bytes(forged), claim.static_key), (), T
            )
    assert len(cache) == 0


def test_a_refused_initiator_closes_the_responder_typed() -> None:
    """A failed verification at message 3 is one typed refusal: a Closed event with the close
    code, never an exception out of `receive` (here: the initiator's claim is revoked)."""
    world = make_world()
    feed = verified_feed(
        world.authority, [(RevocationKind.IDENTITY, world.alice.identifier.digest)], now=T
    )
    trust = ChannelTrust(
        policy=AnyAuthenticatedIdentity(), feeds=lambda: {world.authority.identifier: feed}
    )
    alice = world.initiator(trust=ChannelTrust(policy=AnyAuthenticatedIdentity()))
    bob: SecureChannel = world.responder(trust=trust)
    seen_alice, seen_bob = pump(alice, bob)
    assert closed(seen_bob).reason is ChannelFailure.REVOKED
    assert closed(seen_alice).by_peer


def test_a_reconnection_after_the_peers_credential_was_revoked_is_refused() -> None:
    """The reconnection keeps the verified claims and chain byte checks: the feed's revocation
    of the credential still refuses it, and closes the channel it already has (re-check)."""
    world = make_world()
    trust = world.trust()
    trust = ChannelTrust(
        policy=trust.policy,
        verifier=trust.verifier,
        feeds=lambda: {world.authority.identifier: world.feed},
        claims=ClaimCache(),
    )
    me = world.alice.me((world.credential(world.alice),))  # the same chain both times
    anyone = ChannelTrust(policy=AnyAuthenticatedIdentity())
    alice, bob = SecureChannel.initiate(me=me, trust=anyone), world.responder(trust=trust)
    pump(alice, bob)
    assert bob.peer is not None
    link = bob.peer.credentials[0].links[0].hash
    world.feed = verified_feed(world.authority, [(RevocationKind.CREDENTIAL, link)], now=T + 2)
    assert closed(bob.check_peer(T + 2)).reason is ChannelFailure.REVOKED
    again, bob_again = SecureChannel.initiate(me=me, trust=anyone), world.responder(trust=trust)
    _, seen = pump(again, bob_again, T + 2)
    assert closed(seen).reason is ChannelFailure.REVOKED
