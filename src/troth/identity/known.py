"""Store-or-extend: every history a node verifies is recorded, and later only an equal or longer
copy of it is accepted (docs/formats.md, "Pre-rotation and stored histories").

A rollback (an older prefix, e.g. presented from a stolen backup after the owner rotated) is
refused as ROLLBACK, a different continuation as FORK. Changes are compared by index and hash,
so a stored full history accepts a checkpointed suffix that extends it (and the other way
round). A stored copy from a checkpoint whose first change does not follow the change it names
as previous, once a history holding that change shows it, is made up (no valid history holds
it: review 23a, checkpoints 3): it refuses nothing, `observe` replaces it, records its changes
(`IdentityStore.add_refuted`, in the same transaction: every process and a restart see them),
and the `refuted` callback is given it. A copy from a checkpoint whose link to the identifier was
never checked here binds a full history it forks from or rolls back only when an authority
attesting it has standing over that history (`Binds`, given by the caller: review 27h, gap);
one that does not bind it is replaced the same way once its presenter is admitted (`observe`),
never by a check; a full history ending at such a copy's last change is stored over it, linked,
and a history stored linked drops the refuted records of the changes it holds (they are hers:
`IdentityStore.drop_refuted`, review 29a). A full copy that an admitted peer's full history
forks from is replaced by it when the word of the authorities with standing over both says the
copy is superseded (`Outranks`, given by the caller), and kept as fork evidence (review 54i,
identity 2: a thief's fork seen first refused her for good). The decision and the write are one
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

import contextlib
import enum
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final, NamedTuple

from troth import limits
from troth.clock import Clock
from troth.crypto import sha256
from troth.errors import DecodeError, IdentityError, IdentityFailure, StorageError, TrothError
from troth.identity.change import ChangeBody, UnverifiedHistory
from troth.identity.history import (
    VerifiedChange,
    VerifiedIdentity,
    check_extends,
    check_follows,
    indexed_hashes,
)
from troth.identity.identifier import Identifier
from troth.storage import IdentityStore

__all__ = [
    "KNOWN_CACHE_SECONDS",
    "KNOWN_CACHE_SIZE",
    "Binds",
    "KnownHistories",
    "Outranks",
    "OverCopy",
    "Refuted",
    "StoredSpan",
    "copy_conflict",
    "refuted_changes",
]

KNOWN_CACHE_SECONDS: Final = 10.0
"""How long a cached copy of a stored history is trusted before the store is read again."""
KNOWN_CACHE_SIZE: Final = 4096
"""Cached identities at most, the pinned ones aside (when full, the older half of the others is
dropped)."""

Refuted = Callable[[Identifier, UnverifiedHistory], None]
"""Told of a stored copy shown made up (the identity, the copy): whoever attested it lied; or
of one an admitted peer's full history replaced as not bound by it (`Binds`): whoever attested
it spoke of another history than hers."""

Binds = Callable[[Sequence[tuple[int, bytes]]], bool]
"""Given the (index, hash) of each change of a stored copy from a checkpoint, whether it binds
the full history judged now: an authority whose held feed names one of them has standing over
that history (the root of a chain its presenter shows now, or one that vouched for it with a
history holding a change this one holds), or no held feed names any (docs/formats.md, "A stored
copy from a checkpoint"). Asked only of a copy whose link to the identifier was never checked
here, that the history forks from or rolls back and does not show made up."""


class OverCopy:
    """The operator's explicit word (`troth enroll --over-copy`) on an enrollment ticket's
    authority history: a stored copy from a checkpoint whose link was never checked here, that
    the history conflicts with (`copy_conflict`) and that `rule` (the node's `Binds`) says
    does not bind it, is replaced, the history full or (pinned, so tied) from a checkpoint, and
    its changes recorded refuted. Never a linked copy (the caller requires it), a copy whose
    attester has standing over the history (`rule`), nor a copy that follows the history's
    change before its first (a continuation or made up: judged as ever). Given only for an
    enrollment ticket (review 67i, enroll)."""

    __slots__ = ("rule",)

    def __init__(self, rule: Binds) -> None:
        self.rule = rule

    def __call__(self, changes: Sequence[tuple[int, bytes]]) -> bool:
        return self.rule(changes)


_REFUTABLE: Final = (IdentityFailure.FORK, IdentityFailure.ROLLBACK)


class _Seen(enum.Enum):
    """How a verified history stands against the stored copy (when it neither forks from nor
    rolls back one that is not made up)."""

    STORED = 1  # the stored copy itself
    NEW = 2  # it extends the stored copy
    REFUTED = 3  # it shows the stored copy made up
    UNBOUND = 4  # a copy from a checkpoint that does not bind it (`Binds`)
    LINKS = 5  # her full history, ending at the stored copy from a checkpoint's last change
    FIRST = 6  # none stored (so no local identity's either)
    OUTRANKED = 7  # a full copy it forks from that her authorities' word supersedes (`Outranks`)


_UNCHANGED: Final = (_Seen.STORED, _Seen.LINKS, _Seen.FIRST)
"""What continues no stored copy past its last change (none stored, so no local identity;
her own changes up to it): `_own_only` need not look for a local identity."""
_LOCAL_ONLY: Final = "a local identity is rotated only by its own node"


class StoredSpan(NamedTuple):
    """The changes of a stored copy: the index of its first one and their hashes in order."""

    first: int
    hashes: tuple[bytes, ...]

    @property
    def last(self) -> int:
        return self.first + len(self.hashes) - 1

    def hash_at(self, index: int) -> bytes | None:
        """The hash of change `index`, if the copy holds it."""
        return self.hashes[index - self.first] if self.first <= index <= self.last else None


Outranks = Callable[[StoredSpan], bool]
"""Given a stored full copy the full history judged now forks from, whether the word of the
authorities with standing over both says the history is hers and the copy is not: every
authority that vouched for the identity here (none: every one the node trusts, review 54m,
identity 2) is a root of a chain its presenter shows now, and its held feed names a change the
history holds where the copy holds another (docs/formats.md,
"Pre-rotation and stored histories"; review 54i, identity 2: else a thief's fork stored first
refused her for good, whatever her authority said)."""


def _span(identity: VerifiedIdentity) -> StoredSpan:
    return StoredSpan(identity.first_index, tuple(c.change_hash for c in identity.changes))


class KnownHistories:
    """The append-only record of verified histories over an IdentityStore (store-or-extend)."""

    def __init__(
        self,
        store: IdentityStore,
        clock: Clock,
        *,
        cache_seconds: float = KNOWN_CACHE_SECONDS,
        refuted: Refuted | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._refuted = refuted
        self._cache: dict[bytes, tuple[float, StoredSpan]] = {}
        self._pins: dict[bytes, int] = {}  # digest: how many pinned it (`pin`)
        self._lock = threading.Lock()

    def observe(
        self,
        identity: VerifiedIdentity,
        *,
        binds: Binds | None = None,
        linked: bool = False,
        outranks: Outranks | None = None,
    ) -> None:
        """Record `identity` if it is new or extends the stored copy, or shows it made up, or
        is a full history a copy from a checkpoint does not bind (`binds`; None: every copy
        binds); raise IdentityError (FORK, ROLLBACK, IDENTIFIER_MISMATCH) if it neither equals
        nor extends it. Give `binds` only for a presenter already admitted: the copy is then
        replaced and its changes recorded refuted. `linked`: the caller checked the link of a
        history from a checkpoint to its identifier (an authority pin confirmed out of band:
        review 30a, enrollment 7), so it is stored linked as a full one is. A FORK is kept as
        evidence (`_keeping_forks`); so is a full copy `outranks` says is superseded, replaced
        (review 54i, identity 2)."""
        with self._keeping_forks(identity):
            seen = self._judge(identity, binds, tell=False, outranks=outranks)
            if seen is not _Seen.STORED:
                # tells `refuted` of a copy it replaces; stores her full history over a copy
                # from a checkpoint ending at the same change (`_Seen.LINKS`: review 29a)
                self._store_or_extend(identity, binds, linked, outranks)
            elif linked and identity.first_index > 0:
                self._link(identity)

    @contextmanager
    def _keeping_forks(self, identity: VerifiedIdentity) -> Iterator[None]:
        """Keep `identity` as evidence (`IdentityStore.add_fork`) when the judgment inside
        refuses it as a FORK (review 49c, forks 1: with the stored copy, the signed proof that
        two rotations were made with the identity's keys, one by a copy's holder, went with the
        refusal). Its first change the stored copy does not hold
        must be one whose previous-key signature `verify_history` checked: not the first of
        a checkpointed history (its checkpoint's word). Best effort, in a transaction of its
        own, after the judgment's rolled back: the refusal stands whatever happens to it (a
        caller's transaction that the refusal rolls back drops it too)."""
        try:
            yield
        except IdentityError as exc:
            if exc.reason is IdentityFailure.FORK:
                with contextlib.suppress(TrothError):
                    self._keep_fork(identity, exc.change)
            raise

    def _keep_fork(self, identity: VerifiedIdentity, change: int | None) -> None:
        """`_keeping_forks`: the write lock is taken only for a fork not kept yet and within
        the identity's bound (a fork once public is anyone's to replay, at every handshake)."""
        digest = identity.identifier.digest
        if change is None:  # a local identity's continuation: the change after its own
            stored = self._store.get_history(digest)
            if stored is None:
                return
            change = _stored_span(stored[0]).last + 1
        if not identity.first_index < change <= identity.current.index:
            return
        forking = identity.changes[change - identity.first_index].change_hash
        kept = self._store.forks(digest)
        if len(kept) >= limits.MAX_FORKS_PER_IDENTITY or any(
            k.change_hash == forking for k in kept
        ):
            return
        with self._store.transaction():
            self._store.add_fork(digest, change, forking, identity.history, self._clock.now())

    def _link(self, identity: VerifiedIdentity) -> None:
        """Mark the stored copy that ends at `identity`'s last change linked: the caller tied
        `identity` to its identifier (an authority pin), and the copy holds that very change
        (its hash links every earlier one), so it is tied as well (review 31a, enrollment 2:
        else a pinned ticket equal to a copy from a checkpoint linked nothing, and every next
        ticket asked for the pin again). A local identity's rows stand as they are."""
        digest = identity.identifier.digest
        with self._store.transaction():
            stored = self._store.get_history(digest)
            if (
                stored is None
                or self._store.history_checked(digest)
                or self._store.find_local(identifier=digest) is not None
                or _stored_span(stored[0]).hashes[-1] != identity.current_change_hash
            ):
                return
            self._store.update_history(
                digest, stored[0], stored[1], stored[1], self._clock.now(), linked=True
            )
            _confirm(self._store, identity)

    def check(
        self,
        identity: VerifiedIdentity,
        *,
        binds: Binds | None = None,
        outranks: Outranks | None = None,
    ) -> None:
        """Raise IdentityError as `observe` would, but store nothing (for a requester not yet
        authorised: a stranger must not be able to fill the store). A copy that does not bind
        it (`binds`), or that `outranks` says is superseded, is left as it is, and no one is
        told of it. A FORK is kept as evidence
        (`_keeping_forks`: signed with the identity's keys, whoever presents it)."""
        with self._keeping_forks(identity):
            if self._judge(identity, binds, outranks=outranks) not in _UNCHANGED:
                self._own_only(identity)

    def check_no_fork(self, identity: VerifiedIdentity) -> None:
        """Raise IdentityError (FORK, IDENTIFIER_MISMATCH, a gap) unless `identity` equals,
        extends or is an older prefix of the stored copy (what a signature made before a
        rotation carries); store nothing. A prefix that ends before a checkpointed stored copy
        begins is accepted only when this node stores a row of its last change (a local
        identity's), else refused as a gap: deny when in doubt. A FORK is kept as evidence."""
        with self._keeping_forks(identity):
            self._no_fork(identity)

    def _no_fork(self, identity: VerifiedIdentity) -> None:
        """`check_no_fork`, its evidence aside."""
        try:
            seen = self._judge(identity)
        except IdentityError as exc:
            if exc.reason is not IdentityFailure.ROLLBACK:
                raise
            known = self.stored(identity.identifier.digest)
            last = identity.current.index
            if known is not None and last < known.first:
                # no change in common with the stored suffix: only a stored row of change
                # `last` shows a prefix (hash-linked: equal last hashes, equal histories)
                stored = self._store.change_hash(identity.identifier.digest, last)
                if stored != identity.current_change_hash:
                    raise IdentityError(
                        IdentityFailure.UNATTESTED_CHECKPOINT,
                        f"it ends at change {last}, before the stored copy's first change "
                        f"({known.first}): nothing here shows it is an older prefix",
                        last,
                    ) from None
        else:
            if seen not in _UNCHANGED:
                self._own_only(identity, older=True)

    def _own_only(self, identity: VerifiedIdentity, *, older: bool = False) -> None:
        """Raise FORK when `identity` would change the stored history of a local identity, as
        `_store_or_extend` does: only its own node rotates it, so a change it did not make is
        a thief's (a copy of its vault holds the committed next key: review 49c, local 1: the
        checks that store nothing passed it, and the owner's node called the thief's rotation
        of its own identity valid). Judged by the copy the store holds: another process of the
        node may have rotated it since the cache was filled, and its own newer history passes.
        `older`: an older prefix of that copy passes (`check_no_fork`)."""
        digest = identity.identifier.digest
        if self._store.find_local(identifier=digest) is None:
            return
        stored = self._store.get_history(digest)
        if stored is None:
            return
        try:
            seen = self._extends(digest, stored[0], identity, None)
        except IdentityError as exc:
            if older and exc.reason is IdentityFailure.ROLLBACK:
                return
            raise
        if seen not in _UNCHANGED:
            raise IdentityError(IdentityFailure.FORK, _LOCAL_ONLY)

    def outgrown(self, identity: VerifiedIdentity) -> bool:
        """Whether a copy of `identity`'s history that this process stored or read holds its
        current change and a later one: it is an older prefix of that copy (a stale backup's,
        after the owner's rotation was stored here). From memory only, whatever the entry's
        age (a stored history only grows, and the changes after one it holds are signed
        rotations), for decisions made on the event loop (review 55j, rotation 1); False when
        nothing is cached (a digest an open channel pinned keeps its entry: `pin`)."""
        with self._lock:
            entry = self._cache.get(identity.identifier.digest)
        if entry is None:
            return False
        span, current = entry[1], identity.current
        return span.last > current.index and span.hash_at(current.index) == current.change_hash

    def pin(self, digest: bytes) -> None:
        """Keep the cached copy of `digest` (when there is one, or once there is) out of the
        cache's eviction until as many `unpin`s: what `outgrown` answers for an open channel's
        peer and issuers (review 55m, rotation 1: 4096 other histories stored after the
        owner's rotation evicted it, and the stolen backup's channel passed again until the
        next re-check). Reference-counted, by digest (a longer copy stored over it stays
        pinned); the pinned entries are bounded by the open channels of the caller."""
        with self._lock:
            self._pins[digest] = self._pins.get(digest, 0) + 1

    def unpin(self, digest: bytes) -> None:
        """Release one `pin` of `digest` (its entry is evicted as any other once none holds)."""
        with self._lock:
            held = self._pins.get(digest, 0) - 1
            if held > 0:
                self._pins[digest] = held
            else:
                self._pins.pop(digest, None)

    def pinned(self) -> int:
        """How many digests are pinned now."""
        with self._lock:
            return len(self._pins)

    def stored(self, digest: bytes) -> StoredSpan | None:
        """The changes of the stored copy of `digest` (cached for `cache_seconds`)."""
        known = self._cached(digest)
        if known is None:
            stored = self._store.get_history(digest)
            if stored is not None:
                known = self.remember(digest, _stored_span(stored[0]))
        return known

    def _judge(
        self,
        identity: VerifiedIdentity,
        binds: Binds | None = None,
        *,
        tell: bool = True,
        outranks: Outranks | None = None,
    ) -> _Seen:
        """How `identity` stands against the stored (or cached) copy; raise if it neither
        equals nor extends it, unless it shows it made up (then `tell` the `refuted`
        callback), the copy does not bind it (`binds`: no one told) or `outranks` says the
        full copy it forks from is superseded."""
        digest = identity.identifier.digest
        known = self.stored(digest)
        if known is None:
            return _Seen.FIRST
        if known.hashes[-1] == identity.current_change_hash:
            return _equal(known, identity)  # hash-linked changes, equal last hash, equal all
        if identity.first_index != known.last + 1:
            try:
                check_extends(known.hashes, identity, stored_first=known.first)
                return _Seen.NEW
            except IdentityError as exc:
                if exc.reason not in _REFUTABLE or (
                    known.first == 0 and (outranks is None or not _may_outrank(identity, exc))
                ):
                    raise
                # a copy from a checkpoint, which `identity` may show made up, or a full one
                # `outranks` may judge: by the copy the store holds (another process may have
                # replaced it already)
        # else, rarely: its first link is checked against the stored copy's last change, read
        # from the store, which another process may have extended or replaced (with this very
        # history, say) since `known` was cached: judged by what the store holds (review 24a,
        # known 1)
        stored = self._store.get_history(digest)
        if stored is None:
            return _Seen.FIRST
        seen = self._extends(digest, stored[0], identity, binds, outranks)
        if seen is _Seen.REFUTED and tell and self._refuted is not None:
            self._refuted(identity.identifier, _decode(stored[0]))
        return seen

    def _extends(
        self,
        digest: bytes,
        history: bytes,
        identity: VerifiedIdentity,
        binds: Binds | None,
        outranks: Outranks | None = None,
    ) -> _Seen:
        """How `identity` stands against the stored copy `history`; raise unless it is that
        copy, extends it (a history starting right after it following its last change as a
        rotation does: `check_extends` given that change: review 23a, checkpoints 4), shows
        it made up (`_made_up`), is not bound by it (`_unbound`) or is a full history whose
        authorities' word supersedes the full copy it forks from (`outranks`)."""
        copy = _decode(history)
        span = StoredSpan(copy.first_index, tuple(sha256(c.body) for c in copy.changes))
        self.remember(identity.identifier.digest, span)
        if span.hashes[-1] == identity.current_change_hash:
            return _equal(span, identity)
        follows = identity.first_index == span.last + 1
        try:
            check_extends(
                span.hashes,
                identity,
                stored_first=span.first,
                stored_last=copy.changes[-1] if follows else None,
            )
        except IdentityError as exc:
            if exc.reason in _REFUTABLE:
                if _made_up(copy, identity):
                    return _Seen.REFUTED
                if _unbound(copy, identity, binds) and not self._store.history_linked(digest):
                    return _Seen.UNBOUND
                if (
                    span.first == 0
                    and outranks is not None
                    and _may_outrank(identity, exc)
                    and outranks(span)
                ):
                    return _Seen.OUTRANKED
            raise
        return _Seen.NEW

    def _store_or_extend(
        self,
        identity: VerifiedIdentity,
        binds: Binds | None,
        tied: bool = False,
        outranks: Outranks | None = None,
    ) -> None:
        digest = identity.identifier.digest
        count = identity.change_count
        # its link to the identifier checked here (a full history, or one the caller tied)
        full = identity.first_index == 0 or tied
        refuted: bytes | None = None
        stepped_back = False  # a copy replaced: the cache steps back to the store
        with self._store.transaction():
            stored = self._store.get_history(digest)
            if stored is None:
                now = self._clock.now()
                self._store.insert_history(digest, identity.history, count, now, linked=full)
                if full:
                    _confirm(self._store, identity)
            else:
                seen = self._extends(digest, stored[0], identity, binds, outranks)
                replaced = seen in (_Seen.REFUTED, _Seen.UNBOUND, _Seen.OUTRANKED)
                write = replaced or count > stored[1] or seen is _Seen.LINKS
                if write and self._store.find_local(identifier=digest) is not None:
                    if seen is not _Seen.LINKS:
                        raise IdentityError(IdentityFailure.FORK, _LOCAL_ONLY)
                    write = False  # its own rows stand: nothing to link
                if write:
                    # an extension keeps the stored copy's link (checked, or a checkpoint's
                    # word), a replacement has its own (review 27h, gap)
                    linked = True if full else (False if replaced else None)
                    self._store.update_history(  # compare-and-swap on the change count
                        digest,
                        identity.history,
                        count,
                        stored[1],
                        self._clock.now(),
                        linked=linked,
                    )
                    stepped_back = replaced
                    if seen is _Seen.OUTRANKED:
                        # kept as evidence, as a fork refused is: two rotations were signed
                        # with her keys, the copy's by a thief (review 54i, identity 2)
                        self._keep_outranked(identity, stored[0])
                        _confirm(self._store, identity)
                    elif replaced:
                        refuted = stored[0]
                        # recorded with the replacement, for every process and a restart:
                        # the `refuted` callback below runs only here, after the commit
                        # (review 26b, refuted 2); a copy that did not bind an admitted
                        # peer's full history as well: its attesters' word was about another
                        # history (review 27h, gap)
                        self._store.add_refuted(digest, refuted_changes(_decode(refuted)))
                    elif full or self._store.history_linked(digest):
                        _confirm(self._store, identity)
        # once committed (a caller's transaction may hold this one and roll it back: review
        # 31a, requests 1): a made-up copy replaced, the cache steps back to this one
        self._store.after_commit(lambda: self._stored(identity, refuted, stepped_back))

    def _keep_outranked(self, identity: VerifiedIdentity, copy: bytes) -> None:
        """Keep the full copy `identity` replaces as an `outranks` said (`_Seen.OUTRANKED`) as
        fork evidence (`IdentityStore.add_fork`), in the replacing transaction."""
        for index, change_hash in enumerate(indexed_hashes(copy)[1]):
            if index > identity.current.index or (
                identity.changes[index].change_hash != change_hash
            ):
                now = self._clock.now()
                self._store.add_fork(identity.identifier.digest, index, change_hash, copy, now)
                return

    def _stored(self, identity: VerifiedIdentity, refuted: bytes | None, replaced: bool) -> None:
        """What follows a committed store-or-extend of `identity`: the cache, and the
        `refuted` callback told of the copy it replaced (`refuted`, when it did), even when
        reading the store for the cache fails (the entry is dropped then). `replaced`: a copy
        was replaced (the cache steps back to what the store holds)."""
        digest = identity.identifier.digest
        if not replaced:
            self.remember(digest, _span(identity))  # never steps a fresher entry back
        else:
            # the cache steps back to what the store holds now, read under the cache's lock:
            # another writer may have committed (a rotation) since this commit, its own
            # callback run already, and `identity` is then older than the store (review 32a,
            # commit 1: a pre-rotation history passed as the stored copy for the cache's 10 s)
            with self._lock:
                self._cache.pop(digest, None)  # a failed read leaves the store to be read
                try:
                    stored = self._store.get_history(digest)
                except StorageError:
                    # the write committed and the hooks below must be told: a cache miss is
                    # all a failed read costs (review 33a, commit 1)
                    stored = None
                if stored is not None:
                    self._put(digest, _stored_span(stored[0]), replace=True)
        if refuted is not None and self._refuted is not None:
            self._refuted(identity.identifier, _decode(refuted))

    def remember_identity(self, identity: VerifiedIdentity) -> None:
        """Cache the changes of `identity`, which this process has just stored."""
        self.remember(identity.identifier.digest, _span(identity))

    def remember(self, digest: bytes, span: StoredSpan, *, replace: bool = False) -> StoredSpan:
        """Cache the changes of a stored copy (after a read or this process's write) and
        return what the cache now holds: a fresh entry ending later is never replaced by one
        ending earlier (a reader that raced a writer must not step the cache back), unless
        `replace` (this process just replaced a made-up copy)."""
        with self._lock:
            return self._put(digest, span, replace=replace)

    def _put(self, digest: bytes, span: StoredSpan, *, replace: bool) -> StoredSpan:
        """`remember`, the cache's lock held."""
        now = time.monotonic()
        entry = self._cache.pop(digest, None)
        if (
            not replace
            and entry is not None
            and entry[1].last > span.last
            and self._fresh(entry, now)
        ):
            self._cache[digest] = entry
            return entry[1]
        pins = self._pins
        if len(self._cache) >= KNOWN_CACHE_SIZE + len(pins):
            # at least KNOWN_CACHE_SIZE unpinned: the older half of them goes, the pinned stay
            # (amortised O(1 + pins / KNOWN_CACHE_SIZE) a put)
            unpinned = [d for d in self._cache if d not in pins]
            gone = frozenset(unpinned[: len(unpinned) // 2])
            self._cache = {d: e for d, e in self._cache.items() if d not in gone}
        self._cache[digest] = (now, span)
        return span

    def _cached(self, digest: bytes) -> StoredSpan | None:
        entry = self._cache.get(digest)
        if entry is None or not self._fresh(entry, time.monotonic()):
            return None
        return entry[1]

    def _fresh(self, entry: tuple[float, StoredSpan], now: float) -> bool:
        return now - entry[0] <= self._cache_seconds


@contextmanager
def _stored_copy() -> Iterator[None]:
    """Decoding the stored copy: a DecodeError is IdentityError(MALFORMED) naming it."""
    try:
        yield
    except DecodeError as exc:
        raise IdentityError(IdentityFailure.MALFORMED, f"the stored copy: {exc}") from None


def _decode(history: bytes) -> UnverifiedHistory:
    with _stored_copy():
        return UnverifiedHistory.decode(history)


def _made_up(copy: UnverifiedHistory, identity: VerifiedIdentity) -> bool:
    """Whether `identity` shows the stored copy `copy`, from a checkpoint, made up: it holds
    the change the copy's first change names as previous (by hash: that very change), and the
    copy's first change does not follow it as a rotation must (`check_follows`: the key
    committed to, the times). No valid history holds such a change, whoever presents the
    proof: only its checkpoint's authority vouched for it (a co-trusted authority making up a
    change of another's member: review 23a, checkpoints 3). The change's body is judged, not
    the copy's previous-key signature: a checkpoint vouches for the hash, which covers the body
    only, so a copy of her real change with that signature mangled (zeros) is still her real
    change, and an older history of hers (a stolen backup) is a rollback of it, not a proof
    (review 28b, refuted 1). A body that follows commits to a key only she held: not made up."""
    index = copy.first_index
    if index == 0 or not identity.first_index < index <= identity.current.index + 1:
        return False
    before = identity.changes[index - 1 - identity.first_index]
    first = copy.changes[0]
    with _stored_copy():
        body = ChangeBody.decode(first.body)
    if body.previous != before.change_hash:
        return False  # it names another change: nothing shown here
    try:
        check_follows(
            before.signed, VerifiedChange(index, sha256(first.body), body, first), signed=False
        )
    except IdentityError:
        return True
    return False


def _may_outrank(identity: VerifiedIdentity, exc: IdentityError) -> bool:
    """Whether a full copy refusing `identity` for `exc` may be judged by an `Outranks`: a full
    history forking from it (a rollback is no one's rotation to prefer)."""
    return exc.reason is IdentityFailure.FORK and identity.first_index == 0


def _equal(known: StoredSpan, identity: VerifiedIdentity) -> _Seen:
    """How `identity`, ending at the stored copy's last change, stands: the stored copy, or
    (a full history over a copy from a checkpoint) the history that links it: stored over it,
    so its link to the identifier is checked here from now on (`identities.linked`) and it
    binds every history, as a copy that extended her full history does (review 29a, refuted
    2: else a stale backup shown with another authority's chain was admitted over a copy whose
    link this node had checked)."""
    if known.first > 0 and identity.first_index == 0:
        return _Seen.LINKS
    return _Seen.STORED


def _confirm(store: IdentityStore, identity: VerifiedIdentity) -> None:
    """Forget the recorded refutations of the changes `identity` holds, just stored as (or
    extending) a copy whose link to the identifier was checked here: they are real changes of
    it, and the authorities that named them spoke of her history (review 29a, refuted 1: a
    copy from a checkpoint an admitted stale backup replaced recorded her real change
    refuted, and its authority's voucher was refused for good)."""
    store.drop_refuted(
        identity.identifier.digest, [(c.index, c.change_hash) for c in identity.changes]
    )


def _unbound(copy: UnverifiedHistory, identity: VerifiedIdentity, binds: Binds | None) -> bool:
    """Whether the stored copy `copy`, from a checkpoint, does not bind `identity`, a full
    history (from change 0, tied to the identifier by its own hash) it forks from or rolls
    back: no authority attesting the copy has standing over `identity` (`binds`). Not when the
    copy's first change names `identity`'s change before it as previous: it follows that change
    (her own continuation, which binds whoever attests it) or is made up (`_made_up`). A
    checkpointed `identity` is bound by every copy, even one the caller tied to the identifier
    (an authority's pin): its own link is only its checkpoint's word, so a co-trusted authority
    could wipe another's copy with one it made up; and a pin does not say it is current, so a
    copy holding a change at an index of the ticket's or past its last may be the authority's
    real later history, the ticket a thief's fork signed with a stolen key and the next key it
    committed to, which the pin cannot tell apart however far the copy starts past the ticket
    (reviews 66d2 and 67e, enroll 1). The caller also requires that the copy's link was never
    checked here (`IdentityStore.history_linked`: it extended no full history). None `binds` (a
    stranger, a chain that failed, a caller that does not say): every copy binds. `OverCopy`
    (the operator's word on an enrollment ticket, full or tied): a copy it conflicts with
    (`copy_conflict`) that its rule does not say binds it (review 67i, enroll)."""
    index = copy.first_index
    if isinstance(binds, OverCopy):  # the operator's word, full or tied (review 67i, enroll)
        return copy_conflict(copy, identity) is not None and not binds.rule(refuted_changes(copy))
    if binds is None or index == 0 or identity.first_index != 0:
        return False
    if _follows_from(copy, identity):
        return False  # it names her change: judged by `_made_up`
    return not binds(refuted_changes(copy))


def _follows_from(copy: UnverifiedHistory, identity: VerifiedIdentity) -> bool:
    """Whether the first change of `copy` (from a checkpoint) names `identity`'s change before
    it as previous: her continuation, or made up (`_made_up`), never another history."""
    index = copy.first_index
    if not identity.first_index <= index - 1 <= identity.current.index:
        return False
    with _stored_copy():
        previous = ChangeBody.decode(copy.changes[0].body).previous
    return previous == identity.changes[index - 1 - identity.first_index].change_hash


def copy_conflict(copy: UnverifiedHistory, identity: VerifiedIdentity) -> int | None:
    """Where `identity` and `copy`, a stored copy from a checkpoint, disagree so that only a
    checkpoint's word (or a pin's) stands on either side: the first change both hold, held
    differently, or the copy's first change when it starts past `identity`'s last and does not
    follow from it (the copy may be the authority's real later history, or made up: this node
    cannot tell). None when they agree (one extends the other, or `identity` is an older prefix
    of the copy); when the copy follows `identity`'s change before its first (`_follows_from`:
    its continuation or made up, the rules as ever); when they part after a change both hold
    (each side's next change is signed with the keys that change committed to: a real fork,
    refused and kept as evidence, review 67e, refuted 2); and for a full copy or one `identity`
    starts after (a gap: refused as ever)."""
    first = copy.first_index
    if first == 0 or _follows_from(copy, identity):
        return None
    start, last = identity.first_index, identity.current.index
    end = first + len(copy.changes) - 1
    common = max(first, start)
    for index in range(common, min(end, last) + 1):
        if sha256(copy.changes[index - first].body) != identity.changes[index - start].change_hash:
            return index if index == common else None
    return first if last < first else None


def refuted_changes(copy: UnverifiedHistory) -> list[tuple[int, bytes]]:
    """The (index, hash) of each change of `copy`, a stored copy shown made up (no valid
    history holds any of them: its first does not follow the change before it, and each later
    one descends from it), or one that did not bind an admitted peer's full history
    (`_unbound`: its attesters spoke of another history than hers)."""
    return [(copy.first_index + i, sha256(c.body)) for i, c in enumerate(copy.changes)]


def _stored_span(history: bytes) -> StoredSpan:
    """The changes of the stored copy; a copy this troth cannot read (an older format) refuses
    every observation of that identifier rather than being replaced."""
    with _stored_copy():
        first, hashes = indexed_hashes(history)
    return StoredSpan(first, tuple(hashes))
