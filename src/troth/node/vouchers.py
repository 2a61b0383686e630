"""Which authorities vouched for an identity at this node (docs/formats.md, "Whose word counts
on an identity"; docs/storage.md, "Vouchers"): the roots of the chains the node verified for
it, kept in its `vouchers` table and in memory, so that a peer which later hides one of those
chains is still judged by that authority's feed (`standing_feeds`): a member of acme and globex
that acme revoked cannot choose globex alone as its judge.

A row is added (or its expiry extended) whenever a chain verifies — at a handshake, a refresh,
a re-check — before the peer is judged. Rows are bounded: MAX_VOUCHERS_PER_IDENTITY per
identity; MAX_VOUCHED_PER_MEMBER identities per member account (the member at the root of the
row's newest chain, `credential.links[0].subject`, as troth.node.access.member_accounts counts
holdings: a member mints delegates offline for free); MAX_VOUCHED_IDENTITIES identities. Past a
bound, a sweep (of the identity's rows, of the member's, or of all) forgets only rows that can
no longer change a judgment: the row's newest chain has expired (plus MAX_CLOCK_SKEW_SECONDS,
the most skew a verifier allows at its end), the authority's feed is held complete and was
issued after that, and it neither revokes the identity nor supersedes the history this node
stores for it. Such a feed holds every word the authority gave while a chain it vouched with
could be shown here, so forgetting loses only a word given after its vouching lapsed — what a
node that never saw the chain would not count either. A row whose authority did speak is kept
for good; one whose feed is not held complete and late enough stays until it is. When a sweep
frees no room, `vouch` answers False and the peer is refused (deny when in doubt): a member
flooding delegates fills only its own share — its own new identities are refused, never another
member's peer — for at most their chains' lifetime, and never evicts a row that counts; only
many members together can fill the memory of all, and past MAX_VOUCHED_IDENTITIES an identity
whose authorities each hold fewer than their share of it is still remembered (`_within_shares`),
so a co-trusted authority minting members for free fills only its own share.

Each row also records `since`: the oldest change (index, hash) of a history its chains were
verified with (the lowest index seen; None for a row stored before review 27h: any history).
A full history is judged only by the rows whose `since` it holds (`standing`: an authority whose
only word on the identity was about another line of history, e.g. a change it made up after a
gap, does not judge the member's own), and a stored copy from a checkpoint binds it only when
such an authority attests it (troth.node.trust, `Binds`: docs/formats.md, "A stored copy from a
checkpoint").

A row is also forgotten, outside the bounds, when the identity's stored history is shown made
up, or is a copy from a checkpoint an admitted peer's full history replaced (review 27h), and
its authority's held feed names a change of it (`refuted`: review 23a, checkpoints 3).
The made-up changes are recorded in the store with the replacement of the copy
(troth.identity.known, `VoucherStore.refuted`), so the rule holds whichever process replaced
it, and after a crash before its `refuted` callback ran (review 26b, refuted 2):
`forget_refuted` (at each reload, once the feeds are held, and in each maintenance round of a
running node) reads them and forgets the rows of the authorities whose held feed names one, and
`vouch` never adds such a row — but for a recorded change the full history shown holds: a copy
from a checkpoint an admitted stale backup replaced may have held her real changes, and once a
history holding them is stored here their records are dropped (review 29a, refuted 1).

`vouch` runs on the event loop (at handshakes), `load` on the storage thread: each identity's
entry is replaced, never mutated, under a lock, so `of` (every access decision) reads memory
only, without the lock. The count per member (`_members`) is kept under the lock only.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Final, NamedTuple

from troth import limits
from troth.credentials import VerifiedCredential, VerifiedFeed
from troth.credentials.format import STORED_LATEST
from troth.identity import Identifier, UnverifiedHistory, VerifiedIdentity
from troth.identity.known import refuted_changes
from troth.storage import VoucherStore

__all__ = ["LAPSE_MARGIN", "Since", "Vouchers"]

LAPSE_MARGIN: Final = limits.MAX_CLOCK_SKEW_SECONDS
"""Seconds after a chain's expiry it may still be accepted (a verifier's skew is at most this)."""
_SWEEP_ROUNDS: Final = 8  # rounds of VOUCHER_SWEEP_ROWS per authority one `vouch` may run


Since = tuple[int, bytes] | None
"""The oldest change (index, hash) of a history an authority's chain was verified with for an
identity (the lowest index seen); None: any history (a row stored before this was recorded, or
a caller that does not say)."""


class _Row(NamedTuple):
    expires_at: int  # of the newest chain of that authority verified for the identity
    member: Identifier  # at that chain's root: whose share the identity counts against
    since: Since = None  # the oldest change of a history it vouched with (`standing`)


_EMPTY: Final[Mapping[Identifier, _Row]] = {}


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
        self._held: dict[Identifier, Mapping[Identifier, _Row]] = {}
        self._members: dict[Identifier, set[Identifier]] = {}  # member -> identities it roots
        self._authorities: collections.Counter[Identifier] = collections.Counter()  # identities
        # with a row of each authority
        self._refuted: dict[Identifier, frozenset[tuple[int, bytes]]] = {}  # made-up changes
        self.generation = 0
        """Grows whenever an identity gains an authority (standings cached before are stale)."""

    def __len__(self) -> int:
        """How many identities have rows."""
        return len(self._held)

    def load(self) -> None:
        """Read every stored row into memory, keeping what memory holds already (at start, and
        at a reload: rows another process added); `forget_refuted` then forgets those of the
        authorities that named a made-up change of their identity."""
        rows = self._store.vouchers()
        with self._lock:
            grouped: dict[Identifier, dict[Identifier, _Row]] = {}
            for digest, authority, expires_at, member, since in rows:
                row = _Row(expires_at, Identifier(member), since)
                grouped.setdefault(Identifier(digest), {})[Identifier(authority)] = row
            for identifier, stored in grouped.items():
                held = self._held.get(identifier, _EMPTY)
                merged = {a: _merge(held.get(a, r), r) for a, r in stored.items()}
                merged.update((a, r) for a, r in held.items() if a not in merged)
                if merged != held:
                    self._put(identifier, merged)
            self.generation += 1

    def of(self, identifier: Identifier) -> Set[Identifier]:
        """The authorities whose chains this node verified for `identifier` (memory only)."""
        return self._held.get(identifier, _EMPTY).keys()

    def vouch(
        self,
        identifier: Identifier,
        credentials: Iterable[VerifiedCredential],
        *,
        since: Since = None,
        history: VerifiedIdentity | None = None,
    ) -> bool:
        """Remember the roots of `credentials` (chains just verified for `identifier`), their
        expiry, and `since`: the oldest change (index, hash) of the history they were verified
        with (None: any history), kept when older than the one held (`standing`); False when
        the bounds leave no room even after a sweep (nothing stored). `history`, that history
        when given: a recorded refuted change a full one holds is a real change of the
        identity, so the authority that named it is not refused for it (review 29a, refuted
        1; the record itself is dropped when that history is stored)."""
        wanted: dict[Identifier, _Row] = {}
        for credential in credentials:
            expires = min(credential.expires_at, STORED_LATEST)  # SQLite's INTEGER (61a, 3)
            row = _Row(expires, credential.links[0].subject, since)  # members
            wanted[credential.authority] = _merge(wanted.get(credential.authority, row), row)
        if identifier in self._refuted:  # rarely: none of a liar's word (`refuted`)
            liars = self._liars(identifier, wanted.keys(), self._feeds(), real=history)
            wanted = {a: r for a, r in wanted.items() if a not in liars}
        held = self._held.get(identifier, _EMPTY)
        if all(_holds(held, a, r) for a, r in wanted.items()):
            return True  # the usual case (a re-check, a known member): no lock, no write
        with self._lock:
            held = self._held.get(identifier, _EMPTY)
            new = {
                a: _merge(held[a], r) if a in held else r
                for a, r in wanted.items()
                if not _holds(held, a, r)
            }
            if not new:
                return True
            if not self._room(identifier, new):
                return False
            with self._store.transaction():
                for authority, row in new.items():
                    self._store.vouch(
                        identifier.digest,
                        authority.digest,
                        row.expires_at,
                        row.member.digest,
                        row.since,
                    )
            self._put(identifier, {**self._held.get(identifier, _EMPTY), **new})
            if new.keys() - held.keys() or any(
                held[a].since != r.since for a, r in new.items() if a in held
            ):  # a new authority, or one whose word now counts on more histories (`standing`)
                self.generation += 1
        return True

    def standing(self, identity: VerifiedIdentity) -> Set[Identifier]:
        """Those of `of` whose word counts on the history `identity` (docs/formats.md, "Whose
        word counts on an identity"): for a full history (tied to the identifier by its own
        hash), the authorities that vouched for it with a history holding a change it holds
        (the row's `since`; a row that does not say: any history), so an authority whose only
        word on the identity was about another line of history (a change it made up after a
        gap: review 27h) does not judge it; for a checkpointed one (its own link is only its
        checkpoint's word), every one of `of`. Memory only."""
        held = self._held.get(identity.identifier, _EMPTY)
        if identity.first_index != 0:
            return held.keys()
        return {
            authority
            for authority, row in held.items()
            if row.since is None or _holds_change(identity, *row.since)
        }

    def refuted(self, identifier: Identifier, copy: UnverifiedHistory) -> None:
        """Forget the rows of `identifier` whose authority's held feed names a change of `copy`,
        a stored copy of its history shown made up (troth.identity.known), in any supersession
        (`VerifiedFeed.ever_named`: a newer one naming another change at that index takes
        nothing back, review 26b, refuted 1): that authority attested a change no valid history
        holds, so its word on the identity was about another history. Else a co-trusted
        authority that made up a change of another's member and vouched for it, as her, would
        judge her real history (its supersession refusing it, or a revocation): one authority
        cutting the node off from another's member (review 23a, checkpoints 3). The callback
        of the process that replaced the copy; every other one (and this one after a crash)
        applies the changes recorded with the replacement (`load`, `forget_refuted`)."""
        changes = frozenset(refuted_changes(copy))
        with self._lock:
            self._refuted[identifier] = self._refuted.get(identifier, frozenset()) | changes
            self._forget_liars(identifier, self._feeds())

    def forget_refuted(self) -> None:
        """Read the made-up changes recorded in the store (another process may have replaced
        the copy, or this one crashed before its `refuted` callback ran: review 26b, refuted 2)
        and forget the rows whose authority's held feed names one of their identity's. Call it
        once the feeds are held: at a reload, and in the node's maintenance (a feed synced
        since, another process's replacement). The memory of refuted changes is replaced by
        the records read: one dropped since (a history linked here holds it: review 29a,
        refuted 1) no longer counts, and a copy shown made up at a check only (not replaced,
        nothing recorded) counts until then, as it did until a restart before."""
        feeds = self._feeds()
        with self._lock:  # read under the lock: a `refuted` callback (its changes committed
            # before it runs) is wholly before the read or after the replacement below
            recorded: dict[Identifier, set[tuple[int, bytes]]] = {}
            for digest, index, change_hash in self._store.refuted():
                recorded.setdefault(Identifier(digest), set()).add((index, change_hash))
            # replaced, not merged: a change a history linked here holds is no longer
            # recorded refuted (troth.identity.known: review 29a, refuted 1)
            self._refuted = {i: frozenset(c) for i, c in recorded.items()}
            for identifier in list(self._refuted):
                self._forget_liars(identifier, feeds)

    def _liars(
        self,
        identifier: Identifier,
        authorities: Iterable[Identifier],
        feeds: Mapping[Identifier, VerifiedFeed],
        *,
        real: VerifiedIdentity | None = None,
    ) -> set[Identifier]:
        """Those of `authorities` whose held feed names a made-up change of `identifier`, in
        any supersession it holds (`refuted`), but for the changes `real` holds when it is a
        full history (tied to the identifier by its own hash: they are its changes)."""
        changes = self._refuted.get(identifier, frozenset())
        if real is not None and real.first_index == 0:
            changes = frozenset(c for c in changes if not _holds_change(real, *c))
        digest = identifier.digest
        return {
            authority
            for authority in authorities
            if (feed := feeds.get(authority)) is not None
            and any(feed.ever_named(digest, index, h) for index, h in changes)
        }

    # -- under the lock ----------------------------------------------------------------------------

    def _forget_liars(
        self, identifier: Identifier, feeds: Mapping[Identifier, VerifiedFeed]
    ) -> None:
        """Forget `identifier`'s rows of the authorities that named a made-up change of it, in
        the store, then in memory (a stored row another process renewed meanwhile is left to
        the next reload, which reads it and forgets it again)."""
        held = self._held.get(identifier, _EMPTY)
        lied = self._liars(identifier, held.keys(), feeds)
        for authority in lied:
            self._store.settle(authority.digest, [(identifier.digest, held[authority][0])], [])
            self._forget(identifier, authority)
        if lied:
            self.generation += 1

    def _room(self, identifier: Identifier, new: Mapping[Identifier, _Row]) -> bool:
        """Whether `identifier` may hold the `new` rows too, sweeping once a bound is reached:
        its own rows, then those of a member whose share it would join, then every row."""
        for _ in range(_SWEEP_ROUNDS):
            held = self._held.get(identifier, _EMPTY)
            if len(new.keys() | held.keys()) > limits.MAX_VOUCHERS_PER_IDENTITY:
                settled = self._sweep(only=frozenset({identifier}))
            elif full := [
                member
                for member in {row.member for row in new.values()}
                if identifier not in (rooted := self._members.get(member, set()))
                and len(rooted) >= limits.MAX_VOUCHED_PER_MEMBER
            ]:
                settled = self._sweep(member=full[0])
            elif (
                not held
                and len(self._held) >= limits.MAX_VOUCHED_IDENTITIES
                and not self._within_shares(new)
            ):
                settled = self._sweep()
            else:
                return True
            if not settled:
                return False
        return False

    def _within_shares(self, new: Mapping[Identifier, _Row]) -> bool:
        """Whether each authority of the `new` rows holds rows for fewer identities than its
        share of MAX_VOUCHED_IDENTITIES (split evenly between the authorities whose feeds are
        held): such an identity is remembered past the node's bound, so the members of one
        authority (which mints them for free) cannot fill the memory for another's, and the
        memory stays within twice the bound."""
        share = limits.MAX_VOUCHED_IDENTITIES // max(1, len(self._feeds()))
        return all(self._authorities[authority] < share for authority in new)

    def _sweep(
        self, *, only: Set[Identifier] = frozenset(), member: Identifier | None = None
    ) -> int:
        """Forget the lapsed rows that can no longer change a judgment and mark those whose
        authority spoke kept for good: up to VOUCHER_SWEEP_ROWS of each authority (the rows of
        the identities in `only`, or those rooted at `member`, when given). How many rows it
        settled (0: no progress)."""
        settled = 0
        for authority, feed in self._feeds().items():
            if not feed.complete:
                continue  # entries may be missing: nothing it might say is known yet
            until = feed.issued_at - LAPSE_MARGIN
            if only:
                rows = [
                    (i.digest, e)
                    for i in only
                    if (e := _expiry(self._held.get(i, _EMPTY), authority)) >= 0 and e <= until
                ]
            else:
                rows = self._store.lapsed(
                    authority.digest,
                    until,
                    limits.VOUCHER_SWEEP_ROWS,
                    None if member is None else member.digest,
                )
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
        self._put(identifier, {a: r for a, r in held.items() if a != authority})

    def _put(self, identifier: Identifier, rows: Mapping[Identifier, _Row]) -> None:
        """Replace `identifier`'s entry (none: forget it) and its place in the members' counts."""
        held = self._held.get(identifier, _EMPTY)
        self._authorities.subtract(held.keys() - rows.keys())
        self._authorities.update(rows.keys() - held.keys())
        before = {row.member for row in held.values()}
        after = {row.member for row in rows.values()}
        if rows:
            self._held[identifier] = rows
        else:
            self._held.pop(identifier, None)
        for member in before - after:
            rooted = self._members[member]
            rooted.discard(identifier)
            if not rooted:
                del self._members[member]
        for member in after - before:
            self._members.setdefault(member, set()).add(identifier)


def _merge(held: _Row, new: _Row) -> _Row:
    """One row of `held` and `new` (of one authority for one identity): the later expiry with
    its member, and the older `since` (a lower index; None, any history, wins)."""
    later = new if new.expires_at > held.expires_at else held
    if held.since is None or new.since is None:
        since: Since = None
    else:
        since = new.since if new.since[0] < held.since[0] else held.since
    return _Row(later.expires_at, later.member, since)


def _holds(held: Mapping[Identifier, _Row], authority: Identifier, row: _Row) -> bool:
    """Whether `held` has `authority`'s `row` already: no later expiry, no older `since`."""
    have = held.get(authority)
    return have is not None and _merge(have, row) == have


def _holds_change(identity: VerifiedIdentity, index: int, change_hash: bytes) -> bool:
    """Whether `identity` holds change `index` with hash `change_hash`."""
    offset = index - identity.first_index
    return 0 <= offset < len(identity.changes) and (
        identity.changes[offset].change_hash == change_hash
    )


def _expiry(held: Mapping[Identifier, _Row], authority: Identifier) -> int:
    """When the newest chain of `authority` held for an identity expires (-1: none)."""
    row = held.get(authority)
    return -1 if row is None else row.expires_at
