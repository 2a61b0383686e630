"""Review 45i, secrets 3: the lease book's cache of chain hashes (an agent leases, renews and
forwards with the same chain many times; its SHA-256 is remembered) was bounded by entries
only (1,024, emptied when full), each keyed by the chain's bytes: with chains of up to
`limits.MAX_CHAIN_BYTES` (128 KiB) it could hold ~128 MiB. It is now bounded by the bytes of
the chains it holds (`MAX_CHAIN_HASH_CACHE_BYTES`, 16 MiB), the least recently used evicted
first.

A strict xfail until the cache was bounded by bytes (troth.secrets.members.ChainHashes).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import open_broker
from troth import limits
from troth.crypto import sha256
from troth.secrets.members import MAX_CHAIN_HASH_CACHE_BYTES, ChainHashes


def test_the_chain_hash_cache_stays_within_its_bytes_and_answers_right(tmp_path: Path) -> None:
    """Chains of the largest size, distinct, fill the cache: the chains it holds stay within
    the bound, every answer is the chain's SHA-256, and a chain used all along stays held."""
    _db, broker = open_broker(tmp_path / "node.db", now=NOW)
    book = broker.book
    kept = b"k" * 1000
    assert book._chain_hash(kept) == sha256(kept)
    count = 2 * MAX_CHAIN_HASH_CACHE_BYTES // limits.MAX_CHAIN_BYTES
    for n in range(count):
        chain = n.to_bytes(4, "big") * (limits.MAX_CHAIN_BYTES // 4)
        assert book._chain_hash(chain) == sha256(chain)
        assert book._chain_hash(kept) == sha256(kept)  # used again: the most recent
        held = sum(len(chain) for chain in book._chain_hashes)
        assert held <= MAX_CHAIN_HASH_CACHE_BYTES, (n, held)
        assert book._chain_hashes.held_bytes == held
    assert kept in book._chain_hashes
    for n in range(count):  # evicted or not, the answers stay right
        chain = n.to_bytes(4, "big") * (limits.MAX_CHAIN_BYTES // 4)
        assert book._chain_hash(chain) == sha256(chain)


def test_a_chain_larger_than_the_bound_is_answered_not_held() -> None:
    cache = ChainHashes(max_bytes=100)
    big, small = b"b" * 101, b"s" * 60
    assert cache.digest(small) == sha256(small)
    assert cache.digest(big) == sha256(big)
    assert list(cache) == [small]
    assert cache.held_bytes == 60
    other = b"o" * 60  # evicts the least recently used
    assert cache.digest(other) == sha256(other)
    assert list(cache) == [other]
