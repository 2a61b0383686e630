"""Store-or-extend: every history a node verifies is recorded, and later only an equal or longer
copy of it is accepted (docs/formats.md, "Pre-rotation and stored histories").

A rollback (an older prefix, e.g. presented from a stolen backup after the owner rotated) is
refused as ROLLBACK, a different continuation as FORK. The decision and the write are one
`BEGIN IMMEDIATE` transaction with a compare-and-swap on the stored change count, so of two
concurrent observations of different extensions exactly one is stored and the other is a fork.

The hot path (a handshake with a known peer presenting the copy already stored) neither writes
nor reads the database: the stored change hashes are cached in memory for `cache_seconds`.
The cache only ever steps forward (a stored history only grows), this process's writes update
it at once, and a copy another process stores is seen once the entry is older than
`cache_seconds`. Refusing on a cached copy is always sound: what does not extend an older
stored copy cannot extend a newer one.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from typing import Final

from troth.clock import Clock
from troth.errors import DecodeError, IdentityError, IdentityFailure
from troth.identity.history import VerifiedIdentity, change_hashes, check_extends
from troth.storage import IdentityStore

__all__ = ["KNOWN_CACHE_SECONDS", "KNOWN_CACHE_SIZE", "KnownHistories"]

KNOWN_CACHE_SECONDS: Final = 10.0
"""How long a cached copy of a stored history is trusted before the store is read again."""
KNOWN_CACHE_SIZE: Final = 4096
"""Cached identities at most (when full, the older half is dropped)."""


class KnownHistories:
    """The append-only record of verified histories over an IdentityStore (store-or-extend)."""

    def __init__(
        self, store: IdentityStore, clock: Clock, *, cache_seconds: float = KNOWN_CACHE_SECONDS
    ) -> None:
        self._store = store
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, tuple[bytes, ...]]] = {}
        self._lock = threading.Lock()

    def observe(self, identity: VerifiedIdentity) -> None:
        """Record `identity` if it is new or extends the stored copy; raise IdentityError
        (FORK, ROLLBACK, IDENTIFIER_MISMATCH) if it neither equals nor extends it."""
        if not self._is_stored_copy(identity):
            self._store_or_extend(identity)

    def check(self, identity: VerifiedIdentity) -> None:
        """Raise IdentityError as `observe` would, but store nothing (for a requester not yet
        authorised: a stranger must not be able to fill the store)."""
        self._is_stored_copy(identity)

    def _is_stored_copy(self, identity: VerifiedIdentity) -> bool:
        """Whether `identity` is the stored (or cached) copy itself; raise if it neither equals
        nor extends it; False when it is unknown or a longer extension."""
        digest = identity.identifier.digest
        known = self._cached(digest)
        if known is None:
            stored = self._store.get_history(digest)
            if stored is not None:
                known = self.remember(digest, _stored_hashes(stored[0]))
        if known is None:
            return False
        if known[-1] == identity.current_change_hash:
            return True  # the stored copy itself: hash-linked changes, equal last hash, equal all
        check_extends(known, identity)
        return False

    def _store_or_extend(self, identity: VerifiedIdentity) -> None:
        digest = identity.identifier.digest
        hashes = tuple(change.change_hash for change in identity.changes)
        with self._store.transaction():
            stored = self._store.get_history(digest)
            if stored is None:
                self._store.insert_history(digest, identity.history, len(hashes), self._clock.now())
            else:
                check_extends(self.remember(digest, _stored_hashes(stored[0])), identity)
                if len(hashes) > stored[1]:
                    if self._store.find_local(identifier=digest) is not None:
                        raise IdentityError(
                            IdentityFailure.FORK, "a local identity is rotated only by its own node"
                        )
                    self._store.update_history(  # compare-and-swap on the change count
                        digest, identity.history, len(hashes), stored[1], self._clock.now()
                    )
        self.remember(digest, hashes)

    def remember(self, digest: bytes, hashes: Sequence[bytes]) -> tuple[bytes, ...]:
        """Cache the change hashes of a stored copy (after a read or this process's write) and
        return what the cache now holds: a fresh longer entry is never replaced by a shorter
        one (a reader that raced a writer must not step the cache back)."""
        now = time.monotonic()
        with self._lock:
            entry = self._cache.pop(digest, None)
            if entry is not None and len(entry[1]) > len(hashes) and self._fresh(entry, now):
                self._cache[digest] = entry
                return entry[1]
            if len(self._cache) >= KNOWN_CACHE_SIZE:  # drop the older half (amortised O(1))
                self._cache = dict(
                    itertools.islice(self._cache.items(), KNOWN_CACHE_SIZE // 2, None)
                )
            kept = tuple(hashes)
            self._cache[digest] = (now, kept)
            return kept

    def _cached(self, digest: bytes) -> tuple[bytes, ...] | None:
        entry = self._cache.get(digest)
        if entry is None or not self._fresh(entry, time.monotonic()):
            return None
        return entry[1]

    def _fresh(self, entry: tuple[float, tuple[bytes, ...]], now: float) -> bool:
        return now - entry[0] <= self._cache_seconds


def _stored_hashes(history: bytes) -> list[bytes]:
    """The change hashes of the stored copy; a copy this troth cannot read (an older format)
    refuses every observation of that identifier rather than being replaced."""
    try:
        return change_hashes(history)
    except DecodeError as exc:
        raise IdentityError(IdentityFailure.MALFORMED, f"the stored copy: {exc}") from None
