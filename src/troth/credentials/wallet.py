"""What a node's identities hold: their credential chains, delegations they make, the
revocation feed verified per authority (stored entry by entry, rebuilt in memory without
verifying again), and how far each rotation was announced to each authority."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from troth.credentials.attributes import Attributes
from troth.credentials.format import CredentialBody, CredentialChain
from troth.credentials.issue import delegate
from troth.credentials.revocation import VerifiedFeed, feed_from_store, store_rows, verify_page
from troth.credentials.verify import ChainVerifier, TrustPolicy, VerifiedCredential
from troth.errors import CredentialError, CredentialFailure, DecodeError, NotFound
from troth.identity import Identifier, IdentityService
from troth.storage import CredentialStore, FeedState, HeldCredential

__all__ = ["Announcement", "CredentialWallet", "next_page"]

_F = CredentialFailure


@dataclass(frozen=True, slots=True)
class Announcement:
    """The outcome of announcing a local identity's rotated history to one authority."""

    identity: str
    authority: Identifier
    changes: int
    seq: int | None = None  # the authority's newest supersession entry for it
    error: str | None = None  # why it could not be announced (retried later)

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "authority": str(self.authority),
            "changes": self.changes,
            "announced": self.error is None,
            "seq": self.seq,
            "error": self.error,
        }


class CredentialWallet:
    """A node's credentials, trusted authorities and verified revocation feeds."""

    def __init__(self, identities: IdentityService, store: CredentialStore) -> None:
        self.identities = identities
        self.store = store
        self._feeds: dict[Identifier, VerifiedFeed] = {}

    # -- held chains -----------------------------------------------------------------------------

    def inspect(self, chain: bytes, *, now: int) -> VerifiedCredential:
        """Check a chain's signatures and structure, trusting its own root issuer (for holding
        and display only: a verifier decides trust with its own policy and feed)."""
        try:
            root = CredentialBody.decode(CredentialChain.decode(chain).credentials[0].body).issuer
        except DecodeError as exc:
            raise CredentialError(_F.MALFORMED, str(exc)) from None
        return ChainVerifier(TrustPolicy(frozenset({root}))).verify_structure(chain, now=now)

    def hold(self, ref: str, chain: bytes, *, now: int) -> VerifiedCredential:
        """Store a chain whose last subject is the local identity `ref`."""
        local = self.identities.find(ref)
        checked = self.inspect(chain, now=now)
        if checked.actor.digest != local.identifier:
            raise CredentialError(_F.WRONG_SUBJECT, f"the chain is for {checked.actor}")
        self.store.put_held(
            HeldCredential(
                local.identifier,
                checked.links[-1].hash,
                chain,
                checked.authority.digest,
                checked.expires_at,
            ),
            now,
        )
        return checked

    def held(self, ref: str) -> list[HeldCredential]:
        return self.store.list_held(self.identities.find(ref).identifier)

    def best(
        self,
        ref: str,
        *,
        now: int,
        needs: Attributes | None = None,
        credential_hash: bytes | None = None,
    ) -> bytes:
        """The held chain that expires last among those valid at `now` (and covering `needs`)."""
        for held in self.held(ref):
            if held.expires_at <= now or (
                credential_hash is not None and held.id != credential_hash
            ):
                continue
            if needs is not None and needs.first_excess_over(
                self.inspect(held.chain, now=now).attributes
            ):
                continue
            return held.chain
        raise NotFound(
            f"{ref} holds no unexpired credential" + (" with those attributes" if needs else "")
        )

    def parent_for(
        self, ref: str, attributes: Attributes, *, now: int, credential_hash: bytes | None = None
    ) -> bytes:
        """The held chain a delegation of `attributes` by `ref` extends: the one ending in
        credential `credential_hash`, else the one that covers `attributes` and expires last,
        else the one that expires last (and delegate() refuses the amplification)."""
        try:
            return self.best(ref, now=now, needs=attributes, credential_hash=credential_hash)
        except NotFound:
            return self.best(ref, now=now, credential_hash=credential_hash)

    def delegate(
        self,
        ref: str,
        *,
        to: Identifier,
        attributes: Attributes,
        now: int,
        ttl: int,
        purpose: str,
        caveats: Sequence[str] = (),
        depth: int | None = None,
        credential_hash: bytes | None = None,
    ) -> bytes:
        """Delegate part of what `ref` holds to `to`; returns the extended chain. The parent is
        `parent_for(ref, attributes)`."""
        parent = self.parent_for(ref, attributes, now=now, credential_hash=credential_hash)
        signer = self.identities.signer(ref, now=now)
        chain = delegate(
            signer,
            CredentialChain.decode(parent),
            subject=to,
            attributes=attributes,
            now=now,
            ttl=ttl,
            purpose=purpose,
            caveats=caveats,
            depth=depth,
        )
        return chain.encode()

    # -- trusted authorities --------------------------------------------------------------------

    def trust(self, authority: Identifier, address: str, *, now: int) -> None:
        """Trust `authority` (as a trust anchor for peers' credentials), reachable at `address`."""
        self.store.trust_authority(authority.digest, address, now)

    def trusted(self) -> dict[Identifier, str]:
        return {Identifier(digest): address for digest, address in self.store.trusted_authorities()}

    # -- rotation announcements -----------------------------------------------------------------

    def unannounced(self, ref: str) -> tuple[int, list[Identifier]]:
        """Local identity `ref`'s change count, and the authorities it holds credentials from
        that have not been told of that history yet (announced up to fewer changes)."""
        record = self.identities.find(ref)
        authorities = sorted(
            {Identifier(h.authority) for h in self.held(ref)}, key=lambda a: a.digest
        )
        return record.changes, [
            a
            for a in authorities
            if self.store.announced(record.identifier, a.digest) < record.changes
        ]

    def mark_announced(
        self, ref: str, authority: Identifier, changes: int, seq: int | None
    ) -> Announcement:
        """Record that `authority` has seen `ref`'s history up to `changes` changes (its
        newest supersession being entry `seq`)."""
        self.store.set_announced(self.identities.find(ref).identifier, authority.digest, changes)
        return Announcement(ref, authority, changes, seq)

    # -- revocation feeds ------------------------------------------------------------------------

    def update_feed(self, page: bytes, *, authority: Identifier, now: int) -> VerifiedFeed:
        """Verify one page extending the feed held for `authority` and store what it added at
        once (freshness is the caller's check: a page in the middle of a sync is not fresh)."""
        with self.store.transaction():
            previous = self.held_feed(authority)
            feed = verify_page(
                page,
                authority=authority,
                now=now,
                previous=previous,
                known=self.identities.observe,
            )
            state = FeedState(authority.digest, feed.count, feed.head, feed.latest, feed.issued_at)
            self.store.extend_feed(state, store_rows(feed))
        self._feeds[authority] = feed
        return feed

    def sync_feed(
        self, authority: Identifier, fetch: Callable[[int], bytes], *, now: int
    ) -> VerifiedFeed:
        """Fetch and verify pages (`fetch(since)` answers the page from entry `since`) until
        the held feed is complete; each page is stored as soon as it is verified."""
        since = self.feed_since(authority)
        while True:
            feed = self.update_feed(fetch(since), authority=authority, now=now)
            next_since = next_page(feed, since)
            if next_since is None:
                return feed
            since = next_since

    def feed_since(self, authority: Identifier) -> int:
        """Where the next page of `authority`'s feed starts for this holder."""
        state = self.store.feed_state(authority.digest)
        return 0 if state is None else state.count

    def feed(self, authority: Identifier, *, now: int, max_staleness: int) -> VerifiedFeed:
        """The held feed of `authority`, fresh at `now` (else CredentialError)."""
        feed = self.held_feed(authority)
        if feed is None:
            raise CredentialError(_F.NO_FEED, str(authority))
        feed.check_fresh(now=now, max_staleness=max_staleness)
        return feed

    def held_feed(self, authority: Identifier) -> VerifiedFeed | None:
        """The feed held for `authority`, whether fresh or not: from memory, or rebuilt from the
        store (entries this node verified when it stored them, read without verifying again;
        only what another process added since is read when memory holds the rest)."""
        state = self.store.feed_state(authority.digest)
        if state is None:
            return None
        cached = self._feeds.get(authority)
        if cached is not None and (cached.count, cached.head, cached.issued_at) == (
            state.count,
            state.head,
            state.issued_at,
        ):
            return cached
        if cached is not None and cached.count > state.count:
            cached = None  # the store was replaced by an older copy: start over from it
        start = 0 if cached is None else cached.count
        feed = feed_from_store(
            authority,
            count=state.count,
            head=state.head,
            latest=state.latest,
            issued_at=state.issued_at,
            rows=self.store.feed_rows(authority.digest, start),
            previous=cached,
        )
        self._feeds[authority] = feed
        return feed


def next_page(feed: VerifiedFeed, since: int) -> int | None:
    """Where the next page of a sync starts after `feed` (verified from a page at `since`), or
    None when the feed is complete; a page that added nothing before the end is refused."""
    if feed.complete:
        return None
    if feed.count == since:
        raise CredentialError(
            _F.FEED_INVALID, f"a page with no entries at {since} of {feed.latest}"
        )
    return feed.count
