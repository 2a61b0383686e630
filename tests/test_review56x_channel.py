"""Review 56x: the secure channel's own layers above Noise, fuzzed (sans-IO, in memory).

channel 1: `send_credentials` with chains that do not fit one transport frame (a refresh of
what a padded channel's handshake carried) raised `struct.error` from the frame's length
field, not the channel layer's ChannelError, after spending a nonce.
channel 2: a responder refusing an initiator whose message 3 auth payload is malformed closed
without the authenticated CLOSE it sends for every other refusal: the initiator, which
considers the handshake done (XX), waited for ACCEPTED until its handshake timeout.
channel 3: `fitting_chains` kept chains up to an auth payload of MAX_AUTH_PAYLOAD (65,439
bytes), for which message 2 is a 65,535-byte Noise message and its frame, with the frame type
byte, 65,536: over the frame's 2-byte length. A responder (a node) whose shown chains add up
to exactly that closed every channel at message 1 (TOO_LARGE, "handshake frame of 65536 bytes").
channel 4: a responder whose own auth payload is over a Noise message (chains not cut by
`fitting_chains`: the library API) counted each genuine message 1 as an unauthenticated junk
frame (`Dropped`, undecryptable) and waited on, answering no one: its own failure was blamed on
the path, where one byte less closed it TOO_LARGE.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T, World, closed, make_world, pump
from troth.channel import ChannelSettings, ChannelState, SecureChannel
from troth.channel.payloads import MAX_AUTH_PAYLOAD, AuthPayload, fitting_chains
from troth.errors import ChannelError, ChannelFailure


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.mark.parametrize("padding", [0, 4096])
def test_a_refresh_over_one_frame_is_a_channel_error(world: World, padding: int) -> None:
    a, b = (
        world.initiator(ChannelSettings(padding=padding)),
        world.responder(ChannelSettings(padding=padding)),
    )
    pump(a, b)
    # what a handshake message carries (the node's own cut, payloads.fitting_chains)
    history, attestation = world.alice.party.identity.history, world.alice.attestation
    chains = fitting_chains(history, attestation, (b"c" * 64_900,))
    assert chains  # a handshake message carries it
    if padding == 0:
        chains = (b"x" * 70_000,)  # one chain over a frame (no fitting cut: the library API)
    nonce = a._next_nonce
    with pytest.raises(ChannelError) as caught:
        a.send_credentials(chains)
    assert caught.value.reason is ChannelFailure.TOO_LARGE
    assert a._next_nonce == nonce
    assert not a.has_outgoing
    a.send(b"still open" * 4)  # and the channel goes on
    _, seen = pump(a, b)
    assert [bytes(e.payload) for e in seen if hasattr(e, "payload")] == [b"still open" * 4]


def test_a_malformed_message_3_payload_is_refused_with_a_close(world: World) -> None:
    # nine chains: AuthPayload.decode refuses the payload (MAX_CHANNEL_CREDENTIALS) before any
    # verification; an initiator of the library API may send that
    me = world.alice.me(tuple(world.credential(world.alice) for _ in range(9)))
    a = SecureChannel.initiate(me=me, trust=world.trust())
    b = world.responder()
    seen_a, seen_b = pump(a, b)
    assert closed(seen_b).reason is ChannelFailure.PEER_INVALID
    told = closed(seen_a)  # the initiator is told, under the handshake's keys
    assert told.by_peer
    assert told.reason is ChannelFailure.PEER_INVALID
    assert a.closed


def test_chains_cut_to_fit_a_handshake_message_fit_its_frame(world: World) -> None:
    history, attestation = world.bob.party.identity.history, world.bob.attestation
    shown = world.credential(world.bob)
    base = len(AuthPayload(history, attestation, (shown,)).encode())
    for slack in range(3):  # a second chain making the payload the largest allowed, or near it
        filler = b"\xa0" * (MAX_AUTH_PAYLOAD - base - 3 - slack)  # (3: its CBOR header)
        chains = fitting_chains(history, attestation, (shown, filler))
        b = SecureChannel(initiator=False, me=world.bob.me(chains), trust=world.trust())
        a = world.initiator()
        for packet in a.outgoing():
            assert b.receive(packet, T + 1) == []  # message 2 written, not a TOO_LARGE close
        assert b.state is ChannelState.AWAITING_MESSAGE_3
        assert all(len(p) <= 2 + 65535 for p in b.outgoing())


def test_a_responder_whose_own_payload_cannot_be_sent_closes_too_large(world: World) -> None:
    me = world.bob.me((world.credential(world.bob), b"\xa0" * 65_500))
    b = SecureChannel(initiator=False, me=me, trust=world.trust())
    a = world.initiator()
    events = [e for packet in a.outgoing() for e in b.receive(packet, T + 1)]
    assert closed(events).reason is ChannelFailure.TOO_LARGE
    assert not b.drops  # a genuine message 1 is not junk
