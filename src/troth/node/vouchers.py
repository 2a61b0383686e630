"""Which authorities vouched for an identity at this node (docs/formats.md, "Whose word counts
on an identity"; docs/storage.md, "Vouchers"): the roots of the chains the node verified for
it, kept in its `vouchers` table and in memory, so that a peer which later hides one of those
chains is still judged by that authority's feed (`standing_feeds`): a member of acme and globex
that acme revoked cannot choose globex alone as its judge.

A row is added (or its expiry extended) whenever a chain verifies — at a handshake, a refresh,
a re-check — before the peer is judged. Rows are bounded: MAX_VOUCHERS_PER_IDENTITY per
identity, MAX_VOUCHED_IDENTITIES identities. Past a bound, a sweep forgets only rows that can no
longer change a judgment: the row's newest chain has expired (plus MAX_CLOCK_SKEW_SECONDS, the
most skew a verifier allows at its end), the authority's feed is held complete and was issued
after that, and it neither revokes the identity nor supersedes the history this node stores
for it. Such a feed holds every word the authority gave while a chain it vouched with could be
shown here, so forgetting loses only a word given after its vouching lapsed — what a node that
never saw the chain would not count either. A row whose authority did speak is kept for good;
one whose feed is not held complete and late enough stays until it is. When a sweep frees no
room, `vouch` answers False and the peer is refused (deny when in doubt): a flood of fresh
members fills the memory for at most their chains' lifetime, and never evicts a row that
counts.

`vouch` runs on the event loop (at handshakes), `load` on the storage thread: each identity's
entry is replaced, never mutated, under a lock, so `of` (every access decision) reads memory
only, without the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Final

from troth import limits
from troth.credentials import VerifiedCredential, VerifiedFeed
from troth.identity import Identifier
from troth.storage import VoucherStore

__all__ = ["LAPSE_MARGIN", "Vouchers"]

LAPSE_MARGIN: Final = limits.MAX_CLOCK_SKEW_SECONDS
"""Seconds after a chain's expiry it may still be accepted (a verifier's skew is at most this)."""
_SWEEP_ROUNDS: Final = 8  # rounds of VOUCHER_SWEEP_ROWS per authority one `vouch` may run
_EMPTY: Final[Mapping[Identifier, int]] = {}


class Vouchers:
    """The authorities whose chains this node verified for each identity (module docstring).
    `feeds` are the feeds held now; `stored_changes` the change count of the history this node
    stores for an identity (None: none)."""

    def __init__(
        self,
        store: VoucherStore,
        *,
        feeds: Callable[[], Mapping[Identifier, VerifiedFeed]],
        stored_changes: Callable[[Identifier], int | None],
    ) -> None:
        self._store = store
        self._feeds = feeds
        self._stored_changes = stored_changes
        self._lock = threading.Lock()
        self._held: dict[Identifier, Mapping[Identifier, int]] = {}
        self.generation = 0
        """Grows whenever an identity gains an authority (standings cached before are stale)."""

    def __len__(self) -> int:
        """How many identities have rows."""
        return len(self._held)

    def load(self) -> None:
        """Read every stored row into memory, keeping what memory holds already (at start, and
        at a reload: rows another process added)."""
        rows = self._store.vouchers()
        with self._lock:
            grouped: dict[Identifier, dict[Identifier, int]] = {}
            for digest, authority, expires_at in rows:
                grouped.setdefault(Identifier(digest), {})[Identifier(authority)] = expires_at
            for identifier, stored in grouped.items():
                held = self._held.get(identifier, _EMPTY)
                merged = {a: max(e, held.get(a, e)) for a, e in stored.items()}
                merged.update((a, e) for a, e in held.items() if a not in merged)
                if merged != held:
                    self._held[identifier] = merged
            self.generation += 1

    def of(self, identifier: Identifier) -> Set[Identifier]:
        """The authorities whose chains this node verified for `identifier` (memory only)."""
        return self._held.get(identifier, _EMPTY).keys()

    def vouch(self, identifier: Identifier, credentials: Iterable[VerifiedCredential]) -> bool:
        """Remember the roots of `credentials` (chains just verified for `identifier`) and
        their expiry; False when the bounds leave no room even after a sweep (nothing stored)."""
        wanted: dict[Identifier, int] = {}
        for credential in credentials:
            authority = credential.authority
            wanted[authority] = max(wanted.get(authority, 0), credential.expires_at)
        if all(self._held.get(identifier, _EMPTY).get(a, -1) >= e for a, e in wanted.items()):
            return True  # the usual case (a re-check, a known member): no lock, no write
        with self._lock:
            held = self._held.get(identifier, _EMPTY)
            new = {a: e for a, e in wanted.items() if held.get(a, -1) < e}
            if not new:
                return True
            if not self._room(identifier, new.keys()):
                return False
            with self._store.transaction():
                for authority, expires_at in new.items():
                    self._store.vouch(identifier.digest, authority.digest, expires_at)
            self._held[identifier] = {**self._held.get(identifier, _EMPTY), **new}
            if new.keys() - held.keys():
                self.generation += 1
        return True

    # -- under the lock ----------------------------------------------------------------------------

    def _room(self, identifier: Identifier, authorities: Set[Identifier]) -> bool:
        """Whether `identifier` may hold `authorities` too, sweeping once a bound is reached."""
        for _ in range(_SWEEP_ROUNDS):
            held = self._held.get(identifier, _EMPTY)
            over_identity = len(authorities | held.keys()) > limits.MAX_VOUCHERS_PER_IDENTITY
            over_all = not held and len(self._held) >= limits.MAX_VOUCHED_IDENTITIES
            if not over_identity and not over_all:
                return True
            if not self._sweep(frozenset({identifier}) if over_identity else frozenset()):
                return False
        return False

    def _sweep(self, only: Set[Identifier]) -> int:
        """Forget the lapsed rows that can no longer change a judgment and mark those whose
        authority spoke kept for good: up to VOUCHER_SWEEP_ROWS of each authority (the rows of
        the identities in `only`, when given). How many rows it settled (0: no progress)."""
        settled = 0
        for authority, feed in self._feeds().items():
            if not feed.complete:
                continue  # entries may be missing: nothing it might say is known yet
            until = feed.issued_at - LAPSE_MARGIN
            if only:
                rows = [
                    (i.digest, e)
                    for i in only
                    if (e := self._held.get(i, _EMPTY).get(authority)) is not None and e <= until
                ]
            else:
                rows = self._store.lapsed(authority.digest, until, limits.VOUCHER_SWEEP_ROWS)
            forget: list[tuple[bytes, int]] = []
            keep: list[tuple[bytes, int]] = []
            for digest, expires_at in rows:
                spoke = self._spoke(feed, Identifier(digest))
                (keep if spoke else forget).append((digest, expires_at))
            if not forget and not keep:
                continue
            for digest in self._store.settle(authority.digest, forget, keep):
                self._forget(Identifier(digest), authority)
            settled += len(forget) + len(keep)
        return settled

    def _spoke(self, feed: VerifiedFeed, identifier: Identifier) -> bool:
        """Whether `feed` refuses `identifier`: revokes it, or supersedes the history this node
        stores for it (an older copy is a rollback the store refuses anyway)."""
        if feed.identity_revoked(identifier.digest):
            return True
        superseded = feed.supersession(identifier)
        if superseded is None:
            return False
        stored = self._stored_changes(identifier)
        return stored is None or stored < superseded.changes

    def _forget(self, identifier: Identifier, authority: Identifier) -> None:
        held = self._held.get(identifier, _EMPTY)
        rest = {a: e for a, e in held.items() if a != authority}
        if rest:
            self._held[identifier] = rest
        else:
            self._held.pop(identifier, None)
