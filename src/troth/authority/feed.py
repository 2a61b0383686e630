"""The authority's side of its revocation feed (docs/credentials.md, "Revocation is real"):
appends that are idempotent, bounded and charged to a member's quota, and signed pages.

- Revoking what is already revoked (same kind and target) appends nothing and answers the
  existing entry's sequence number.
- Every entry a member causes (a link revocation under its credential, a supersession of its
  history) is charged to it: at most `quota` per REVOCATION_QUOTA_WINDOW each, link revocations
  and supersessions on budgets apart (a thief spending the one cannot hold back the rotation
  that retires the stolen key: review 34b, quota 2). The authority's own revocations are not
  charged.
- An entry that would break a limit (entry size, feed length) is refused, never written.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import Final

from troth import limits
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    VerifiedFeed,
    build_page,
    feed_genesis,
    next_head,
)
from troth.credentials.revocation_held import check_supersession, feed_from_store
from troth.credentials.revocation_pages import entry_cost, page_entry_budget
from troth.crypto import sha256
from troth.errors import AuthorityError, AuthorityFailure, CredentialError
from troth.identity import Identifier, Signer, VerifiedIdentity
from troth.storage import AuthorityStore, RevocationRecord

__all__ = ["AuthorityFeed"]

_A = AuthorityFailure
_ONCE: Final = (RevocationKind.CREDENTIAL, RevocationKind.IDENTITY)  # one entry per target


class AuthorityFeed:
    """Appends to and pages of one authority's feed, over its store."""

    def __init__(self, store: AuthorityStore, authority: Identifier, quota: int) -> None:
        self.store = store
        self.authority = authority
        self.quota = quota
        self._held: VerifiedFeed | None = None  # the view `held` made last without `previous`
        self._held_lock = threading.Lock()  # indexes grow in place: one thread at a time

    # -- appending -------------------------------------------------------------------------------

    def revoke(
        self,
        kind: RevocationKind,
        target: bytes,
        *,
        by: Identifier,
        now: int,
        reason: str = "",
        charged_to: Identifier | None = None,
    ) -> int:
        """Revoke a credential or an identity (idempotent); returns the entry's seq."""
        return self.revoke_many(
            kind, [target], by=by, now=now, reason=reason, charged_to=charged_to
        )[0]

    def revoke_many(
        self,
        kind: RevocationKind,
        targets: Iterable[bytes],
        *,
        by: Identifier,
        now: int,
        reason: str = "",
        charged_to: Identifier | None = None,
    ) -> list[int]:
        """Revoke many targets in one transaction (the bulk path: one commit for all); returns
        each target's seq, existing or new. All are appended, or none."""
        if kind not in _ONCE:
            raise ValueError("revoke_many takes credentials or identities")
        seqs: list[int] = []
        with self.store.transaction():
            count, head = self.store.revocation_tip()
            fresh: dict[bytes, int] = {}
            for target in targets:
                seq = fresh.get(target)
                if seq is None:
                    seq = self.store.find_revocation(kind, target)
                if seq is None:
                    if charged_to is not None:
                        self._charge(charged_to, now)
                    entry = RevocationEntry(count, kind, target, by, now, reason)
                    head = self._write(entry, head, charged_to)
                    seq = fresh[target] = count
                    count += 1
                seqs.append(seq)
        return seqs

    def supersede(
        self, identity: VerifiedIdentity, *, now: int, charged_to: Identifier | None = None
    ) -> int | None:
        """Publish that `identity`'s history (as the authority now stores it) supersedes every
        shorter or different one, unless the newest entry already says as much or names a
        change it does not hold (`_said`); charged to `charged_to` (default: the identity
        itself). Returns the newest supersession's seq (None for a one-change history)."""
        changes = identity.change_count
        if changes < 2:
            return None
        digest = identity.identifier.digest
        published = self._said(identity)  # usually so: no write lock taken
        if published is not None:
            return published
        with self.store.transaction():
            published = self._said(identity)
            if published is not None:
                return published
            payer = charged_to or identity.identifier
            account = None
            if payer != self.authority:  # its own rotations are the authority's, not a member's
                # a budget apart from the payer's link revocations, which a thief holding a
                # member's key can spend: it held back the rotation retiring that key
                # (review 34b, quota 2)
                account = _supersessions_of(payer)
                self._charge(account, now, shown=payer)
            count, head = self.store.revocation_tip()
            entry = RevocationEntry(
                count,
                RevocationKind.SUPERSEDED,
                digest,
                identity.identifier,
                now,
                "",
                Supersession(changes, identity.current_change_hash),
            )
            self._write(entry, head, account)
        return count

    def _said(self, identity: VerifiedIdentity) -> int | None:
        """The seq of the feed's newest supersession of `identity` when it says as much as
        `identity`'s history (as many changes or more) or names a change that history does not
        hold (a fork of it: a thief's, published again over it by the hub's re-revoke when the
        store went back, review 65k, feed 1: published, the fork would be the newest again);
        None when `identity`'s supersedes it. The newest is the last written, as every reader
        of the feed takes it (review 65r, feed 1: by change count, a thief's longer fork hid the
        held one published again after it, and the owner's next rotation was never written)."""
        digest = identity.identifier.digest
        published = self.store.latest_supersession(digest)
        if published is None:
            return None
        seq, changes = published
        if changes >= identity.change_count:
            return seq
        named = self.store.supersession_hash(digest, changes)
        if named is None:  # the row read a moment ago: the caller's transaction holds it
            return seq
        try:
            check_supersession(identity, Supersession(changes, named))
        except CredentialError:
            return seq
        return None

    def supersede_again(self, target: Identifier, superseded: Supersession, *, now: int) -> bool:
        """Publish again that `target`'s history of `superseded.changes` changes (ending in
        `superseded.change_hash`) supersedes the older ones, as a feed the store's line went
        back past said (troth.node.trust `_revoke_again`: review 65c, feed 1), unless the
        store's line names that change already (the caller judged whether a longer one on the
        line holds it: review 65k, feed 1); charged to no one (the authority's own). Inside the
        caller's transaction; whether an entry was written."""
        digest = target.digest
        with self.store.transaction():
            if self.store.supersession_hash(digest, superseded.changes) == superseded.change_hash:
                return False
            count, head = self.store.revocation_tip()
            entry = RevocationEntry(
                count, RevocationKind.SUPERSEDED, digest, target, now, "", superseded
            )
            self._write(entry, head, None)
        return True

    def _charge(self, member: Identifier, now: int, *, shown: Identifier | None = None) -> None:
        """Refuse when `member` (an account: named `shown` in the refusal) already caused
        `quota` entries within the window."""
        since = now - limits.REVOCATION_QUOTA_WINDOW + 1
        charged = self.store.charged_since(member.digest, since)
        if len(charged) >= self.quota:
            # the oldest of the last `quota` entries leaves the window first; a quota of 0
            # has none: a full window (review 31a, quota 1: it raised IndexError)
            oldest = charged[len(charged) - self.quota] if self.quota else now
            wait = oldest + limits.REVOCATION_QUOTA_WINDOW - now
            raise AuthorityError(
                _A.QUOTA_EXCEEDED,
                f"{shown or member} may cause {self.quota} feed entries per hour; "
                f"try again in {max(1, math.ceil(wait / 60))} min",
            )

    def _write(
        self, entry: RevocationEntry, head: bytes | None, charged_to: Identifier | None
    ) -> bytes:
        """Check the limits, then store `entry` after `head`; returns the new head."""
        if entry.seq >= limits.MAX_FEED_ENTRIES:
            raise AuthorityError(_A.FEED_LIMIT, f"the feed holds {limits.MAX_FEED_ENTRIES} entries")
        if (
            charged_to is not None
            and entry.seq >= limits.MAX_FEED_ENTRIES - limits.FEED_AUTHORITY_RESERVE
        ):
            # what members cause leaves the feed's last entries to the authority's own
            # (docs/credentials.md, "Nobody can flood the feed"; review 34c, feed 1)
            kept = limits.FEED_AUTHORITY_RESERVE
            raise AuthorityError(
                _A.FEED_LIMIT,
                f"the feed's last {kept} entries are kept for the authority's own revocations",
            )
        encoded = entry.encode()
        if len(encoded) > limits.MAX_REVOCATION_ENTRY_BYTES:
            raise AuthorityError(_A.FEED_LIMIT, f"an entry of {len(encoded)} bytes")
        new_head = next_head(head or feed_genesis(self.authority), encoded)
        self.store.count_irreversible()  # a restore losing it is found (review 51d)
        self.store.add_revocation(
            RevocationRecord(
                entry.seq,
                encoded,
                new_head,
                int(entry.kind),
                entry.target,
                entry.revoked_at,
                None if charged_to is None else charged_to.digest,
                None if entry.extra is None else entry.extra.changes,
                None if entry.extra is None else entry.extra.change_hash,
            )
        )
        return new_head

    # -- reading -------------------------------------------------------------------------------

    def held(self, *, now: int, previous: VerifiedFeed | None = None) -> VerifiedFeed:
        """The whole feed as the authority's own verified view, read from its store (nothing to
        verify: the store is where the feed is made), current as of `now`; only the entries
        after `previous` are read, all of them when the store no longer holds `previous`'s
        head at its count (restored, then grown again). Without `previous`, after the view
        this call last made without one (its own line of growth): each verification with the
        authority as a Verifier's feed source read every entry again, its cost in the feed's
        size (review 63a, authority 2)."""
        # the lock taken inside the write transaction only (no deadlock): a view's index grows
        # in place, and callers passing theirs may share the one this view made
        with self.store.transaction(), self._held_lock:
            if previous is not None:
                return self._read(now, previous)
            self._held = self._read(now, self._held)
            return self._held

    def _read(self, now: int, previous: VerifiedFeed | None) -> VerifiedFeed:
        with self.store.transaction():  # one snapshot
            count, head = self.store.revocation_tip()
            if previous is not None and (
                previous.authority != self.authority
                or previous.count > count
                or self.store.head_at(previous.count)
                != (None if previous.count == 0 else previous.head)
            ):
                previous = None
            return feed_from_store(
                self.authority,
                count=count,
                head=head or feed_genesis(self.authority),
                latest=count,
                issued_at=now,
                rows=self.store.revocation_rows(0 if previous is None else previous.count),
                previous=previous,
            )

    # -- pages -----------------------------------------------------------------------------------

    def page(self, signer: Signer, *, since: int, now: int) -> bytes:
        """One signed page from entry `since` (at most MAX_FEED_PAGE_BYTES, at least one entry
        when there are any; none when `since` is the end: a signed "up to date")."""
        return self.page_and_end(signer, since=since, now=now)[0]

    def page_and_end(self, signer: Signer, *, since: int, now: int) -> tuple[bytes, int]:
        """`page` and the entry it ends before (where the next page starts)."""
        with self.store.transaction():  # one snapshot: entries, heads and the latest count
            latest, _ = self.store.revocation_tip()
            if not 0 <= since <= latest:
                raise AuthorityError(_A.REQUEST_INVALID, f"the feed has {latest} entries")
            budget = page_entry_budget(signer.identity.history)
            entries = self.store.revocation_page(since, budget, entry_cost)
            head = self.store.head_at(since + len(entries)) or feed_genesis(self.authority)
        page = build_page(signer, entries, start=since, head=head, latest=latest, now=now)
        return page, since + len(entries)


def _supersessions_of(payer: Identifier) -> Identifier:
    """The quota account of the supersessions charged to `payer` (a name no identity has: a
    hash under its own domain), apart from its link revocations."""
    return Identifier(sha256(b"troth.authority.supersessions-quota/1\x00" + payer.digest))
