"""Adversarial review, round 4 (identity rotation, enrollment, VC/DID import, channels, relays):
each test asserts the secure behaviour and is a strict xfail while the bug it pins is open."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.channels import T, frames_of, packet
from tests.support.feeds import pages
from tests.support.histories import DAY, T0, extend, honest_history
from tests.support.parties import ChannelParty, make_channel_party, make_party
from troth.channel import (
    ChannelSettings,
    ChannelState,
    ChannelTrust,
    SecureChannel,
    VerifiedPeer,
    verify_peer,
)
from troth.channel.payloads import FRAGMENT, Kind
from troth.channel.verification import HandshakeClaim
from troth.clock import FixedClock
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    verify_page,
)
from troth.credentials.revocation_held import VerifiedFeed, feed_checkpoints
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key
from troth.encoding import cbor
from troth.errors import (
    ChannelError,
    ChannelFailure,
    CredentialError,
    CredentialFailure,
    IdentityError,
    IdentityFailure,
)
from troth.identity import Checkpoint, encode_history, verify_history
from troth.identity.attestation import ATTESTATION_TYPE
from troth.identity.change import encode_public_key
from troth.identity.known import KnownHistories
from troth.node.channels import LISTENER, ChannelLimits, ChannelManager
from troth.routing import Address, RoutedMessage, Router, Source, parse_route
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.transport import Listener, MemoryNetwork, MemoryTransport
from troth.vault import KeyPurpose, SoftwareVault

NOW = T0 + 10 * DAY
CHANNEL_NOW = T + 1


class _AdmitsEveryone:
    """A node that admits any authenticated peer to a channel: what a node hosting an
    authority does (newcomers must reach `enroll`: runtime._set_rules, AnyAuthenticated)."""

    def admit(self, peer: VerifiedPeer) -> bool:
        return True


def feed_naming(identifier: bytes, changes: int, change_hash: bytes) -> VerifiedFeed:
    """The verified feed of a fresh authority whose one entry says `identifier` has at least
    `changes` changes, change `changes - 1` hashing to `change_hash` (what the authority
    publishes when a member enrolls, refreshes or announces a rotation)."""
    authority = make_party(SoftwareVault(), now=T0)
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        identifier,
        authority.identifier,
        NOW,
        "",
        Supersession(changes, change_hash),
    )
    (page,) = pages(authority, [entry], now=NOW, per_page=1)
    return verify_page(page, authority=authority.identifier, now=NOW)


def test_a_stolen_backups_fork_checkpointed_by_another_authority_is_still_superseded() -> None:
    """M's full backup (current key and sealed next key) is stolen at change 2. The owner
    rotates (change 3) and announces it to authority A: A's feed says "M has 4 changes, change
    3 is H". The thief forks at change 3 with the stolen next key, rotates once more (change
    4'), and enrolls M at authority B (it holds M's keys), which publishes "M has 5 changes,
    change 4 is H4'". A verifier trusting both A and B (it holds both feeds, fresh) is then
    shown the thief's history presented from change 4', its checkpoint naming B, in a channel
    handshake (verify_peer: ChainVerifier and the trace collector judge issuers and signers
    with the same two calls, feed_checkpoints and check_current). A's feed says change 3 is
    H, and the thief's change 4' does not descend from it: the peer must be refused, as the
    full fork is refused as superseded."""
    stolen = honest_history(3)  # changes 0..2 and the committed next key: the backup
    owner = extend(stolen, T0 + 3 * DAY)  # the owner's honest rotation
    thief = extend(extend(stolen, T0 + 3 * DAY + 60), T0 + 4 * DAY)  # 3' and 4'
    identifier = sha256(stolen.changes[0].body)
    feed_a = feed_naming(identifier, 4, sha256(owner.changes[3].body))
    feed_b = feed_naming(identifier, 5, sha256(thief.changes[4].body))
    feeds = {feed_a.authority: feed_a, feed_b.authority: feed_b}

    full_fork = verify_history(encode_history(thief.changes), now=NOW)
    with pytest.raises(CredentialError) as caught:  # the fork in full: superseded by A
        feed_a.check_current(full_fork)
    assert caught.value.reason is CredentialFailure.SUPERSEDED

    # the thief's channel handshake as M: its fork presented from change 4', a channel key
    # attested by its own key of change 4' (what it holds), to a node trusting A and B
    channel_key = generate_private_key(KeyType.X25519).public_key
    attestation_body = cbor.encode(
        [
            ATTESTATION_TYPE,
            1,
            identifier,
            sha256(thief.changes[4].body),
            int(KeyPurpose.SECURE_CHANNEL),
            encode_public_key(channel_key),
            NOW,
            NOW + DAY,
        ]
    )
    claim = HandshakeClaim(
        encode_history(thief.changes[4:], Checkpoint(identifier, feed_b.authority.digest, 4)),
        cbor.encode([attestation_body, thief.keys[4].sign(attestation_body)]),
        channel_key,
    )
    trust = ChannelTrust(
        policy=_AdmitsEveryone(),
        feeds=lambda: feeds,
        checkpoints=lambda now: feed_checkpoints(feeds, now=now, max_staleness=300),
    )
    with pytest.raises(ChannelError) as refused:  # it was accepted: the thief spoke as M
        verify_peer(trust, claim, (), NOW)
    assert refused.value.reason is ChannelFailure.PEER_INVALID


def test_a_stolen_backups_fork_does_not_replace_the_owners_stored_history(tmp_path: Path) -> None:
    """A node stored M's owner's history up to change 3 (the rotation after the theft). The
    thief, holding M's full backup from change 2, forks at change 3 with the stolen next key,
    rotates on to change 5', and has authority B (whose feed the node holds: a second trust
    anchor) attest change 5' by enrolling M there. Presented from change 5' (a gap after the
    stored change 3), the fork must be refused as one (docs/formats.md: a verifier that stored
    [c0, c1] refuses the backup's own rotation as a fork), not stored in place of the owner's
    history, which would lock the owner out of this node for good."""
    stolen = honest_history(3)
    owner = extend(stolen, T0 + 3 * DAY)
    thief = stolen
    for day in (3, 4, 5):
        thief = extend(thief, T0 + day * DAY + 60)
    identifier = sha256(stolen.changes[0].body)
    feed_b = feed_naming(identifier, 6, sha256(thief.changes[5].body))
    checkpoints = feed_checkpoints({feed_b.authority: feed_b}, now=NOW, max_staleness=300)
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "node.db"))
    known = KnownHistories(store, FixedClock(NOW), cache_seconds=0)
    known.observe(verify_history(encode_history(owner.changes), now=NOW))

    presented = encode_history(
        thief.changes[5:], Checkpoint(identifier, feed_b.authority.digest, 5)
    )
    with pytest.raises(IdentityError) as caught:
        known.observe(verify_history(presented, now=NOW, checkpoints=checkpoints))
    assert caught.value.reason in (IdentityFailure.FORK, IdentityFailure.UNATTESTED_CHECKPOINT)
    known.observe(verify_history(encode_history(owner.changes), now=NOW))  # still the owner's


# -- channels: one source, many identities ---------------------------------------------------


def _channel_node(
    network: MemoryNetwork, host: str, who: ChannelParty, limits: ChannelLimits
) -> tuple[ChannelManager, MemoryTransport]:
    router = Router()
    manager = ChannelManager(
        router,
        me=who.me,
        trust=lambda: ChannelTrust(policy=_AdmitsEveryone()),
        services=frozenset,
        settings=ChannelSettings(),
        clock=lambda: CHANNEL_NOW,
        limits=limits,
    )
    manager.start()
    return manager, MemoryTransport(router, network, host=host)


def test_one_source_cannot_hold_unbounded_channels_by_rotating_identities() -> None:
    """Identities cost nothing (a key pair and one signature), and a node hosting an authority
    admits any authenticated peer. The per-peer channel limit (here 2) is then no bound on
    what one source holds: from one address, over one connection, a fresh identity per two
    channels. Like handshakes (16 per source) and connections (64 per source), the channels
    one source holds open must be bounded: 300 channels from one address are refused long
    before the last (every one of them costs the node a SecureChannel, its keys, replay
    window, reassembler, router workers and keepalive work for as long as the source
    answers pings)."""
    vault = SoftwareVault()

    async def attack() -> tuple[int, bool]:
        network = MemoryNetwork()
        hub, hub_transport = _channel_node(
            network,
            "10.0.0.1",
            make_channel_party(vault, now=T),
            ChannelLimits(max_channels_per_peer=2),
        )
        await hub_transport.listen(
            "hub", 4000, Listener(addresses=frozenset({LISTENER}), kinds=frozenset({"relay"}))
        )
        source, _transport = _channel_node(
            network, "10.6.6.6", make_channel_party(vault, now=T), ChannelLimits()
        )
        refused = False
        try:
            for _ in range(150):
                identity = make_channel_party(vault, now=T).me()
                for _ in range(2):
                    await source.open(parse_route("/tcp/hub:4000"), me=identity)
        except ChannelError:
            refused = True
        held = sum(1 for end in hub.ends.values() if end.channel.state is ChannelState.OPEN)
        # a channel the source closes gives its place back
        await next(iter(source.ends.values())).close()
        async with asyncio.timeout(10):
            while len(hub.ends) >= held:
                await asyncio.sleep(0.005)
        await source.open(parse_route("/tcp/hub:4000"), me=make_channel_party(vault, now=T).me())
        await source.close_all()
        await hub.close_all()
        return held, refused

    held, refused = asyncio.run(asyncio.wait_for(attack(), 120))
    assert refused, f"one source holds {held} channels to the node"
    assert held == ChannelLimits().max_channels_per_source


def test_fragments_sent_with_message_3_do_not_escape_the_peers_reassembly_budget() -> None:
    """An initiator (its own implementation: nothing makes it wait for ACCEPTED) puts a
    fragment in the same packet as its handshake message 3. The node's responder end reads
    both in one `receive`; only afterwards does the manager give the channel its peer's
    reassembly budget, which `share_reassembly_budget` refused (ValueError: fragments were
    already held; logged, the message dropped, the channel left OPEN). From then on the
    channel's incomplete messages are charged to no per-peer and no node budget, only to its
    own per-message bound (16 MiB by default), so the per-peer and node-wide reassembly
    limits (issue 8) fall to one channel per identity. Here the peer's budget is 200 KB: one
    channel must not hold more."""
    vault = SoftwareVault()
    budget = 200_000

    async def attack() -> int:
        network = MemoryNetwork()
        limits = ChannelLimits(max_reassembly_per_peer=budget, max_reassembly_total=budget)
        hub, hub_transport = _channel_node(
            network, "10.0.0.1", make_channel_party(vault, now=T), limits
        )
        await hub_transport.listen(
            "hub", 4000, Listener(addresses=frozenset({LISTENER}), kinds=frozenset({"relay"}))
        )
        router = Router()
        MemoryTransport(router, network, host="10.6.6.6")
        arrived: asyncio.Queue[RoutedMessage] = asyncio.Queue()

        async def inbox(message: RoutedMessage, source: Source | None) -> None:
            await arrived.put(message)

        mine = Address("worker", "attacker")
        router.register(mine, inbox)
        me = make_channel_party(vault, now=T).me()
        channel = SecureChannel.initiate(me=me, trust=ChannelTrust(policy=_AdmitsEveryone()))
        (first,) = channel.outgoing()
        await router.route(RoutedMessage((*parse_route("/tcp/hub:4000"), LISTENER), (mine,), first))
        answer = await asyncio.wait_for(arrived.get(), 10)
        channel.receive(answer.payload, CHANNEL_NOW)  # message 2: message 3 is queued
        back = answer.return_route

        def fragments(message_id: int, count: int) -> list[memoryview]:
            chunk = bytes(60_000)
            channel._emit(  # what a hostile initiator sends, whatever its state machine says
                [
                    (Kind.FRAGMENT, (FRAGMENT.pack(message_id, 1_000_000, n * len(chunk)), chunk))
                    for n in range(count)
                ]
            )
            return frames_of(channel.outgoing())

        with_message_3 = fragments(1, 1)  # [message 3, fragment]
        await router.route(RoutedMessage(back, (mine,), packet(*with_message_3)))
        for message_id in range(2, 6):  # more incomplete messages, a packet each
            await router.route(RoutedMessage(back, (mine,), packet(*fragments(message_id, 1))))
        (end,) = hub.ends.values()
        async with asyncio.timeout(10):  # the in-memory network delivers asynchronously
            while end.channel.authenticated < 5 and not end.channel.closed:
                await asyncio.sleep(0.005)
        held = end.channel.reassembling
        await hub.close_all()
        return held

    held = asyncio.run(asyncio.wait_for(attack(), 60))
    assert held <= budget, f"one channel of one peer holds {held} bytes in reassembly"
