"""Review 55q, pins: the stored histories a node's open channels depend on are kept out of the
known-histories cache's eviction (review 55m, rotation 1: 4096 other histories stored after an
owner's rotation evicted it, and `outgrown` let the channel a stolen pre-rotation backup opened
pass again until the next re-check).

`KnownHistories.pin`/`unpin` are reference-counted by digest; the channel manager pins a
channel's peer and its credentials' issuers as the channel is admitted (again at a refresh)
and releases them as it forgets the channel, whatever closed it (troth.node.channel_pins).
"""

from __future__ import annotations

import asyncio
import collections
import os
from pathlib import Path

import troth
from tests.support.channels import T
from tests.support.histories import DAY, T0, encode, extend, honest_history
from tests.support.nodes import authority_and_trusting_node
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, Peer, echo, run, until
from tests.test_review43a_channels import delegate_of_alice, open_as
from tests.test_review53o_refuted import AdmitAnyone
from troth.clock import SystemClock
from troth.identity import VerifiedIdentity, verify_history
from troth.identity.known import KNOWN_CACHE_SIZE, KnownHistories, StoredSpan
from troth.node.channel_pins import depends_on
from troth.node.channels import ChannelLimits
from troth.routing import parse_route
from troth.storage import SqliteDatabase, SqliteIdentityStore

NOW = T0 + 5 * DAY


def _known(path: Path) -> KnownHistories:
    return KnownHistories(SqliteIdentityStore(SqliteDatabase(path)), SystemClock())


def _rotated(known: KnownHistories, rotations: int = 1) -> list[VerifiedIdentity]:
    """An identity's history and its `rotations` later ones, each stored in turn."""
    histories = [honest_history(2)]
    for n in range(rotations):
        histories.append(extend(histories[-1], NOW + n))
    verified = [verify_history(encode(h.changes), now=NOW + rotations) for h in histories]
    for identity in verified:
        known.observe(identity)
    return verified


def _flood(known: KnownHistories, count: int = KNOWN_CACHE_SIZE) -> None:
    """`count` other identities' copies cached (as each delegate's, stored at its handshake)."""
    for _ in range(count):
        known.remember(os.urandom(32), StoredSpan(0, (os.urandom(32),)))


def test_a_pinned_rotation_survives_the_eviction_an_unpinned_one_does_not(tmp_path: Path) -> None:
    """(a) Two owners rotated; the stolen backup of one has an open channel (pinned). After
    4096 other copies, the pinned rotation still makes the backup outgrown and the unpinned
    one was evicted (the eviction still works); a longer copy stored over the pinned entry
    stays pinned (by digest); once unpinned, it is evicted as any other."""
    known = _known(tmp_path / "n.db")
    pinned_old, pinned_new, pinned_newer = _rotated(known, 2)
    known.pin(pinned_old.identifier.digest)
    loose_old, _ = _rotated(known)
    _flood(known)
    assert known.outgrown(pinned_old)
    assert not known.outgrown(loose_old)  # evicted (until the re-check reads the store)
    known.observe(pinned_newer)  # stored again: nothing changes, the entry is refreshed
    assert known.outgrown(pinned_new)
    _flood(known)
    assert known.outgrown(pinned_new)
    assert known.outgrown(pinned_old)
    known.unpin(pinned_old.identifier.digest)
    assert known.pinned() == 0
    _flood(known)
    assert not known.outgrown(pinned_old)


def test_pins_are_counted_and_the_unpinned_part_stays_bounded(tmp_path: Path) -> None:
    """(c) Pinned digests never cached, and cached ones, do not let the other entries grow
    past KNOWN_CACHE_SIZE; two pins of one digest need two unpins."""
    known = _known(tmp_path / "n.db")
    held = [os.urandom(32) for _ in range(100)]  # pinned, never cached
    cached = [os.urandom(32) for _ in range(10)]
    for digest in (*held, *cached, cached[0]):
        known.pin(digest)
    for digest in cached:
        known.remember(digest, StoredSpan(0, (digest,)))
    _flood(known, 3 * KNOWN_CACHE_SIZE)
    entries = known._cache
    assert all(digest in entries for digest in cached)
    assert len(entries) - len(cached) <= KNOWN_CACHE_SIZE
    for digest in (*held, *cached):
        known.unpin(digest)
    assert known.pinned() == 1  # cached[0] was pinned twice
    known.unpin(cached[0])
    assert known.pinned() == 0
    _flood(known, 2 * KNOWN_CACHE_SIZE)
    assert len(known._cache) <= KNOWN_CACHE_SIZE


class Counted:
    """A node's pins (`KnownHistories`), each pin and unpin counted: an unpin without its pin
    (a channel released twice) fails the test."""

    def __init__(self, known: KnownHistories) -> None:
        self.known = known
        self.held: collections.Counter[bytes] = collections.Counter()

    def pin(self, digest: bytes) -> None:
        self.held[digest] += 1
        self.known.pin(digest)

    def unpin(self, digest: bytes) -> None:
        assert self.held[digest] > 0, "released more than pinned"
        self.held[digest] -= 1
        if not self.held[digest]:
            del self.held[digest]
        self.known.unpin(digest)


def _open_peers(peer: Peer) -> collections.Counter[bytes]:
    """What `peer`'s admitted open channels depend on, one count per channel."""
    expected: collections.Counter[bytes] = collections.Counter()
    for end in peer.manager.ends.values():
        if end.peer is not None and end.established.done() and not end.channel.closed:
            expected.update(depends_on(end.peer))
    return expected


def test_channels_pin_their_peers_and_issuers_until_every_kind_of_close(tmp_path: Path) -> None:
    """(b) The hub pins each admitted channel's peer and issuers (a delegate's: the authority
    and alice), and the dialling side its peer's; a refresh pins the new chain's issuers;
    channels closed by their peer, evicted at the cap and closed at the node's stop release
    theirs exactly once: the pin tables end empty."""
    known, dialler_known = _known(tmp_path / "hub.db"), _known(tmp_path / "dialler.db")
    pins, dialler_pins = Counted(known), Counted(dialler_known)

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_open_channels=8), pins=pins)
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        dialler = net.peer("10.0.0.9", pins=dialler_pins)
        for _ in range(20):  # open and closed by the peer, one after another
            end = await open_as(dialler, delegate_of_alice(net))
            await end.close()
            await until(lambda: not hub.manager.ends)
        assert not pins.held
        assert not dialler_pins.held
        member = await dialler.manager.open(parse_route(HUB))
        delegate = await open_as(dialler, delegate_of_alice(net))
        assert await echo(dialler, delegate, "held") == "held"
        assert pins.held == _open_peers(hub)
        assert dialler_pins.held == _open_peers(dialler)
        admitted = sorted(len(depends_on(e.peer)) for e in hub.manager.ends.values() if e.peer)
        assert admitted == [2, 3]  # the member, the authority; the delegate, alice, the authority
        strangers = [net.peer(f"10.6.{n}.1") for n in range(12)]
        for source in strangers:  # past the cap: strangers' channels give way
            who = make_channel_party(net.world.vault, now=T)
            await source.manager.open(parse_route(HUB), me=who.me(()))
        assert hub.manager.counters.evicted_open > 0
        await until(lambda: pins.held == _open_peers(hub))
        stranger = make_channel_party(net.world.vault, now=T)
        shown = await dialler.manager.open(parse_route(HUB), me=stranger.me(()))
        await shown.present((net.world.credential(stranger),))  # a refresh, with a chain
        assert await echo(dialler, shown, "refreshed") == "refreshed"
        await until(lambda: pins.held == _open_peers(hub))
        authority = net.world.authority.identifier.digest
        assert pins.held[stranger.identifier.digest] == 1
        assert pins.held[authority] == _open_peers(hub)[authority] >= 3
        await member.close()
        await until(lambda: pins.held == _open_peers(hub))
        await hub.manager.close_all()  # the node stops
        assert not pins.held
        assert known.pinned() == 0
        await dialler.manager.close_all()
        for source in strangers:
            await source.manager.close_all()
        assert not dialler_pins.held
        assert dialler_known.pinned() == 0

    run(test)


def test_a_running_node_pins_its_channels_peers_and_releases_them(troth_home: Path) -> None:
    """A real node: while acme's channel to desk is open, desk's known histories hold acme's
    pin (what `NodeTrust` asks `outgrown` of); once acme closes it, and once desk stops, no
    pin is left."""
    authority, served = authority_and_trusting_node("acme", "desk")

    async def main() -> None:
        with troth.Node.open("desk") as desk, troth.Node.open("acme") as acme:
            async with desk.serve(listen=("127.0.0.1", 0)) as at, acme.serve() as running:
                known = at._runtime.node.identities._known
                for _ in range(3):
                    async with running.connect(at.address, expect=served) as channel:
                        assert await channel.call("echo", "echo", "pinned") == "pinned"
                        assert known._pins == {authority.digest: 1}
                    await until(lambda: known.pinned() == 0)
                async with running.connect(at.address, expect=served):
                    assert known.pinned() == 1
            assert known.pinned() == 0  # desk stopped with acme's channel open

    asyncio.run(main())
