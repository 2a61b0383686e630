"""Review 22g (secure channels): the surfaces reviewed longest ago.

1. a channel's peer is checked against the node's stored copy of its history at the handshake
   only (`verify_peer` step 1: "extends any stored copy: no fork, no rollback"); the continuous
   re-check (`check_peer`, every maintenance round) and an in-band credential refresh judge the
   identity verified at the handshake by the held feeds alone. A thief with a stolen backup of
   an agent's keys opens a channel as the agent; the agent rotates and reconnects, so the node
   stores the rotated history and refuses the old one at every new handshake (ROLLBACK) — but
   the thief's open channel, still presenting the pre-rotation history, passes every re-check
   and refresh (and keeps every right the agent has) until the agent's authority publishes
   the supersession and the node syncs it: never, when no feed the node holds can say it — a
   delegate that is not a member cannot announce a rotation at all (`Authority.rotated`
   refuses NOT_A_MEMBER), nor can an authority whose feed is full (docs/credentials.md: "then
   only verifiers with a store refuse the older history"), and docs/vault.md promises that
   rotating "retires it for every verifier that stored the newer history".

Each test asserts the secure behaviour and was a strict xfail until its fix (`verify_peer`
checks the stored copy at a refresh and a re-check too: troth.channel.verification).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.channels import T, World, closed, make_world, pump
from tests.support.parties import SIGNING_TTL, ChannelParty
from troth.channel import ChannelState, ChannelTrust, SecureChannel
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.errors import ChannelFailure
from troth.identity import attest_purpose_key, rotate_identity
from troth.identity.known import KnownHistories
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose

F = ChannelFailure


def _with_store(world: World, tmp_path: Path) -> ChannelTrust:
    """Bob's trust with a node's store of histories (store-or-extend, as a node's)."""
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "bob.db"))
    known = KnownHistories(store, FixedClock(T), cache_seconds=0)
    base = world.trust()
    return ChannelTrust(
        policy=base.policy,
        verifier=base.verifier,
        feeds=base.feeds,
        known=known.check,
        observe=lambda peer: known.observe(peer.identity),
    )


def _rotated(world: World) -> ChannelParty:
    """Alice rotates (change 1) and attests a new channel key under it."""
    alice = world.alice
    vault, party = world.vault, alice.party
    primary, rotated, following = rotate_identity(
        vault, party.identity, party.primary, party.next_primary, now=T + 10, valid_for=10**8
    )
    handle = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    attestation = attest_purpose_key(
        vault,
        primary,
        rotated,
        KeyPurpose.SECURE_CHANNEL,
        vault.public_key(handle),
        now=T + 10,
        expires_at=T + SIGNING_TTL,
    )
    moved = type(party)(rotated, primary, party.signer, following)
    return ChannelParty(moved, vault, handle, attestation)


def _thief_open_after_rotation(tmp_path: Path) -> tuple[World, SecureChannel, SecureChannel]:
    """The thief holds alice's keys at change 0 (a stolen backup) and has a channel open to
    bob as alice. Alice rotates and opens a channel of her own: bob stores change 1 (and so
    refuses a new handshake with change 0). No feed bob holds says anything of the rotation.
    Returns the world, the thief's end and bob's end of the thief's channel."""
    world = make_world()
    trust = _with_store(world, tmp_path)

    def bob() -> SecureChannel:
        me = world.bob.me((world.credential(world.bob),))
        return SecureChannel(initiator=False, me=me, trust=trust)

    stolen = world.alice.me((world.credential(world.alice),))
    thief, bob_1 = SecureChannel.initiate(me=stolen, trust=world.trust()), bob()
    pump(thief, bob_1, now=T + 5)
    assert thief.state is bob_1.state is ChannelState.OPEN

    me = _rotated(world).me((world.credential(world.alice),))
    alice, bob_2 = SecureChannel.initiate(me=me, trust=world.trust()), bob()
    pump(alice, bob_2, now=T + 20)
    assert alice.state is bob_2.state is ChannelState.OPEN  # bob stored alice's change 1

    again, bob_3 = SecureChannel.initiate(me=stolen, trust=world.trust()), bob()
    assert closed(pump(again, bob_3, now=T + 21)[1]).reason is F.PEER_INVALID  # ROLLBACK
    return world, thief, bob_1


def test_a_re_check_closes_a_channel_whose_history_the_node_knows_rolled_back(
    tmp_path: Path,
) -> None:
    """Bob's next re-check of the thief's channel refuses the history his own store shows
    rolled back, as a new handshake with it is refused."""
    _, _, bob_1 = _thief_open_after_rotation(tmp_path)
    assert closed(bob_1.check_peer(T + 30)).reason is F.PEER_INVALID


def test_a_refresh_on_a_channel_whose_history_the_node_knows_rolled_back_closes_it(
    tmp_path: Path,
) -> None:
    """The thief refreshes its credentials in-band instead (the same chain, as a node does
    after its credential refresh): bob refuses it and closes the channel."""
    world, thief, bob_1 = _thief_open_after_rotation(tmp_path)
    thief.send_credentials((world.credential(world.alice),))
    events = [e for packet in thief.outgoing() for e in bob_1.receive(packet, T + 30)]
    assert closed(events).reason is F.PEER_INVALID
    assert bob_1.state is ChannelState.CLOSED
