"""What a holder knows of an authority's revocation feed once verified: `VerifiedFeed` over an
append-only index of the revoked targets, shared along one line of growth; its freshness
(`check_feed_age`, `VerifiedFeed.check_fresh`), supersessions (`check_supersession`), the
checkpoints held feeds attest (`feed_checkpoints`), and the rows a holder stores and rebuilds it
from (docs/formats.md, "Revocation feed" and "Checkpointed histories"). Pages are verified into
a `VerifiedFeed` by troth.credentials.revocation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import InitVar, dataclass, field
from typing import Final

from troth import limits
from troth.credentials.revocation_entry import RevocationEntry, RevocationKind, Supersession
from troth.errors import (
    ArgumentError,
    CredentialError,
    CredentialFailure,
    OutOfRange,
    StorageError,
)
from troth.identity import Checkpoint, Checkpoints, Identifier, VerifiedIdentity
from troth.kinds import got
from troth.sealed import sealed
from troth.storage import FeedRow

__all__ = [
    "FeedRow",
    "VerifiedFeed",
    "check_feed_age",
    "check_supersession",
    "feed_checkpoints",
    "feed_from_store",
    "newest_copy",
    "store_rows",
]

_F = CredentialFailure
_VERIFIED: Final = object()


def check_feed_age(seconds: int, setting: str = "max_feed_age") -> int:
    """`seconds`, the oldest revocation feed a verifier accepts (`setting` names it in the
    error), if within 1 s and MAX_FEED_STALENESS_SECONDS; OutOfRange otherwise (review 36b,
    verify 1), TypeError for what is not an int (a bool included). Every function judging a
    feed's freshness checks it (`VerifiedFeed.check_fresh`, `feed_checkpoints`: review 36d,
    feed age 1)."""
    if type(seconds) is int and 1 <= seconds <= limits.MAX_FEED_STALENESS_SECONDS:
        return seconds  # hot path (every check_fresh): an exact int in range
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"{setting} is a number of seconds, not {type(seconds).__name__}")
    if not 1 <= seconds <= limits.MAX_FEED_STALENESS_SECONDS:
        raise OutOfRange(
            setting,
            seconds,
            1,
            limits.MAX_FEED_STALENESS_SECONDS,
            "seconds: the oldest revocation feed accepted",
        )
    return seconds


# -- what a holder knows: an append-only index shared along one line of growth ---------------


class _Index:
    """Targets of the entries verified so far, each with its sequence number, so that every
    `VerifiedFeed` built on this index sees exactly its own first `count` entries."""

    __slots__ = ("count", "credentials", "identities", "superseded")

    def __init__(self) -> None:
        self.count = 0
        self.credentials: dict[bytes, int] = {}
        self.identities: dict[bytes, int] = {}
        self.superseded: dict[bytes, list[tuple[int, int, bytes]]] = {}

    def add(
        self, seq: int, kind: int, target: bytes, changes: int | None, change_hash: bytes | None
    ) -> None:
        if kind == RevocationKind.CREDENTIAL:
            self.credentials.setdefault(target, seq)
        elif kind == RevocationKind.IDENTITY:
            self.identities.setdefault(target, seq)
        elif changes is not None and change_hash is not None:
            self.superseded.setdefault(target, []).append((seq, changes, change_hash))
        self.count = seq + 1

    def prefix(self, count: int) -> _Index:
        """A copy holding only the first `count` entries (to grow another line from there).
        Each dict's items are copied first, in one step under the GIL: another thread may grow
        this index meanwhile (an authority's held feed grows the one its views share: review
        63m, authority 1, RuntimeError "dictionary changed size during iteration")."""
        copy = _Index()
        copy.count = count
        copy.credentials = {t: s for t, s in list(self.credentials.items()) if s < count}
        copy.identities = {t: s for t, s in list(self.identities.items()) if s < count}
        for target, rows in list(self.superseded.items()):
            kept = [row for row in rows if row[0] < count]
            if kept:
                copy.superseded[target] = kept
        return copy


class _Revoked(Set[bytes]):
    """The targets revoked within a feed's first `count` entries (set-like: `in`, iteration)."""

    __slots__ = ("_count", "_seqs")

    def __init__(self, seqs: dict[bytes, int], count: int) -> None:
        self._seqs = seqs
        self._count = count

    def __contains__(self, target: object) -> bool:
        seq = self._seqs.get(target)  # type: ignore[call-overload]
        return seq is not None and seq < self._count

    def __iter__(self) -> Iterator[bytes]:
        count = self._count
        return (target for target, seq in list(self._seqs.items()) if seq < count)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@sealed  # no pickle, no __setstate__ (review 64n, api 4)
@dataclass(frozen=True, slots=True, eq=False)
class VerifiedFeed:
    """The first `count` entries of `authority`'s feed, verified (hash chain to a signed head).
    `latest` is how many entries the feed had at `issued_at` (the page's signed date, or when
    the holder accepted the page if that was earlier: `verify_page`): the holder is up to date
    only when `count == latest`. `new_entries` are the entries the last verified page added."""

    authority: Identifier
    count: int
    head: bytes
    latest: int
    issued_at: int
    new_entries: tuple[RevocationEntry, ...] = field(repr=False)
    _index: _Index = field(repr=False)
    _token: InitVar[object]  # not a field: replace() cannot pass it on (review 51e, verified 11)

    def __post_init__(self, _token: object) -> None:
        if _token is not _VERIFIED:
            raise TypeError("VerifiedFeed is made by verify_page or feed_from_store")

    @property
    def revoked_credentials(self) -> Set[bytes]:
        """Hashes of the revoked credentials (set-like)."""
        return _Revoked(self._index.credentials, self.count)

    @property
    def revoked_identities(self) -> Set[bytes]:
        """Digests of the revoked identities (set-like)."""
        return _Revoked(self._index.identities, self.count)

    def credential_revoked(self, credential_hash: bytes) -> bool:
        """Whether this feed revokes the credential with this hash (one hash-table look-up)."""
        seq = self._index.credentials.get(credential_hash)
        return seq is not None and seq < self.count

    def identity_revoked(self, digest: bytes) -> bool:
        """Whether this feed revokes the identity with this identifier digest."""
        seq = self._index.identities.get(digest)
        return seq is not None and seq < self.count

    @property
    def complete(self) -> bool:
        """Whether this holds every entry the feed had at `issued_at`."""
        return self.count == self.latest

    def supersession(self, identifier: Identifier) -> Supersession | None:
        """The newest supersession of `identifier` in this feed, if any."""
        rows = self._index.superseded.get(identifier.digest)
        for seq, changes, change_hash in reversed(rows or ()):
            if seq < self.count:
                return Supersession(changes, change_hash)
        return None

    def superseded(self) -> dict[bytes, Supersession]:
        """The newest supersession of each identity (by digest) this feed holds one of."""
        count, found = self.count, {}
        for target, rows in list(self._index.superseded.items()):
            for seq, changes, change_hash in reversed(rows):
                if seq < count:
                    found[target] = Supersession(changes, change_hash)
                    break
        return found

    def check_fresh(self, *, now: int, max_staleness: int) -> None:
        """Raise STALE_FEED unless the holder has every entry as of at most `max_staleness`
        seconds ago (1 s to MAX_FEED_STALENESS_SECONDS, else OutOfRange: `check_feed_age`), at
        `now`, a whole number of seconds (an ArgumentError: review 69i, caveats 2, a NaN made
        any feed fresh)."""
        check_feed_age(max_staleness, "max_staleness")
        if type(now) is not int:
            raise ArgumentError("VerifiedFeed.check_fresh", "now", "an int (seconds)", got(now))
        if self.count < self.latest:
            raise CredentialError(
                _F.STALE_FEED, f"holds {self.count} of {self.latest} entries: sync incomplete"
            )
        if now - self.issued_at > max_staleness:
            raise CredentialError(
                _F.STALE_FEED, f"issued {now - self.issued_at} s ago, limit {max_staleness} s"
            )

    def check_current(self, identity: VerifiedIdentity) -> None:
        """Raise SUPERSEDED when the feed says the identity has at least N changes and
        `identity` has fewer, or its change N-1 is another one (a stolen backup's history).
        Compared by change index, so `identity` may be a checkpointed suffix: one starting
        right after change N-1 must name it as its first change's previous; one starting
        later cannot show that it descends from change N-1 (another authority's checkpoint
        may attest a stolen backup's fork) and is refused (docs/formats.md, "Checkpointed
        histories")."""
        superseded = self.supersession(identity.identifier)
        if superseded is not None:
            check_supersession(identity, superseded)

    def binds(self, identity: VerifiedIdentity) -> bool:
        """Whether this feed ties `identity`'s presented history to its identifier, once
        `check_current` passed: a history from change 0 is tied by its first change's hash; a
        checkpointed one only when a supersession here names one of its changes (its first
        change's link is its checkpoint authority's word, which counts for that authority's
        chains only: review 23a, checkpoints 1-2)."""
        if identity.first_index == 0:
            return True
        superseded = self.supersession(identity.identifier)
        return superseded is not None and superseded.changes - 1 >= identity.first_index

    def agrees_with(self, other: VerifiedFeed) -> bool:
        """Whether the shorter of this feed and `other` (a copy of the same authority's feed)
        holds the first entries of the longer, as far as their targets show: False for two
        lines of one authority's history (a fork: restored from a backup, or its key signed
        both), whose longer copy need not hold the shorter's revocations (review 53j, feeds 1).
        Copies of one count agree iff their heads (the hash chain's) do."""
        if self.count == other.count:
            return self.head == other.head
        shorter, longer = (self, other) if self.count <= other.count else (other, self)
        count = shorter.count
        first = shorter._index.prefix(count)
        held = longer._index.prefix(count)
        return (
            first.credentials == held.credentials
            and first.identities == held.identities
            and first.superseded == held.superseded
        )

    def attests(self, identifier: bytes, index: int, change_hash: bytes) -> bool:
        """Whether a supersession in this feed names change `index` of `identifier` with
        `change_hash` (the checkpoint of a history presented from that change)."""
        rows = self._index.superseded.get(identifier)
        for seq, changes, named in reversed(rows or ()):  # the newest is the usual checkpoint
            if seq < self.count and changes == index + 1:
                return named == change_hash
        return False

    def ever_named(self, identifier: bytes, index: int, change_hash: bytes) -> bool:
        """Whether any supersession in this feed, not only the newest at that index (`attests`),
        names change `index` of `identifier` with `change_hash`: the authority gave its word on
        that change once, whatever it said after (review 26b, refuted 1)."""
        rows = self._index.superseded.get(identifier)
        return any(
            seq < self.count and changes == index + 1 and named == change_hash
            for seq, changes, named in rows or ()
        )


def newest_copy(copies: Iterable[VerifiedFeed]) -> VerifiedFeed | None:
    """Of copies of one authority's feed (files, nodes, the authority), the newest: the one
    with the most entries, then the latest issued (a feed only grows, so an older copy hides
    none of the revocations a newer one holds: review 35d, verifier 1; review 53e, feeds 1);
    None for none. CredentialError FEED_INVALID when two copies fork, the shorter not the
    longer's first entries (`VerifiedFeed.agrees_with`): the authority's history was rolled
    back (restored from a backup) or signed twice, and the longer copy need not hold the
    shorter's revocations (review 53j, feeds 1)."""
    newest: VerifiedFeed | None = None
    for feed in copies:
        if newest is None:
            newest = feed
            continue
        if not feed.agrees_with(newest):
            raise CredentialError(
                _F.FEED_INVALID,
                f"two copies of the feed of {feed.authority} fork (neither holds the other's "
                "entries): the authority's history was rolled back or signed twice",
            )
        if (feed.count, feed.issued_at) > (newest.count, newest.issued_at):
            newest = feed
    return newest


def feed_checkpoints(
    feeds: Mapping[Identifier, VerifiedFeed], *, now: int, max_staleness: int
) -> Checkpoints:
    """`verify_history(checkpoints=...)` backed by held feeds: a checkpointed history is
    accepted when a held feed, complete and fresh (at most `max_staleness` seconds old at
    `now`), has a supersession naming the first change presented: the feed of the authority
    its checkpoint names, else any other held (docs/formats.md, "Checkpointed histories"). The
    owner presents one history to every verifier, cut at one authority's checkpoint; another
    authority naming the same change attests it as well (the owner could have named that one
    instead: nothing more is accepted), so a member of two authorities verifies for a verifier
    trusting either (review 24a, two authorities 1). `max_staleness`: 1 s to
    MAX_FEED_STALENESS_SECONDS, else OutOfRange (`check_feed_age`; review 36d, feed age 1)."""
    check_feed_age(max_staleness, "max_staleness")

    def fresh_attests(feed: VerifiedFeed | None, checkpoint: Checkpoint, change: bytes) -> bool:
        if feed is None or not feed.complete or now - feed.issued_at > max_staleness:
            return False
        return feed.attests(checkpoint.identifier, checkpoint.index, change)

    def attested(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        named = Identifier(checkpoint.authority)
        if fresh_attests(feeds.get(named), checkpoint, change_hash):
            return True
        return any(
            fresh_attests(feed, checkpoint, change_hash)
            for authority, feed in feeds.items()
            if authority != named
        )

    return attested


def _feed(
    authority: Identifier,
    count: int,
    head: bytes,
    latest: int,
    issued_at: int,
    new_entries: tuple[RevocationEntry, ...],
    index: _Index,
) -> VerifiedFeed:
    return VerifiedFeed(authority, count, head, latest, issued_at, new_entries, index, _VERIFIED)


def _index_after(previous: VerifiedFeed | None) -> _Index:
    """The index to add the entries after `previous` to: its own, grown in place, when
    `previous` is its newest view; else a copy of its first `count` entries (another line of
    growth); a new one without `previous`."""
    if previous is None:
        return _Index()
    if previous.count == previous._index.count:
        return previous._index
    return previous._index.prefix(previous.count)


def feed_from_store(
    authority: Identifier,
    *,
    count: int,
    head: bytes,
    latest: int,
    issued_at: int,
    rows: Iterable[FeedRow],
    previous: VerifiedFeed | None = None,
) -> VerifiedFeed:
    """Rebuild a holder's feed from its own store, whose entries it verified when it stored
    them (so nothing is verified again): `rows` are the entries after `previous` (or all),
    in order. For the holder's store only, never for bytes from elsewhere."""
    index = _index_after(previous)
    for seq, kind, target, changes, change_hash in rows:
        index.add(seq, kind, target, changes, change_hash)
    if index.count != count:
        raise StorageError(f"the store holds {index.count} feed entries, its state says {count}")
    return _feed(authority, count, head, latest, issued_at, (), index)


def store_rows(feed: VerifiedFeed) -> list[FeedRow]:
    """The rows a holder stores for the entries a page added."""
    return [
        (
            e.seq,
            int(e.kind),
            e.target,
            None if e.extra is None else e.extra.changes,
            None if e.extra is None else e.extra.change_hash,
        )
        for e in feed.new_entries
    ]


def check_supersession(identity: VerifiedIdentity, superseded: Supersession) -> None:
    """Raise SUPERSEDED unless `identity` holds change `superseded.changes - 1` with its hash
    (directly, or as its first change's previous: a checkpointed suffix); see
    `VerifiedFeed.check_current`."""
    n = superseded.changes
    count = identity.change_count
    offset = n - 1 - identity.first_index
    if count < n:
        detail = "fewer changes"
    elif offset >= 0:
        if identity.changes[offset].change_hash == superseded.change_hash:
            return
        detail = "another change"
    elif offset == -1:
        if identity.changes[0].body.previous == superseded.change_hash:
            return
        detail = f"change {n} does not follow it"
    else:
        detail = (
            f"the history presented starts at change {identity.first_index}, after a gap: "
            f"present it from change {n - 1} or earlier"
        )
    raise CredentialError(
        _F.SUPERSEDED,
        f"{identity.identifier}: {count} change(s) presented, the authority knows "
        f"change {n - 1}: {detail}",
    )
