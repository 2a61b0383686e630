"""What a node's identities hold: their credential chains, delegations they make, the
revocation feed verified per authority (stored entry by entry, rebuilt in memory without
verifying again), how far each rotation was announced to each authority, and the enrollments
sent but not yet completed (docs/storage.md, "Recovery rules")."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.clock import Clock
from troth.credentials.attributes import Attributes
from troth.credentials.format import STORED_LATEST, CredentialBody, CredentialChain
from troth.credentials.held_rows import (
    authority_changes,
    by_chain,
    claims_cover,
    issued_before_rotation,
    live_held,
)
from troth.credentials.issue import caveat_texts, delegate
from troth.credentials.pending import Recorded, record_pending, superseded
from troth.credentials.revocation import verify_page
from troth.credentials.revocation_entry import RevocationKind
from troth.credentials.revocation_held import (
    VerifiedFeed,
    feed_checkpoints,
    feed_from_store,
    store_rows,
)
from troth.credentials.verify import ChainVerifier, TrustPolicy, VerifiedCredential
from troth.errors import CredentialError, CredentialFailure, DecodeError, IdentityError, NotFound
from troth.faults import crash_point
from troth.identity import (
    Checkpoint,
    Checkpoints,
    Identifier,
    IdentityService,
    UnverifiedHistory,
    VerifiedIdentity,
    verify_history,
)
from troth.identity.known import Binds
from troth.storage import CredentialStore, FeedState, HeldCredential, PendingEnrollmentRecord

__all__ = [
    "FEED_RACE_RETRIES",
    "Announcement",
    "CredentialWallet",
    "FeedSync",
    "authority_changes",
    "feed_step",
    "issued_before_rotation",
    "needs_refresh",
    "next_page",
    "revokes_a_link",
    "superseded_changes",
    "supersedes_an_issuer",
]

_LinkCaveats = tuple[int, tuple[str, ...]]
"""A link's index in a chain and its caveats."""

_F = CredentialFailure
FEED_RACE_RETRIES: Final = 5
"""How often a sync fetches a page again because another process extended the held feed while
the page was on its way (a race, not a fork)."""


def superseded_changes(feed: VerifiedFeed | None, authority: Identifier) -> int | None:
    """The changes of `authority` that `feed` says its newer history holds (None: not said)."""
    superseded = None if feed is None else feed.supersession(authority)
    return None if superseded is None else superseded.changes


def needs_refresh(
    held: Sequence[HeldCredential],
    authority: Identifier,
    known: int | None,
    now: int,
    margin: int,
    *,
    feed: VerifiedFeed | None = None,
) -> bool:
    """Whether a local identity holding `held` asks `authority` for a fresh credential now:
    the newest member credential it holds from it (one the authority issued to it directly:
    a delegation rooted there, from another member, is not refreshed there and may outlive it,
    review 34b, due 1) expires within `margin` seconds or was issued before the authority
    rotated to `known` changes (`CredentialWallet.known_changes`: what `presentable` goes by,
    so a chain it stops showing is replaced at once). Those the authority's `feed` revokes
    are passed over, as the node's channels leave them out: with none left it asks at once
    (review 35a, due 1: a credential revoked to cut the member's delegations left the node
    showing none of that authority until it neared expiry)."""
    mine = [h for h in by_chain(held) if h.authority == authority.digest and _issued_directly(h)]
    if not mine:
        return False
    if feed is not None:
        mine = [h for h in mine if not revokes_a_link(h.chain, lambda _: feed)]
        if not mine:
            return True
    newest = max(mine, key=lambda h: h.expires_at)
    return newest.expires_at - now <= margin or issued_before_rotation(newest, known)


def _issued_directly(held: HeldCredential) -> bool:
    """Whether `held` is a member credential: a chain of one link, its authority's (our own
    stored chain: decoded, not verified; an unreadable one is not)."""
    try:
        return len(CredentialChain.decode(held.chain).credentials) == 1
    except DecodeError:
        return False


@dataclass(frozen=True, slots=True)
class Announcement:
    """The outcome of announcing a local identity's rotated history to one authority."""

    identity: str
    authority: Identifier
    changes: int
    seq: int | None = None  # the authority's newest supersession entry for it
    error: str | None = None  # why it could not be announced (retried later)
    forked: bool = False  # refused as a fork: no retry can change it (review 64u, rotation 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "authority": str(self.authority),
            "changes": self.changes,
            "announced": self.error is None,
            "seq": self.seq,
            "error": self.error,
            "forked": self.forked,
        }


class CredentialWallet:
    """A node's credentials, trusted authorities and verified revocation feeds."""

    def __init__(
        self,
        identities: IdentityService,
        store: CredentialStore,
        *,
        check_caveat: Callable[[str], object] | None = None,
    ) -> None:
        """`check_caveat` refuses a caveat `delegate` must not sign (troth.gates.check_caveat:
        a PolicyError with the Cedar parser's message)."""
        self.identities = identities
        self.store = store
        self.check_caveat = check_caveat
        self.check_chain_caveats: Callable[[list[_LinkCaveats]], object] | None = None
        """Refuses the caveats of the chain `delegate` would make, (link index, caveats) each,
        together (at a node troth.gates.caveats.caveat_fragment: past the chain's bounds every
        gate denies it; review 55k, caveats 1, where such a chain was signed and handed out)."""
        self._feeds: dict[Identifier, VerifiedFeed] = {}
        self.feed_binds: Callable[[VerifiedIdentity], Binds] | None = None
        """Given a feed page's authority history (a full one), which stored copies from a
        checkpoint bind it (troth.identity.known `Binds`: a node gives its own rule, the
        authority itself having standing over its history, troth.node.trust); None: every copy
        binds it. Without it, a co-trusted authority's copy of another trusted authority made
        up after a gap refused that authority's every page (review 29a, feeds 1)."""
        self.binds_over: Callable[[VerifiedIdentity, Set[Identifier]], Binds] | None = None
        """Given a full history and the authorities with standing over it now (`roots`), which
        stored copies from a checkpoint bind it (a node gives its rule, read from its store:
        troth.node.copies); None: every copy binds it. Enrolling asks it of a ticket's
        authority history, that authority having standing over its own (review 30a,
        enrollment 2: else a co-trusted authority's copy of it made up after a gap kept the
        node from ever enrolling with it)."""
        self.settle_due: Callable[[Identifier, int], bool] | None = None
        """Given an authority whose feed a link revocation made here left to sync
        (`CredentialStore.mark_sync_due`: the process was killed, or its sync failed, after
        the authority took it), sync this node's copy of that feed and forget the mark;
        whether it did (a node gives it: troth.node.syncdue). None: the mark stands until
        its revocation's own process clears it (review 48m, revcrash 2)."""

    def anchor_binds(self, identity: VerifiedIdentity) -> Binds | None:
        """Which stored copies from a checkpoint bind `identity`, a history of an authority
        this wallet trusts (`binds_over`: the authority, a trust anchor, has standing over its
        own history); None (every copy binds) for any other identity, or without `binds_over`.
        What a feed page is judged with outside a running node (`feed_binds` unset), and
        `troth identity import` (review 30a, import 1 and 2)."""
        binds_over = self.binds_over
        if binds_over is None or identity.identifier not in self.trusted():
            return None
        return binds_over(identity, {identity.identifier})

    # -- held chains -----------------------------------------------------------------------------

    def inspect(self, chain: bytes, *, now: int) -> VerifiedCredential:
        """Check a chain's signatures and structure, trusting its own root issuer (for holding
        and display only: a verifier decides trust with its own policy and feed)."""
        try:
            root = CredentialBody.decode(CredentialChain.decode(chain).credentials[0].body).issuer
        except DecodeError as exc:
            raise CredentialError(_F.MALFORMED, str(exc)) from None
        checkpoints = self.checkpoints(now=now, max_staleness=limits.DEFAULT_FEED_STALENESS_SECONDS)
        return ChainVerifier(TrustPolicy(frozenset({root}))).verify_structure(
            chain, now=now, checkpoints=checkpoints
        )

    def hold(
        self, ref: str, chain: bytes, *, now: int, authority: Identifier | None = None
    ) -> VerifiedCredential:
        """Store a chain whose last subject is the local identity `ref` (and, given
        `authority`, a member credential that authority issued: one link, its own;
        UNTRUSTED_ISSUER before anything is stored otherwise). A refresh's answer is held only
        as its authority's member credential: the node shows the chains that expire last, so
        another authority's node answering with chains rooted elsewhere (review 34b, refresh 1),
        or with delegations rooted at itself, which leave the node's own credential due and
        asking again each round (review 35a, refresh 1), would push the node's other
        credentials off its channels. The identity's chains from the same authority that
        expired by `now` are forgotten, but the member credential and the chain that expire
        last."""
        local = self.identities.find(ref)
        checked = self.inspect(chain, now=now)
        if checked.actor.digest != local.identifier:
            raise CredentialError(_F.WRONG_SUBJECT, f"the chain is for {checked.actor}")
        if authority is not None and checked.authority != authority:
            raise CredentialError(
                _F.UNTRUSTED_ISSUER, f"issued by {checked.authority}, not by {authority}"
            )
        if authority is not None and len(checked.links) != 1:  # an authority answers a refresh
            raise CredentialError(  # with its member credential (review 35a, refresh 1)
                _F.UNTRUSTED_ISSUER,
                f"a chain of {len(checked.links)} links, not {authority}'s member credential",
            )
        with self.store.transaction():
            self.store.put_held(
                HeldCredential(
                    local.identifier,
                    checked.links[-1].hash,
                    chain,
                    checked.authority.digest,
                    min(checked.expires_at, STORED_LATEST),  # review 61a, credentials 1
                ),
                now,
            )
            # the chains of that authority that expired go (a node refreshing every round kept
            # one more each time: review 34b, held 1)
            self._forget_expired(local.identifier, checked.authority.digest, now)
        return checked

    def _forget_expired(self, identifier: bytes, authority: bytes, now: int) -> None:
        """Forget `identifier`'s chains rooted at `authority` that expired by `now`, but the
        member credential that expires last (what `needs_refresh` reads: one expired while the
        node was away is refreshed, not forgotten) and the chain that expires last."""
        rows = [h for h in self.store.list_held(identifier) if h.authority == authority]
        direct = [h for h in rows if _issued_directly(h)]
        keep = {max(group, key=lambda h: h.expires_at).id for group in (rows, direct) if group}
        gone = [h.id for h in rows if h.expires_at <= now and h.id not in keep]
        if gone:
            self.store.forget_held(identifier, gone)

    def held(self, ref: str) -> list[HeldCredential]:
        return self.store.list_held(self.identities.find(ref).identifier)

    def presentable(self, ref: str, *, now: int) -> list[HeldCredential]:
        """The chains `ref` shows a peer: unexpired, and issued under the newest history of
        their authority that this node knows (its held feed's supersession of the authority,
        or its stored copy of the authority's history). A chain issued before the authority
        rotated is refused by every peer that knows, which would refuse the channel too: after
        an authority's rotation its members reach it (to sync the feed, to refresh) without.
        Nor one whose authority's feed a link revocation made here left to sync (`sync_due`,
        review 48m, revcrash 2), nor a row whose chain is not what it says (`live_held`).
        Each authority's history is asked of the store once per call, not once per row (review
        68s, wallet 1: two reads a row, at each channel identity the node made)."""
        live = []
        due: dict[bytes, bool] = {}
        known: dict[bytes, int | None] = {}
        seen: dict[bytes, tuple[bytes, int]] = {}  # histories read (`authority_changes`)
        for held in live_held(self.held(ref), now=now):  # by the chain (68j, wallet 1)
            if self._waits(held.authority, due, now):
                continue
            if held.authority not in known:
                known[held.authority] = self.known_changes(Identifier(held.authority))
            if not issued_before_rotation(held, known[held.authority], seen):
                live.append(held)
        return live

    def known_changes(self, authority: Identifier) -> int | None:
        """How many changes `authority`'s history has as this node knows it: its held feed's
        supersession of the authority, or its stored copy, whichever is newer."""
        known = [
            n
            for n in (
                superseded_changes(self.held_feed(authority), authority),
                self.identities.stored_changes(authority),
            )
            if n is not None
        ]
        return max(known, default=None)

    def best(
        self,
        ref: str,
        *,
        now: int,
        needs: Attributes | None = None,
        credential_hash: bytes | None = None,
        authority: Identifier | None = None,
        uncaveated: bool = False,
    ) -> bytes:
        """The held chain that expires last among those valid at `now`, revoked by no feed
        held nor carrying an issuer history one supersedes (a delegation made from it, or a
        bundle signed under it, verifies nowhere: review 63n, credentials 3), and covering
        `needs` (its signatures and issuers' keys checking at `now`), rooted at `authority`,
        with no caveat on any link when `uncaveated` (a bundle's chain: every verifier refuses
        a caveated one, review 65f, credentials 1). A chain whose authority's feed a link
        revocation made here left to sync is passed over until it is synced (`sync_due`: fail
        closed, review 48m, revcrash 2)."""
        due: dict[bytes, bool] = {}
        superseded: dict[tuple[bytes, bytes], bool] = {}  # histories judged (69e, store 1)
        checkpoints = self.checkpoints(now=now, max_staleness=limits.DEFAULT_FEED_STALENESS_SECONDS)
        for held in live_held(self.held(ref), now=now):  # by the chain (68j, wallet 1)
            if credential_hash is not None and held.id != credential_hash:
                continue
            if authority is not None and held.authority != authority.digest:
                continue
            if self._waits(held.authority, due, now) or revokes_a_link(held.chain, self.held_feed):
                continue
            if supersedes_an_issuer(  # as the node's channels (review 63n, credentials 3)
                held.chain, self.held_feed, now=now, checkpoints=checkpoints, seen=superseded
            ):
                continue
            if uncaveated and _caveated(held.chain):
                continue
            if needs is not None:
                if not claims_cover(held.chain, needs):  # unverified (review 69e, store 2)
                    continue
                try:  # one that no longer checks is passed over, as a revoked one (review 63n,
                    checked = self.inspect(held.chain, now=now)  # credentials 2: it failed
                except CredentialError:  # the delegation, another chain covering it held)
                    continue
                if needs.first_excess_over(checked.attributes) is not None:
                    continue
            return held.chain
        waiting = [str(Identifier(a)) for a, standing in due.items() if standing]
        raise NotFound(
            f"{ref} holds no unexpired credential"
            + (" with those attributes" if needs else "")
            + (
                f" (those of authority {', '.join(waiting)} wait for this node's copy of its "
                "feed to be synced: a revocation made here was interrupted)"
                if waiting
                else ""
            )
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
        `parent_for(ref, attributes)`. Each caveat is checked first (`check_caveat`)."""
        # read once: an iterator checked, then signed, was used up (review 56a, credentials 4)
        caveats = caveat_texts("CredentialWallet.delegate", caveats)
        if self.check_caveat is not None:
            for caveat in caveats:
                self.check_caveat(caveat)
        parent = CredentialChain.decode(
            self.parent_for(ref, attributes, now=now, credential_hash=credential_hash)
        )
        if self.check_chain_caveats is not None and caveats:
            self.check_chain_caveats([*_caveats(parent), (len(parent.credentials), tuple(caveats))])
        signer = self.identities.signer(ref, now=now)
        chain = delegate(
            signer,
            parent,
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

    def checkpoints(self, *, now: int, max_staleness: int) -> Checkpoints:
        """This node's word on checkpointed histories (`verify_history(checkpoints=...)`): its
        own stored copy of the identity holds the change, or a feed it holds is complete, at
        most `max_staleness` seconds old and names it: the checkpoint's authority's, else a
        trusted authority's (`feed_checkpoints`: review 24a, two authorities 1)."""

        def attested(checkpoint: Checkpoint, change_hash: bytes) -> bool:
            if self.identities.attested_by_store(checkpoint, change_hash):
                return True
            named = Identifier(checkpoint.authority)
            # the checkpoint's authority's feed first (the usual case: one read), then the others
            for authorities in ((named,), tuple(a for a in self.trusted() if a != named)):
                held = {a: f for a in authorities if (f := self.held_feed(a)) is not None}
                if feed_checkpoints(held, now=now, max_staleness=max_staleness)(
                    checkpoint, change_hash
                ):
                    return True
            return False

        return attested

    # -- enrollments in flight (docs/storage.md, "Recovery rules") --------------------------------

    def pending_enrollments(self, ref: str) -> list[PendingEnrollmentRecord]:
        """The enrollments of local identity `ref` sent (or about to be) and not completed."""
        return self.store.list_pending(self.identities.find(ref).identifier)

    def interrupted_enrollments(
        self, limit: int, after: tuple[int, bytes, bytes, str] | None = None
    ) -> list[PendingEnrollmentRecord]:
        """Up to `limit` enrollments of any local identity sent (or about to be) and not
        completed, oldest first, those after the key `after` (started_at, identifier,
        authority, ticket) only if given (what a node resumes each round, going round them all:
        review 38c, enroll 2; review 39a, resume 1)."""
        return self.store.every_pending(limit, after)

    def record_enrollment(
        self, ref: str, authority: Identifier, ticket: str, address: str, *, now: int
    ) -> Recorded:
        """Record, before its request is sent, that `ref` enrolls with `authority` using
        `ticket`: an interrupted enrollment with the same ticket is resumed, one with another
        ticket stays pending until this one completes (`troth.credentials.pending`)."""
        identifier = self.identities.find(ref).identifier
        with self.store.transaction():
            crash_point("holder.enroll.before-pending")
            recorded = record_pending(
                self.store, identifier, authority.digest, ticket, address, now=now
            )
        crash_point("holder.enroll.after-pending")
        return recorded

    def complete_enrollment(
        self, pending: PendingEnrollmentRecord, chain: bytes, *, now: int
    ) -> tuple[VerifiedCredential, list[PendingEnrollmentRecord]]:
        """Store the credential an enrollment brought, trust its authority at the ticket's
        address and clear the pending record, in one transaction (the authority's history was
        stored when the ticket was checked: `troth.enrollment`). The records of that authority
        recorded before it (other tickets) are cleared too, and returned."""
        ref = "T" + pending.identifier.hex()
        authority = Identifier(pending.authority)
        with self.store.transaction():
            # the ticket's authority's member credential, one link, as a refresh's answer
            # (review 35a, refresh 1; review 65, enrollment 1)
            held = self.hold(ref, chain, now=now, authority=authority)
            self.trust(authority, pending.address, now=now)
            # this ticket's record and the older ones: an enrollment with another ticket
            # recorded after it (`troth enroll` while the node resumed this one) stays pending
            # (review 39a, resume 4; review 61l, enrollment 1)
            older = superseded(self.store, pending)
            for done in (*older, pending):
                self.store.clear_pending(done.identifier, done.authority, done.ticket)
            crash_point("holder.enroll.before-commit")
        crash_point("holder.enroll.after-commit")
        return held, older

    def forget_enrollment(self, pending: PendingEnrollmentRecord) -> bool:
        """Forget a pending enrollment: completed elsewhere (by a running node), or refused for
        good by the authority (ticket unknown, used up or expired with no redemption of it by
        this identity). Only this ticket's record: another ticket's of that authority stays
        (review 39a, resume 4; review 61l, enrollment 1)."""
        return self.store.clear_pending(pending.identifier, pending.authority, pending.ticket)

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

    def sync_due(self, authority: Identifier, *, now: int) -> bool:
        """Whether a link revocation made here left `authority`'s feed to sync before a chain
        of it is handed out (`CredentialStore.mark_sync_due`), once `settle_due` tried to
        sync it now (review 48m, revcrash 2)."""
        if not self.store.sync_due(authority.digest):
            return False
        settle = self.settle_due
        return settle is None or not settle(authority, now)

    def _waits(self, authority: bytes, due: dict[bytes, bool], now: int) -> bool:
        """`sync_due` of `authority`, asked once per call (`due` holds the answers)."""
        if authority not in due:
            due[authority] = self.sync_due(Identifier(authority), now=now)
        return due[authority]

    def settle_syncs(self, *, now: int) -> list[Identifier]:
        """Try to sync every feed a link revocation made here left to sync (`sync_due`); the
        authorities still waiting."""
        return [
            Identifier(digest)
            for digest, _ in self.store.syncs_due()
            if self.sync_due(Identifier(digest), now=now)
        ]

    def update_feed(self, page: bytes, *, authority: Identifier, now: int) -> VerifiedFeed:
        """Verify one page extending the feed held for `authority` and store what it added at
        once (freshness is the caller's check: a page in the middle of a sync is not fresh).
        A local identity the page supersedes is presented from its newest checkpoint. The
        page's authority history is judged against the stored copy (a copy from a checkpoint
        binds it as `feed_binds` says, else `anchor_binds`) and stored once the whole page
        verified."""
        seen: list[tuple[VerifiedIdentity, Binds | None]] = []

        def known(identity: VerifiedIdentity) -> None:
            feed_binds = self.feed_binds
            binds = self.anchor_binds(identity) if feed_binds is None else feed_binds(identity)
            self.identities.check_known(identity, binds=binds)
            seen.append((identity, binds))

        with self.store.transaction():
            previous = self.held_feed(authority)
            feed = verify_page(
                page,
                authority=authority,
                now=now,
                previous=previous,
                known=known,
                checkpoints=self.identities.attested_by_store,
            )
            for identity, binds in seen:  # the page is the authority's: its history stored
                # (a copy from a checkpoint that does not bind it replaced: review 29a, feeds 1)
                try:
                    self.identities.observe(identity, binds=binds)
                except IdentityError as exc:  # another process stored another copy since
                    raise CredentialError(CredentialFailure.FEED_INVALID, str(exc)) from None
            state = FeedState(authority.digest, feed.count, feed.head, feed.latest, feed.issued_at)
            self.store.extend_feed(state, store_rows(feed))
            superseded = [e.target for e in feed.new_entries if e.kind is RevocationKind.SUPERSEDED]
            if superseded:
                self.identities.refresh_presented(superseded, now=now)
        self._feeds[authority] = feed
        return feed

    def sync_feed(
        self, authority: Identifier, fetch: Callable[[int], bytes], *, now: int | Clock
    ) -> VerifiedFeed:
        """Fetch and verify pages (`fetch(since)` answers the page from entry `since`) until
        the held feed is complete; each page is stored as soon as it is verified (`now` a
        Clock: read for each page, after it arrived). See `feed_sync` for races."""
        sync = self.feed_sync(authority, now=now)
        step: int | VerifiedFeed = next(sync)
        while isinstance(step, int):
            step = feed_step(sync, fetch(step))
        return step

    def feed_sync(self, authority: Identifier, *, now: int | Clock) -> FeedSync:
        """A sync of `authority`'s feed as sans-IO steps: it yields where the next page starts
        and is sent that page (drive it with `feed_step`, from any thread or coroutine).

        A page that another process's sync overtook while it was fetched (the held feed moved:
        the page starts before its end, or was issued before its snapshot) is fetched again
        from where the held feed now ends, up to FEED_RACE_RETRIES times: a race with another
        writer is not a fork. A page refused while the held feed stayed the same is."""
        raced = 0
        while True:
            state = self.store.feed_state(authority.digest)
            since = 0 if state is None else state.count
            page = yield since
            at = now if isinstance(now, int) else now.now()
            try:
                feed = self.update_feed(page, authority=authority, now=at)
            except CredentialError as exc:
                overtaken = exc.reason in (_F.FEED_INVALID, _F.FEED_ROLLBACK) and (
                    self.store.feed_state(authority.digest) != state
                )
                if not overtaken or raced >= FEED_RACE_RETRIES:
                    raise
                raced += 1
                continue
            if next_page(feed, since) is None:
                return feed

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

    def held_feeds(
        self, trusted: Iterable[Identifier] | None = None
    ) -> dict[Identifier, VerifiedFeed]:
        """The feeds held for the trusted authorities (`held_feed` of each; fresh or not);
        `trusted`: those authorities as the caller read them already (else read now)."""
        authorities = self.trusted() if trusted is None else trusted
        return {a: f for a in authorities if (f := self.held_feed(a)) is not None}

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


def revokes_a_link(chain: bytes, feed_for: Callable[[Identifier], VerifiedFeed | None]) -> bool:
    """Whether the feed held for `chain`'s authority (`feed_for`) revokes one of its links, or
    the identity of a link's issuer or subject, as every verifier does (an undecodable chain
    counts as revoked: nothing may rest on it; review 34b, presented 3: a delegation from a
    revoked identity counted as live)."""
    try:
        links = CredentialChain.decode(chain).credentials
        bodies = [CredentialBody.decode(link.body) for link in links]
    except DecodeError:
        return True
    feed = feed_for(bodies[0].issuer)
    if feed is None:
        return False
    return any(
        feed.credential_revoked(link.hash)
        or feed.identity_revoked(body.issuer.digest)
        or feed.identity_revoked(body.subject.digest)
        for link, body in zip(links, bodies, strict=True)
    )


def supersedes_an_issuer(
    chain: bytes,
    feed_for: Callable[[Identifier], VerifiedFeed | None],
    *,
    now: int,
    checkpoints: Checkpoints | None = None,
    seen: dict[tuple[bytes, bytes], bool] | None = None,
) -> bool:
    """Whether the feed held for `chain`'s authority (`feed_for`) supersedes the history the
    chain carries for one of its issuers (a delegator rotated since it signed its link): every
    verifier refuses the chain (`superseded history`), and a peer a channel showing it. Only
    the histories the feed names are verified; one that does not verify here is left to the
    verifier. Our own held chain: an undecodable one counts as superseded. `seen`: one memo
    for the rows one caller judges at one `now` with one `feed_for` (the authority and a
    history's bytes to whether the feed supersedes it): each history verified once, not once
    per row carrying it (review 69e, store 1: every row of a rotated authority carries its
    history, each copy verified again)."""
    try:
        decoded = CredentialChain.decode(chain)
        authority = CredentialBody.decode(decoded.credentials[0].body).issuer
        histories = [(data, UnverifiedHistory.decode(data)) for data in decoded.histories]
    except DecodeError:
        return True
    feed = feed_for(authority)
    if feed is None:
        return False
    memo: dict[tuple[bytes, bytes], bool] = {} if seen is None else seen
    for data, history in histories:
        if feed.supersession(Identifier(history.identifier_digest)) is None:
            continue
        key = (authority.digest, data)
        if key not in memo:
            memo[key] = _superseded(history, feed, now, checkpoints)
        if memo[key]:
            return True
    return False


def _superseded(
    history: UnverifiedHistory, feed: VerifiedFeed, now: int, checkpoints: Checkpoints | None
) -> bool:
    """Whether `feed` supersedes `history` (one that does not verify here: no, left to the
    verifier)."""
    try:
        feed.check_current(verify_history(history, now=now, checkpoints=checkpoints))
    except IdentityError:
        return False
    except CredentialError:
        return True
    return False


FeedSync = Generator[int, bytes, VerifiedFeed]
"""A feed sync's steps: yields where the next page starts, is sent that page, returns the
complete feed (CredentialWallet.feed_sync)."""


def feed_step(sync: FeedSync, page: bytes) -> int | VerifiedFeed:
    """Give a sync the page it asked for: where the next page starts, or the complete feed."""
    try:
        return sync.send(page)
    except StopIteration as done:
        feed: VerifiedFeed = done.value
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


def _caveats(chain: CredentialChain) -> list[_LinkCaveats]:
    """The (link index, caveats) of `chain`'s links that carry caveats."""
    links = []
    for index, credential in enumerate(chain.credentials):
        delegation = CredentialBody.decode(credential.body).delegation
        if delegation is not None and delegation.caveats:
            links.append((index, delegation.caveats))
    return links


def _caveated(chain: bytes) -> bool:
    """Whether a link of held `chain` carries a caveat (an undecodable one counts: nothing
    may rest on it)."""
    try:
        return bool(_caveats(CredentialChain.decode(chain)))
    except DecodeError:
        return True
