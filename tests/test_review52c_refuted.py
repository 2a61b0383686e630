"""Review 52c: attacks on what review 51 merged that the code withstood (refuted), kept as
tests: the channel claims cache (troth.channel.claims), the sender's CBOR limit check
(`cbor.check_limits`), and the rollback guard's leftover sweep (troth.storage.rollback)."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.channels import T
from tests.support.parties import ChannelParty, make_channel_party
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.claims import ClaimCache
from troth.channel.verification import HandshakeClaim
from troth.encoding import cbor
from troth.errors import ChannelError, DecodeError
from troth.identity import VerifiedIdentity, VerifiedPurposeKey, verify_attestation
from troth.identity.history import verify_history
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard
from troth.vault import KeyPurpose, SoftwareVault


@pytest.fixture
def peer() -> ChannelParty:
    return make_channel_party(SoftwareVault(), now=T)


def _verified(peer: ChannelParty) -> tuple[VerifiedIdentity, VerifiedPurposeKey]:
    claim = peer.claim()
    identity = verify_history(claim.history, now=T)
    key = verify_attestation(identity, claim.attestation, purpose=KeyPurpose.SECURE_CHANNEL, now=T)
    return identity, key


class _Bytes(bytes):
    """A bytes subclass whose equality lies: a cache keyed by it could be poisoned."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


def test_a_bytes_subclass_is_never_kept_nor_served(peer: ChannelParty) -> None:
    """A key that is not exactly `bytes` (its `__eq__`/`__hash__` another's) is verified in
    full: never kept, never matched against a kept claim."""
    cache = ClaimCache()
    identity, key = _verified(peer)
    claim = peer.claim()
    cache.put(_Bytes(claim.history), claim.attestation, identity, key, T)
    cache.put(claim.history, _Bytes(claim.attestation), identity, key, T)
    assert len(cache) == 0
    cache.put(claim.history, claim.attestation, identity, key, T)
    assert cache.get(_Bytes(b"another history"), claim.attestation, T) is None
    assert cache.get(claim.history, _Bytes(b"another attestation"), T) is None
    assert cache.get(claim.history, claim.attestation, T) is not None


def test_a_kept_claim_speaks_only_for_its_own_bytes(peer: ChannelParty) -> None:
    """One peer's kept claim beside another's history (the stolen attestation of a rotated
    key beside the history that rotated it away, say) is verified in full and refused: the
    key is the pair of byte strings, not their concatenation."""
    other = make_channel_party(SoftwareVault(), now=T)
    trust = ChannelTrust(policy=AnyAuthenticatedIdentity(), claims=ClaimCache())
    verify_peer(trust, peer.claim(), (), T)
    mixed = HandshakeClaim(other.claim().history, peer.claim().attestation, peer.claim().static_key)
    with pytest.raises(ChannelError):
        verify_peer(trust, mixed, (), T + 1)
    joined = peer.claim().history + peer.claim().attestation[:1]
    shifted = HandshakeClaim(joined, peer.claim().attestation[1:], peer.claim().static_key)
    with pytest.raises(ChannelError):
        verify_peer(trust, shifted, (), T + 1)


def test_threads_filling_the_cache_keep_its_bounds(peer: ChannelParty) -> None:
    """Many handshakes at once (the node's storage worker and its loop) never hold more than
    the bounds: puts are made under the cache's lock."""
    identity, key = _verified(peer)
    cache = ClaimCache(max_results=32, max_bytes=64 * 1024)
    history = peer.claim().history

    def fill(n: int) -> None:
        for i in range(300):
            cache.put(history + bytes([n, i % 256]), b"a%d" % i, identity, key, T)

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0 < len(cache) <= 32
    assert cache._held == sum(entry.cost for entry in cache._results.values())
    assert cache._held <= 64 * 1024


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(6 if depth < 7 else 3)
    if kind == 0:
        return rng.randrange(-300, 70_000)
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
    if kind == 2:
        return "".join(rng.choice("a\x80\u00e9\u00bf") for _ in range(rng.randrange(3)))
    if kind in (3, 4):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = sorted({rng.choice("abcdef") * rng.randrange(1, 3) for _ in range(rng.randrange(4))})
    return {key: _value(rng, depth + 1) for key in sorted(keys, key=lambda k: (len(k), k))}


def test_the_senders_check_agrees_with_decode_under_small_limits() -> None:
    """`check_limits` skips its scan when the payload is too short to hold more items, or
    has too few container header bytes to nest deeper, than the limits: for random
    documents and limits near their size, it refuses exactly what `decode` refuses."""
    rng = random.Random(52)
    refused = accepted = 0
    for _ in range(3000):
        data = cbor.encode(_value(rng, 0))
        depth, items = rng.randrange(1, 8), rng.randrange(1, len(data) + 3)
        try:
            cbor.decode(data, max_depth=depth, max_items=items)
        except DecodeError:
            refused += 1
            with pytest.raises(DecodeError):
                cbor.check_limits(data, max_depth=depth, max_items=items)
        else:
            accepted += 1
            cbor.check_limits(data, max_depth=depth, max_items=items)
    assert refused > 100
    assert accepted > 100


def test_the_sweep_leaves_other_files_and_a_guard_being_made(tmp_path: Path) -> None:
    """Only `.node.db.guard.<16 hex>.tmp` goes: not the guard, its lock, another database's
    temporary guard, nor a name that merely looks like one."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        kept = [
            tmp_path / ".node.db.guard.0011.tmp",
            tmp_path / ".node.db.guard.00112233445566778.tmp",
            tmp_path / ".node.db.guard.001122334455667g.tmp",
            tmp_path / "node.db.guard.0011223344556677.tmp",
        ]
        for path in kept:
            path.write_bytes(b"x")
        RollbackGuard(db, "authority").check(T, lambda: 0)
        assert all(path.exists() for path in kept)
    finally:
        db.close()
