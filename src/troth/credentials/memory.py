"""What a store-less `ChainVerifier` remembers of the histories it verified (docs/formats.md,
"Pre-rotation and stored histories"; review 38d, memory 1).

Without a store (`known`), a verifier remembers every change's hash of the newest full history
of each identity it verified in a chain that passed, and refuses an issuer or presenter history
that ends before it or forks from it: a verifier that saw a rotation refuses the retired key's
chains before the feed names the rotation. The memory is bounded by entries and changes, in all
(`SEEN_IDENTITIES`, `SEEN_CHANGES`: the root authority holding the most forgets its oldest first,
review 42a, memory 1) and per member (`SEEN_PER_SOURCE`, `SEEN_CHANGES_PER_SOURCE`: review 40a
and 41a, memory 1 and 4). The root's feed outranks a remembered fork, not the owner's later
rotation (review 40a, memory 3 and 4; review 41a, memory 1 and 2).

Not thread-safe by itself: `ChainVerifier` calls it under its lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from troth.credentials.revocation_held import VerifiedFeed
from troth.errors import CredentialError, CredentialFailure, IdentityError, IdentityFailure
from troth.identity import Identifier, VerifiedIdentity

if TYPE_CHECKING:
    from troth.credentials.verify import VerifiedCredential

__all__ = [
    "SEEN_CHANGES",
    "SEEN_CHANGES_PER_SOURCE",
    "SEEN_IDENTITIES",
    "SEEN_PER_SOURCE",
    "VerifierMemory",
]

_F = CredentialFailure
SEEN_IDENTITIES: Final = 16_384
"""Identities whose newest full history a verifier without a store (no `known`) remembers
having verified (the hash of each of its changes); when full (or `SEEN_CHANGES` is), the
oldest entries of the root authority holding the most are forgotten, each entry charged to the
root whose chain showed its newest history (docs/formats.md, "Pre-rotation and stored
histories"; review 38d, memory 1; review 42a, memory 1: the older half of all went, a
co-trusted authority's flood with it another authority's member's rotation)."""
SEEN_CHANGES: Final = 65_536
"""Changes that memory holds in all (32 bytes each, at most MAX_IDENTITY_CHANGES per entry:
review 41a, the memory keeps every change's hash so that the root's feed can tell a fork from
the owner's later rotation, review 40a, memory 4). With SEEN_IDENTITIES entries, ~7.5 MB at
worst (measured, with each entry's charge), ~12 MB if each also holds a copy of its own for a
second root (docs/formats.md, "Pre-rotation and stored histories")."""
SEEN_PER_SOURCE: Final = 256
"""Entries of that memory one member may bring in: the histories of the identities a chain
carries below the member its root vouched for (her delegates, theirs) are charged to her, and
past this many her oldest is forgotten; the root and the member herself are charged to no
member (to the root only, as every entry: `SEEN_IDENTITIES`).
A member delegating to fresh identities of her own flushes only her own delegates' entries,
never another member's rotation (review 40a, memory 1: 16,384 fresh delegates of one member
restored a stolen backup's acceptance)."""
SEEN_CHANGES_PER_SOURCE: Final = SEEN_PER_SOURCE * SEEN_CHANGES // SEEN_IDENTITIES
"""Changes of the entries charged to one member (1,024), charged as `SEEN_PER_SOURCE` is: her
delegates' long histories flush only her own delegates' entries, and one member never fills
`SEEN_CHANGES` (review 41a, memory 4)."""
_HASH: Final = 32  # a change hash's bytes (the memory's entries are their concatenation)
_SEVERAL: Final = b""  # an entry shown under more than one root authority's chains


class _Share:
    """What the memory holds charged to one root authority: its entries, oldest first, and
    their changes (review 42a, memory 1). One per root with an entry: at most the trust
    anchors, and at most the entries."""

    __slots__ = ("changes", "entries", "root")

    def __init__(self, root: bytes) -> None:
        self.root = root
        self.entries: dict[bytes, None] = {}
        self.changes = 0


class _Seen:
    """A memory entry: the change hashes of the newest full history of an identity verified
    (`hashes`), the root whose chains showed it (`by`, `_SEVERAL` for more than one), the share
    of the root it is charged to (`owner`: the first whose chain showed its newest history,
    review 42a, memory 1), and, per root whose feed outranked it without the standing to
    replace it, that root's own (`scoped`: review 41a, memory 2)."""

    __slots__ = ("by", "hashes", "owner", "scoped")

    def __init__(self, hashes: bytes, by: bytes, owner: _Share) -> None:
        self.hashes = hashes
        self.by = by
        self.owner = owner
        self.scoped: dict[bytes, bytes] | None = None

    def size(self) -> int:
        """The changes it holds (what it is charged)."""
        held = len(self.hashes)
        if self.scoped:
            held += sum(len(hashes) for hashes in self.scoped.values())
        return held // _HASH


def _against_seen(
    identity: VerifiedIdentity, hashes: bytes
) -> tuple[IdentityError, int | None] | None:
    """Why `identity` does not hold the full history this verifier verified before (`hashes`:
    its changes' hashes, concatenated) nor extend it: FORK (with the index of the first change
    at which they may differ: a feed naming a change there or later outranks the memory) or
    ROLLBACK (it ends earlier, agreeing: None, nothing outranks it); None when it agrees, or
    starts after a gap (a checkpointed history: nothing here to judge it by)."""
    count, first, last = len(hashes) // _HASH, identity.first_index, identity.current.index
    changes = identity.changes
    both = min(count - 1, last)  # the last change both hold (each change names the previous)
    diverged: int | None = None
    if both >= first:
        if changes[both - first].change_hash != hashes[both * _HASH : (both + 1) * _HASH]:
            if first and changes[0].body.previous != hashes[(first - 1) * _HASH : first * _HASH]:
                diverged = first - 1
            else:
                diverged = next(
                    index
                    for index in range(first, both + 1)
                    if changes[index - first].change_hash
                    != hashes[index * _HASH : (index + 1) * _HASH]
                )
    elif first == count:  # starts right after the remembered last change: names it previous?
        if changes[0].body.previous != hashes[-_HASH:]:
            diverged = count - 1
    else:
        return None
    if diverged is not None:
        return IdentityError(IdentityFailure.FORK, str(identity.identifier), diverged), diverged
    if last < count - 1:
        return IdentityError(
            IdentityFailure.ROLLBACK,
            f"{identity.identifier}'s history ends at change {last}, this verifier verified "
            f"one ending at change {count - 1}",
        ), None
    return None


def _hashes(identity: VerifiedIdentity) -> bytes:
    """A full history's change hashes, concatenated (a memory entry)."""
    return b"".join([change.change_hash for change in identity.changes])  # no generator


class VerifierMemory:
    """A store-less verifier's memory of the histories it verified: each identity's entry
    (`_Seen`), charged to the root whose chain showed its newest history (`_Share`) and, for
    those below the member a chain's root vouched for, to that member; `version` counts its
    changes (a chain that passed it at this version, shown by the same presenter, passes
    again unjudged: `troth.credentials.verify._Checked.agreed`)."""

    __slots__ = (
        "_by_source",
        "_charged",
        "_seen",
        "_seen_changes",
        "_shares",
        "_source_changes",
        "version",
    )

    def __init__(self) -> None:
        # the newest full history verified of each identity (review 38d), the member each
        # delegate's entry is charged to, and each member's (review 40a) (every change's hash,
        # and the root whose chains showed it: review 41a), the changes held, and each member's
        self._seen: dict[bytes, _Seen] = {}
        self._seen_changes = 0
        self._charged: dict[bytes, bytes] = {}
        self._by_source: dict[bytes, dict[bytes, None]] = {}
        self._source_changes: dict[bytes, int] = {}
        # each entry charged to the root whose chain showed its newest history (review 42a)
        self._shares: dict[bytes, _Share] = {}
        self.version = 0

    def check(
        self,
        result: VerifiedCredential,
        issuers: tuple[VerifiedIdentity, ...],
        presenter: Identifier | VerifiedIdentity,
        feed: VerifiedFeed,
    ) -> None:
        """Without a store (`known`): raise unless each issuer history (ISSUER_INVALID, with
        the link's index) and the presenter's (WRONG_SUBJECT) holds the newest full history of
        it this verifier verified (or extends it); then remember the newer full histories. A
        verifier that saw a rotation refuses the older history (a thief's, with the retired
        key) before the feed names it (review 38d, memory 1). Only a full history (tied to its
        identifier by its own hash) is remembered: a checkpointed one's first change is its
        checkpoint authority's word, and a co-trusted authority's made-up change must not lock
        out her own (review 23a). An identity below the member the root vouched for is charged
        to that member (`SEEN_PER_SOURCE`, `SEEN_CHANGES_PER_SOURCE`: review 40a and 41a,
        memory 1 and 4).

        The root's `feed` naming change k (hash h) outranks a remembered history whose change
        k is not h, or that ends before k not leading to it (a fork: the presented history
        holds h, the feed checked it first), for this chain; the presented full history
        replaces it when only this root's chains showed it (review 40a, memory 3 and 4). One
        whose change k is h is the owner's later rotation the feed has not caught up with: it
        stands. Another root's feed never replaces it: a co-trusted authority's word counts for
        its own chains only, and naming a thief's fork must not unlock it for this authority's
        (review 41a, memory 1); the presented history is kept beside it as that root's own,
        which judges that root's chains from then on (review 41a, memory 2: else a fork shown
        under two roots' chains kept the owner's later rotation out of the memory)."""
        seen = self._seen
        root = result.authority.digest
        shown: list[VerifiedIdentity] = list(issuers)
        if not isinstance(presenter, Identifier):
            shown.append(presenter)
        replaced: set[bytes] = set()  # by the feed: the entry (or this root's own) replaced
        scoped: set[bytes] = set()  # by the feed of a root without standing: its own kept
        for position, identity in enumerate(shown):
            digest = identity.identifier.digest
            remembered = seen.get(digest)
            if remembered is None:
                continue
            own = None if remembered.scoped is None else remembered.scoped.get(root)
            held = remembered.hashes if own is None else own
            judged = _against_seen(identity, held)
            if judged is None:
                continue
            refusal, diverged = judged
            named = feed.supersession(identity.identifier)
            if diverged is not None and named is not None and diverged <= named.changes - 1:
                mine = own is not None or remembered.by == root
                (replaced if mine else scoped).add(digest)
                continue
            if position < len(issuers):
                raise CredentialError(_F.ISSUER_INVALID, str(refusal), position)
            raise CredentialError(_F.WRONG_SUBJECT, str(refusal))
        member = result.links[0].subject.digest
        for position, identity in enumerate(shown):
            digest = identity.identifier.digest
            if identity.first_index != 0:
                continue
            # the root and the member it vouched for are charged to no member; the rest to her
            # (all to the root: review 42a, memory 1)
            source = None if position == 0 or digest == member else member
            self._record(digest, identity, root, source, digest in replaced, digest in scoped)

    def _record(
        self,
        digest: bytes,
        identity: VerifiedIdentity,
        root: bytes,
        source: bytes | None,
        replace: bool,
        scope: bool,
    ) -> None:
        """Remember `digest`'s newest full history (`identity`'s), shown in a chain of `root`,
        charged to member `source` (None: to no one); `replace`: the root's feed outranked the
        remembered one (or the root's own), `scope`: it outranked one it has no standing to
        replace, and the root's own is kept beside it. An entry seen uncharged (the identity
        shown as a root or a member) is uncharged to members for good; past SEEN_PER_SOURCE
        entries or SEEN_CHANGES_PER_SOURCE changes charged to one member her oldest go; past
        SEEN_IDENTITIES entries or SEEN_CHANGES changes the oldest of the root holding the most
        go (review 38d, 40a and 41a, memory 1, 2 and 4). Every entry is charged to `root` when
        first recorded, and an entry's main history replaced or extended here is charged to
        `root` and `source` from then on (review 42a, memory 1 and 2)."""
        seen, charged = self._seen, self._charged
        size = identity.current.index + 1
        remembered = seen.get(digest)
        if remembered is None:
            self.version += 1
            if source is not None:
                self._fit_source(source, size)
                self._by_source.setdefault(source, {})[digest] = None
                self._source_changes[source] = self._source_changes.get(source, 0) + size
                charged[digest] = source
            self._fit_all(size, keep=digest, root=root)
            share = self._shares.get(root)
            if share is None:
                share = self._shares[root] = _Share(root)
            seen[digest] = _Seen(_hashes(identity), share.root, share)
            share.entries[digest] = None
            share.changes += size
            self._seen_changes += size
            return
        was = charged.get(digest)
        if was is not None and source is None:  # shown as a member (or root) herself now
            self._uncharge(was, digest)
            was = None
            self.version += 1
        before = remembered.size()
        moved: bytes | None = None  # the member charged anew (review 42a, memory 2)
        own = None if remembered.scoped is None else remembered.scoped.get(root)
        if scope or own is not None:  # this root's own entry
            if own is not None and not replace and size <= len(own) // _HASH:
                return
            self.version += 1
            if remembered.scoped is None:
                remembered.scoped = {}
            remembered.scoped[root] = _hashes(identity)
        else:
            if not replace and size <= len(remembered.hashes) // _HASH:  # no hashing
                if remembered.by != root:
                    remembered.by = _SEVERAL
                    self.version += 1
                return
            self.version += 1
            # charged to the root and member whose chain showed the newest (review 42a,
            # memory 1 and 2: else a thief showing her older history first chose them)
            if was is not None and source is not None and was != source:
                self._uncharge(was, digest)
                was, moved = None, source
            remembered.hashes = _hashes(identity)
            remembered.by = root if replace or remembered.by == root else _SEVERAL
            if remembered.owner.root != root:
                self._recharge(digest, remembered, root, before)
        grown = remembered.size() - before
        self._seen_changes += grown
        remembered.owner.changes += grown
        if was is not None:
            self._source_changes[was] += grown
            self._fit_source(was, 0, keep=digest)
        elif moved is not None:
            size = remembered.size()
            self._fit_source(moved, size)
            self._by_source.setdefault(moved, {})[digest] = None
            self._source_changes[moved] = self._source_changes.get(moved, 0) + size
            charged[digest] = moved
        self._fit_all(0, keep=digest, root=remembered.owner.root)

    def _recharge(self, digest: bytes, remembered: _Seen, root: bytes, size: int) -> None:
        """Charge `digest`'s entry (`size` changes charged so far) to `root`, whose chain showed
        the newest history it holds, as its newest: else a thief showing the owner's older
        history under a co-trusted authority's chain first left her later rotation charged to
        that authority, whose flood forgot it (review 42a, memory 1)."""
        was = remembered.owner
        was.changes -= size
        del was.entries[digest]
        if not was.entries:
            del self._shares[was.root]
        share = self._shares.get(root)
        if share is None:
            share = self._shares[root] = _Share(root)
        share.entries[digest] = None
        share.changes += size
        remembered.owner = share

    def _fit_source(self, source: bytes, size: int, keep: bytes | None = None) -> None:
        """Forget member `source`'s oldest delegates' entries (never `keep`) until one more of
        `size` changes fits within SEEN_PER_SOURCE and SEEN_CHANGES_PER_SOURCE."""
        owned = self._by_source.get(source)
        while owned:
            count = len(owned) + (1 if size else 0)
            if count <= SEEN_PER_SOURCE and (
                self._source_changes.get(source, 0) + size <= SEEN_CHANGES_PER_SOURCE
            ):
                return
            oldest = next((d for d in owned if d != keep), None)
            if oldest is None:
                return
            self._forget(oldest)
            owned = self._by_source.get(source)

    def _fit_all(self, size: int, keep: bytes, root: bytes) -> None:
        """Past SEEN_IDENTITIES entries or SEEN_CHANGES changes (one more of `size`, charged to
        `root`, counted), forget the oldest entries (never `keep`) of the root holding the most
        (entries, or changes when only those are over), one by one until it fits: a root
        flooding the memory forgets only its own entries while it holds more than another
        (review 42a, memory 1: the older half of all went, another authority's member's
        rotation with it). One pass over the shares (at most the trust anchors) per entry
        forgotten."""
        seen = self._seen
        while True:
            entries = len(seen) + (1 if size else 0) > SEEN_IDENTITIES
            if not entries and self._seen_changes + size <= SEEN_CHANGES:
                return
            victim: bytes | None = None
            most = -1
            for share in self._shares.values():
                held = len(share.entries) if entries else share.changes
                if share.root == root:
                    held += (1 if size else 0) if entries else size
                if held <= most:
                    continue
                oldest = next((d for d in share.entries if d != keep), None)
                if oldest is not None:
                    victim, most = oldest, held
            if victim is None:
                return
            self._forget(victim)

    def _forget(self, digest: bytes) -> None:
        """Drop `digest`'s entry and its charge."""
        self.version += 1
        source = self._charged.get(digest)
        if source is not None:
            self._uncharge(source, digest)
        held = self._seen.pop(digest, None)
        if held is not None:
            size = held.size()
            self._seen_changes -= size
            share = held.owner
            share.changes -= size
            del share.entries[digest]
            if not share.entries:
                del self._shares[share.root]

    def _uncharge(self, source: bytes, digest: bytes) -> None:
        """Charge `digest`'s entry to no one (it stays remembered)."""
        self.version += 1
        del self._charged[digest]
        held = self._seen.get(digest)
        if held is not None:
            self._source_changes[source] -= held.size()
        owned = self._by_source.get(source)
        if owned is not None:
            owned.pop(digest, None)
            if not owned:
                del self._by_source[source]
                self._source_changes.pop(source, None)
