"""What a node trusts, in one object (docs/protocols.md, "Access"): its trust anchors (the
authorities it enrolled with and the one it hosts), the chain verifiers, the revocation feeds
it holds, the authorities whose chains it verified for each identity (`vouchers`), the
store-or-extend callback, and the staleness and skew it judges with.

Everything here is synchronous and may touch the node's store: the runtime calls the methods
that read or write storage (`reload`, `refresh_hosted`) off the event loop; the channel
callbacks (`known`, `observe`, `vouch`) run at handshakes, on the loop, and `vouch` writes only
when a peer shows a chain of an authority, or a later expiry, this node has not stored for it.
`standing` reads memory only: it runs at every access decision.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Final

from troth import limits
from troth.authority import Authority
from troth.channel import ChannelTrust, PeerPolicy, VerifiedPeer
from troth.channel.claims import ClaimCache
from troth.channel.verification import expired_peer, identity_refusal, standing_feeds
from troth.credentials import (
    ChainVerifier,
    Supersession,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
)
from troth.credentials.wallet import CredentialWallet
from troth.errors import AuthorityError, CredentialError, IdentityError, StorageError
from troth.identity import Checkpoints, Identifier, IdentityService, VerifiedIdentity
from troth.identity.known import Binds, Outranks, StoredSpan
from troth.node.access import ChannelAdmission, Standing
from troth.node.copies import REFUTABLE, attested_binds, feed_outranks, with_standing
from troth.node.node import Node
from troth.node.vouchers import Vouchers
from troth.storage import SqliteVoucherStore

__all__ = [
    "CREDENTIAL_SKEW",
    "FEED_STALENESS",
    "STANDING_CACHE",
    "Known",
    "NodeTrust",
    "extends_held",
    "own_authorities",
    "read_hosted",
    "store_or_extend",
]

FEED_STALENESS: Final = limits.DEFAULT_FEED_STALENESS_SECONDS
"""How old a held feed may be (seconds) before credentials checked against it are refused."""
CREDENTIAL_SKEW: Final = limits.DEFAULT_CREDENTIAL_SKEW_SECONDS
"""The clock skew allowed at the edges of a credential's window (seconds)."""
STANDING_CACHE: Final = 4096
"""Standings remembered (a standing depends only on the peer, the feeds and the second); a
peer's are forgotten when its last channel to the node closes (`NodeTrust.forget_peer`)."""
_ATTACHED: Final[weakref.WeakKeyDictionary[CredentialWallet, list[weakref.ref[NodeTrust]]]] = (
    weakref.WeakKeyDictionary()
)
"""The trusts attached to each wallet, oldest first (weakly: this keeps none alive): a
runtime's stop hands the wallet's `feed_binds` back to the one attached before it that still
runs (review 64v, api 2)."""
_ATTACHED_LOCK: Final = threading.Lock()
_OLDER: Final = "older than the copy this node stored since the handshake (it rotated)"


Known = Callable[[VerifiedIdentity], None]
"""A verifier's `known` callback: IdentityError for a history that forks from or rolls back a
stored copy."""


def store_or_extend(identities: IdentityService, now: int) -> Known:
    """A store of histories as a chain verifier's `known`: the first verified copy of an
    identity is stored, a later one must extend it (and is stored); IdentityError otherwise."""

    def known(identity: VerifiedIdentity) -> None:
        identities.import_history(identity, now=now)

    return known


def supersedes_extension(
    identities: IdentityService, identity: VerifiedIdentity, feeds: Iterable[VerifiedFeed]
) -> bool:
    """Whether `identity` extends the stored copy and one of `feeds` (the trust anchors' held
    feeds) supersedes it: which history is the owner's, so a thief's fork it names is never
    stored over the copy (review 57p, policies 1 and 2). A feed that revokes the identity says
    not which history is the owner's: its extension is stored, else the owner's rotation away
    from a stolen key was never held to and the retired key's chains verified here (review
    57w, trust 2)."""
    stored = identities.stored_changes(identity.identifier)
    if stored is None or identity.current.index < stored:
        return False
    for feed in feeds:
        try:
            feed.check_current(identity)
        except CredentialError:
            return True
    return False


class NodeTrust:
    """A node's trust anchors, verifiers and held feeds (`feeds`, by authority)."""

    def __init__(self, node: Node, hosted: Authority | None) -> None:
        self.node = node
        self.hosted = hosted
        """The authority this node hosts (its own feed is read from its store)."""
        self.anchors: frozenset[Identifier] = frozenset()
        self.feeds: dict[Identifier, VerifiedFeed] = {}
        self.due: frozenset[Identifier] = frozenset()
        """The authorities whose feed a revocation made on this machine left due a sync (the
        store's marks, read at each feed refresh and every `DUE_POLL` s, troth.node.duewatch:
        `read_due`; review 50b, revdue 1): their chains a peer presents are judged
        by none of this node's decisions until it is synced (`_judge`: fail closed; review
        48w, duepeer 1)."""
        self.routes: dict[Identifier, str] = {}
        """Where each trusted authority is reached (a route, or node:NAME on this machine)."""
        self.verifier: ChainVerifier | None = None
        """Checks chains (the trace collector's): an issuer history that extends a stored
        copy is stored (`_extend_known`); a new one is judged, and stored by the collector once
        a record under its chain is appended; one a copy from a checkpoint does not bind (the
        chain's root has standing over it) is verified, the copy left as it is."""
        self._handshakes: ChainVerifier | None = None
        """Checks chains at handshakes: issuer histories are judged against the stored copies
        as a peer's is, the chain's root having standing over them (`_issuer_known`), and
        stored only once the peer is admitted (`_remember`)."""
        self._recheck: ChainVerifier | None = None  # per decision: memory only (no `known`)
        self._claims = ClaimCache()  # peers' handshake claims verified before (their bytes)
        self.vouchers = Vouchers(
            SqliteVoucherStore(node.db),
            feeds=lambda: self.feeds,
            stored_changes=node.identities.stored_changes,
        )
        """Whose chains this node verified for each identity: their word on it counts (not
        that of one that attested a change of it shown made up: `Vouchers.refuted`)."""
        # a feed page's authority history is judged as a peer's is (the authority, an anchor,
        # has standing over its own history: review 29a, feeds 1)
        self._feed_binds: Callable[[VerifiedIdentity], Binds] = lambda identity: self._binds(
            identity, ()
        )
        with _ATTACHED_LOCK:  # the latest attached trust's (review 64v, api 2)
            # a new list, under the lock detach replaces it under: appended to the one a
            # detach was copying, the hook was lost (review 64b2, trust 1)
            identities = node.identities
            identities.refuted_hooks = [*identities.refuted_hooks, self.vouchers.refuted]
            attached = _ATTACHED.setdefault(node.wallet, [])
            attached[:] = [each for each in attached if each() is not None]
            attached.append(weakref.ref(self))
            node.wallet.feed_binds = self._feed_binds
        self._generation = 0
        self._installing = threading.Lock()
        """Held while a feed or the marks' reading is checked and installed: the runtime's
        worker and another runtime's or a caller's thread here (`sync_runtimes_here`) both
        install them; between one's check and its install the other installed a newer feed,
        and the older went in, a revocation dropped from memory (review 69u, wave3 3). Never
        held across I/O: the loop installs feeds itself (review 69x, wave4c 1)."""
        self._reading_due = threading.Lock()  # `read_due`'s reads, one at a time
        self._standings: dict[int, tuple[VerifiedPeer, tuple[int, int], int, Standing]] = {}
        self._standing_keys: dict[Identifier, set[int]] = {}  # `_standings`' keys by identity
        self._standings_lock = threading.Lock()  # `standing` runs on worker threads too
        self.feed_hooks: list[Callable[[VerifiedFeed], None]] = []
        """Called with every feed `set_feed` installs (on the thread that installed it)."""

    def detach(self) -> None:
        """Take this trust's hooks off its node, as the runtime it served stops: the node (a
        `troth.Node` handle's) outlives the runtime, and kept each one's trust, its verifiers
        and caches, alive for good, a feed page judged by the last stopped one's (review 64n,
        api 6: a long-lived handle grew at each `serve`, `connect` or `Node.call`)."""
        identities, mine = self.node.identities, self.vouchers.refuted
        wallet = self.node.wallet
        with _ATTACHED_LOCK:  # another runtime on this node that still runs keeps its own
            # binds (review 64v, api 2: a later runtime's stop left it with none)
            # a new list: another runtime's refutation iterating the old one on its worker
            # thread skipped the hook after this one's (review 64v, api 3); under the lock,
            # or a trust attached meanwhile lost its hook (review 64b2, trust 1)
            identities.refuted_hooks = [hook for hook in identities.refuted_hooks if hook != mine]
            attached = _ATTACHED.get(wallet, [])
            attached[:] = [each for each in attached if each() not in (None, self)]
            if wallet.feed_binds is self._feed_binds:
                latest = attached[-1]() if attached else None
                wallet.feed_binds = None if latest is None else latest._feed_binds

    # -- storage (call off the event loop) -------------------------------------------------------

    def reload(self, now: int) -> None:
        """Read the trusted authorities, the feeds held for them and the vouchers from the
        store (forgetting those of the authorities that named a made-up change of the identity:
        `Vouchers.forget_refuted`)."""
        self.vouchers.load()
        wallet = self.node.wallet
        # a feed a link revocation made here left to sync (its process killed after the
        # authority took it) is synced before the feeds are read (review 48m, revcrash 2)
        wallet.settle_syncs(now=now)  # (a sync that fails is logged: the marks stand)
        self.routes = wallet.trusted()
        anchors = set(self.routes)
        if self.hosted is not None:
            anchors.add(self.hosted.identifier)
        if frozenset(anchors) != self.anchors:
            self.anchors = frozenset(anchors)
            policy = TrustPolicy(self.anchors) if anchors else None
            self.verifier = (
                None if policy is None else ChainVerifier(policy, known_in=self._extend_known)
            )
            self._handshakes = (
                None if policy is None else ChainVerifier(policy, known_in=self._issuer_known)
            )
            self._recheck = (  # the chains its handshakes verified: byte checks taken up
                None if policy is None else ChainVerifier(policy, checked_by=self._handshakes)
            )
        self.learn_held()
        self.refresh_hosted(now, force=True)
        # made-up changes another process recorded (or this one, before a crash): their
        # authors' rows go, once their feeds are held (review 26b, refuted 2)
        self.vouchers.forget_refuted()

    def learn_held(self) -> None:
        """Hold the feed the store holds of each trusted authority (the hosted one aside: its
        feed is its store's) when it is newer than the one in memory: another process, or code
        outside the runtime, synced it (`troth revoke link` stores the entry its revocation
        took: review 47k, revsync 1; it only re-read the feeds it did not hold yet). Never an
        older one: a feed only grows."""
        wallet = self.node.wallet
        self.read_due()
        hosted = None if self.hosted is None else self.hosted.identifier
        for authority in self.routes:
            feed = wallet.held_feed(authority)
            current = self.feeds.get(authority)
            if feed is None or authority == hosted:
                continue
            if current is None or (feed.count, feed.issued_at) > (current.count, current.issued_at):
                self.set_feed(authority, feed)

    def read_due(self) -> None:
        """Read which authorities' feeds link revocations made here left due a sync (`due`;
        one query, at each feed refresh and every `DUE_POLL` s: the decisions themselves read
        memory only)."""
        with self._reading_due:  # (a read before another thread's, installed after it: stale)
            due = frozenset(Identifier(d) for d, _ in self.node.wallet.store.syncs_due())
            with self._installing:  # in memory only: a feed's install (the loop's) never
                if due != self.due:  # waits for this query (review 69x, wave4c 1)
                    self.due = due
                    self._generation += 1  # the standings cached were judged without it

    def routes_changed(self) -> bool:
        """Whether the store trusts other authorities (or routes) than this node read (another
        process enrolled, trusted or resumed an enrollment)."""
        return self.node.wallet.trusted() != self.routes

    def refresh_hosted(self, now: int, *, force: bool = False) -> bool:
        """Re-read the hosted authority's feed when it grew (another process may have revoked)
        or when `force`d (to renew its freshness); whether it was re-read."""
        hosted = self.hosted
        if hosted is None:
            return False
        previous = self.feeds.get(hosted.identifier)
        count, head = hosted.store.revocation_tip()
        # the same count with another head: the store restored, then grown again (review
        # 63w2, relay 1: the revocation it holds now was not read)
        held = previous is not None and (previous.count, previous.head) == (count, head)
        if not force and (held or (previous is not None and previous.count == count == 0)):
            return False
        feed = read_hosted(hosted, previous, now)
        if feed is None:
            if previous is not None and hosted.restore_hold() is not None:
                self.drop_feed(hosted.identifier)  # held: no feed of it (review 65z, hold 1)
            return True  # else the held feed kept: it revokes more
        # fewer entries than the feed held (read before): the store restored further back,
        # then grown again or not; its line is the feed the authority serves, and the new
        # line's revocations are in no other (review 64d, feed 1: dropped as a late sync)
        self.set_feed(
            hosted.identifier, feed, restored=previous is not None and feed.count < previous.count
        )
        return True

    def own_authorities(self) -> frozenset[Identifier]:
        """The authorities that speak for this node's own resources when the operator named
        none (a secret's `grantable_by`, a published MCP server's): the one it hosts; on a node
        hosting none, the one it trusts when it trusts exactly one; otherwise none (deny by
        default: a node trusts every authority it enrolls with; review 37c, broker 1 and mcp 1;
        docs/secrets.md, "Whose bundles grant a secret")."""
        return own_authorities(
            None if self.hosted is None else self.hosted.identifier, self.anchors
        )

    # -- memory ------------------------------------------------------------------------------------

    def set_feed(
        self, authority: Identifier, feed: VerifiedFeed, *, restored: bool = False
    ) -> None:
        """Hold `feed` as `authority`'s current feed (every later decision sees it), unless
        it has fewer entries than the one held: a sync that ended before another process
        stored a revocation installs its feed after `learn_held` took the newer one (review
        48c, memory 1: the node admitted the revoked link until its next round). `restored`:
        the hosted authority's store went back past the held feed (`refresh_hosted`), whose
        line it replaces whatever its count (review 64d, feed 1)."""
        with self._installing:
            current = self.feeds.get(authority)
            if current is not None and feed.count < current.count and not restored:
                return
            self.feeds = {**self.feeds, authority: feed}  # replaced, never mutated: readers on
            self._generation += 1  # another thread keep a consistent mapping
        for hook in self.feed_hooks:
            hook(feed)

    def drop_feed(self, authority: Identifier) -> None:
        """Hold no feed of `authority`: every chain of it refused (its hosted store held)."""
        with self._installing:
            self.feeds = {a: f for a, f in self.feeds.items() if a != authority}
            self._generation += 1

    def channel_trust(self, policy: PeerPolicy) -> ChannelTrust:
        """How channels judge peers: `policy` admits them (the decision point's adapter; the
        identity it pins, `ChannelAdmission.expect`, has its history kept: `_remember`)."""
        pinned = policy.expect if isinstance(policy, ChannelAdmission) else None
        return ChannelTrust(
            policy=policy,
            verifier=self._handshakes,
            feeds=lambda: self.feeds,
            known=self.node.identities.check_known,
            observe=functools.partial(self._remember, pinned=pinned),
            checkpoints=self.checkpoints,
            vouched=self.vouchers.of,
            vouched_for=self.vouchers.standing,
            vouch=self._vouch,
            known_by=self._known_by,
            claims=self._claims,
        )

    def _vouch(
        self, identity: VerifiedIdentity, credentials: tuple[VerifiedCredential, ...]
    ) -> bool:
        """Remember the roots of `credentials` for `identity`, with the oldest change of the
        history they were verified with (`Vouchers.standing`), and that history (a refuted
        change it holds, a full one, is real: review 29a, refuted 1)."""
        since = (identity.first_index, identity.changes[0].change_hash)
        return self.vouchers.vouch(identity.identifier, credentials, since=since, history=identity)

    def _known_by(
        self, identity: VerifiedIdentity, credentials: tuple[VerifiedCredential, ...]
    ) -> None:
        """The store-or-extend check of a full history some trusted authority vouches for now
        (`credentials`, all verified): a copy from a checkpoint binds it only when an authority
        attesting it has standing over it (`_binds`), a full copy it forks from only while the
        authorities with standing over both do not supersede it (`_outranks`: review 54i,
        identity 2). Changes nothing (`_remember` does, once the peer is admitted)."""
        self.node.identities.check_known(
            identity,
            binds=self._binds(identity, credentials),
            outranks=self._outranks(identity, credentials),
        )

    def _outranks(
        self, identity: VerifiedIdentity, credentials: tuple[VerifiedCredential, ...]
    ) -> Outranks:
        """`feed_outranks` of `identity` shown with the verified `credentials`, by the
        authorities that vouched for it here (none: every trust anchor, review 54m, identity
        2) and the held feeds, worked out only when asked (a full copy refused it: rarely; the
        hot path, an admitted peer's copy, never asks)."""

        def outranks(span: StoredSpan) -> bool:
            roots = {credential.authority for credential in credentials}
            vouched = self.vouchers.of(identity.identifier)
            return feed_outranks(identity, roots, vouched, self.feeds, self.anchors)(span)

        return outranks

    def _issuer_known(self, identity: VerifiedIdentity, root: Identifier) -> None:
        """The handshake verifier's `known_in`: the store-or-extend check of an issuer history
        of a chain whose root is `root` (verified otherwise), judged as a peer's full history
        is (`_known_by`), the root having standing over it: a copy from a checkpoint only
        another authority attests does not bind it (docs/formats.md, "A stored copy from a
        checkpoint"; review 29a, issuers 1). Changes nothing (`_remember` does, once the peer
        is admitted). The standing is computed only for a full history the copy refuses (as
        for a peer: the hot path, a known issuer, stays a cache lookup)."""
        binds = functools.partial(self._binds_over, identity, {root})
        with_standing(self.node.identities.check_known, identity, binds)

    def _binds(
        self, identity: VerifiedIdentity, credentials: tuple[VerifiedCredential, ...]
    ) -> Binds:
        """Whether a stored copy from a checkpoint binds `identity`, shown with the verified
        `credentials`: `_binds_over` their roots."""
        return self._binds_over(identity, {credential.authority for credential in credentials})

    def _binds_over(self, identity: VerifiedIdentity, roots: set[Identifier]) -> Binds:
        """Whether a stored copy from a checkpoint (its changes) binds `identity`, shown in or
        with verified chains of `roots` (docs/formats.md, "A stored copy from a checkpoint"):
        some authority whose held feed names one of its changes (in any supersession) has
        standing over `identity` — one of `roots`, the identity itself as an anchor, or an
        authority that vouched for it with a history holding a change `identity` holds
        (`Vouchers.standing`: its word, whatever chain the peer hides now) — or no held feed
        names any (who attests it is unknown: deny when in doubt)."""
        identifier = identity.identifier
        over = set(roots)
        over |= self.vouchers.standing(identity)
        if identifier in self.anchors:
            over.add(identifier)
        return attested_binds(identifier, over, self.feeds)

    def _extend_known(self, identity: VerifiedIdentity, root: Identifier) -> None:
        """The trace collector's verifier's `known_in`: a history of an identity the node
        stores a copy of is stored when it extends that copy (a rotation the node then holds
        to); a new identity's is judged against the store (IdentityError as `observe`) but not
        kept: the collector stores it once a record under its chain is appended, so chains
        whose records are refused leave no throwaway delegates' histories behind (review 27t,
        collection 3; as `_remember` at the handshake, review 23a). A full history that forks
        from or rolls back a copy from a checkpoint is judged as at the handshake
        (`_issuer_known`: the chain's root `root` has standing over it); a copy that does not
        bind it is left as it is (replaced only when a peer showing it is admitted)."""
        identities = self.node.identities
        if identities.stored_changes(identity.identifier) is None:
            identities.check_known(identity)
            return
        try:
            identities.check_known(identity)
        except IdentityError as exc:
            if exc.reason not in REFUTABLE:
                raise
            self._issuer_known(identity, root)  # raises unless the copy does not bind it
            return
        self.observe_unrefuted(identity)

    def observe_unrefuted(self, identity: VerifiedIdentity) -> None:
        """Store (or extend) a verified chain's issuer history, unless it extends the stored
        copy and a trust anchor's held feed supersedes it (`supersedes_extension`): a chain is
        judged by its root's feed alone, so a thief's fork of a rotation another authority
        published was stored over the copy, the owner's history a FORK here after (review 57p,
        policies 2, as the bundle verifier's, policies 1; and by the trace collector once a
        record under the chain was appended, review 57t, trust 1)."""
        if not self._refuted_extension(identity):
            self.node.identities.observe(identity)

    def _refuted_extension(self, identity: VerifiedIdentity) -> bool:
        """Whether `identity` extends the stored copy and a trust anchor's held feed supersedes
        it (`supersedes_extension`): such an issuer history is never stored
        (`observe_unrefuted`, `_remember`; review 57w, trust 1)."""
        feeds = (feed for a in self.anchors if (feed := self.feeds.get(a)) is not None)
        return supersedes_extension(self.node.identities, identity, feeds)

    def _remember(self, peer: VerifiedPeer, *, pinned: Identifier | None = None) -> None:
        """Store (or extend) an admitted peer's history, and its chains' issuer histories, when
        it is a member (a credential from a trust anchor) or an anchor: a stranger admitted to
        enroll is judged against the store but not kept (its history is stored when it
        enrolls), and a peer refused (e.g. its member's share of the vouchers is full) leaves
        no history behind, its delegators' neither (review 23a, histories 1). The history of
        a peer admitted without a credential is kept when it is the identity the channel pins
        (`pinned`: the operator's choice, one identity) or one this node stores a copy of (an
        extension replaces it; nothing new is stored): else the node verified a pinned peer's
        rotation at every handshake and admitted its stale backup, the pre-rotation keys,
        right after (review 50g, pinned 1)."""
        identities = self.node.identities
        if peer.credentials or peer.identifier in self.feeds:
            observe = identities.observe
            for credential in peer.credentials:
                for issuer in credential.issuers:
                    # judged as at the handshake (`_issuer_known`: the chain's root has
                    # standing over it): a copy that does not bind it is replaced now; an
                    # extension a trust anchor's held feed refutes is not stored (the chain is
                    # judged by its root's feed alone: review 57w, trust 1)
                    if not self._refuted_extension(issuer):
                        observe(issuer, binds=self._binds_over(issuer, {credential.authority}))
            # judged as at the handshake (`_known_by`): a copy that does not bind its full
            # history is replaced now that it is admitted, and its attesters' word forgotten
            observe(
                peer.identity,
                binds=self._binds(peer.identity, peer.credentials),
                outranks=self._outranks(peer.identity, peer.credentials),  # 54i, identity 2
            )
        elif peer.identifier == pinned or identities.stored_changes(peer.identifier) is not None:
            identities.observe(peer.identity, binds=self._binds(peer.identity, ()))

    def checkpoints(self, now: int) -> Checkpoints:
        """The node's word on checkpointed peer histories: its stored copies and held feeds
        (channels, and the trace service's signers: review 47i, collector 1)."""
        return self.node.wallet.checkpoints(now=now, max_staleness=FEED_STALENESS)

    def standing(self, peer: VerifiedPeer, now: int) -> Standing:
        """`peer`'s standing against the feeds held now: its identity not revoked nor
        superseded by an authority with standing over it (the roots of the chains it verified
        at the handshake, itself when it is an anchor, the authorities whose chains this node
        verified for it at any time: `vouchers`; every held feed for a stranger:
        `standing_feeds`), each credential re-verified (windows, revocation, supersession;
        the byte checks are cached by the verifier)."""
        key = id(peer)
        generation = (self._generation, self.vouchers.generation)
        cached = self._standings.get(key)
        if (
            cached is not None
            and cached[0] is peer
            and cached[1] == generation
            and cached[2] == now
        ):
            return cached[3]
        standing = self._judge(peer, now)
        with self._standings_lock:
            if len(self._standings) >= STANDING_CACHE:
                self._standings.clear()
                self._standing_keys.clear()
            self._standings[key] = (peer, generation, now, standing)
            self._standing_keys.setdefault(peer.identifier, set()).add(key)
        return standing

    def forget_peer(self, identifier: Identifier) -> None:
        """Drop the standings cached for `identifier`'s peers (its last channel to the node
        closed: they held its identity and chains until 4,096 other peers' took their place;
        review 45b, standings 3)."""
        with self._standings_lock:
            for key in self._standing_keys.pop(identifier, ()):
                entry = self._standings.get(key)
                if entry is not None and entry[0].identifier == identifier:
                    del self._standings[key]

    def _judge(self, peer: VerifiedPeer, now: int) -> Standing:
        identity = peer.identity
        is_anchor = peer.identifier in self.anchors
        feeds = self.feeds
        over = standing_feeds(
            peer.identifier,
            peer.credentials,
            self.anchors,
            feeds,
            vouched=self.vouchers.standing(identity),
        )
        refusal = identity_refusal(identity, over)
        if refusal is not None:
            problem = f"it is {refusal.detail}" if refusal.revoked else refusal.detail
            return Standing((), is_anchor, problem)
        expired = expired_peer(peer, now)  # between re-checks too (review 68n, expiry 1)
        if expired is not None:
            return Standing((), is_anchor, expired)
        outgrown = self.node.identities.outgrown
        if outgrown(identity):  # a rotation stored since the handshake (review 55j, rotation 1)
            return Standing((), is_anchor, f"its history is {_OLDER}")
        verifier = self._recheck
        if verifier is None:
            dropped = (f"{self.node.name} trusts no authority yet: enroll it with one first",)
            return Standing((), is_anchor, None, dropped)
        current: list[VerifiedCredential] = []
        dropped_reasons = list(peer.dropped)  # chains of roots this node does not trust
        due = self.due
        waiting: set[Identifier] = set()
        for credential in peer.credentials:
            if credential.authority in due:  # the held feed may predate a revocation made here
                waiting.add(credential.authority)
                dropped_reasons.append(  # (review 48w, duepeer 1)
                    f"a credential from {credential.authority}: its feed is due a sync after a "
                    f"revocation made on this machine; wait for {self.node.name}'s copy of "
                    "its feed to be synced"
                )
                continue
            if any(outgrown(issuer) for issuer in credential.issuers):
                dropped_reasons.append(
                    f"a credential from {credential.authority}: an issuer history is {_OLDER}"
                )
                continue
            try:
                current.append(
                    verifier.verify(credential.chain, presenter=identity, feeds=feeds, now=now)
                )
            except CredentialError as exc:
                dropped_reasons.append(f"a credential from {credential.authority}: {exc}")
        return Standing(tuple(current), is_anchor, None, tuple(dropped_reasons), frozenset(waiting))


def own_authorities(
    hosted: Identifier | None, trusted: frozenset[Identifier]
) -> frozenset[Identifier]:
    """`NodeTrust.own_authorities` from its parts: `hosted` (the authority the node hosts, if
    any) and the authorities it `trusted`; also what `put_secret` records for a secret on a
    node not running (the broker's `_with_grantors`)."""
    if hosted is not None:
        return frozenset({hosted})
    return trusted if len(trusted) == 1 else frozenset()


_log = logging.getLogger(__name__)
_AGAIN: Final = "revoked again: the authority's store went back past it"


def read_hosted(hosted: Authority, previous: VerifiedFeed | None, now: int) -> VerifiedFeed | None:
    """The hosted authority's feed read from its store after `previous` (the one the caller
    held, None: none yet), for every holder of a hosted feed across calls (the runtime's
    `NodeTrust`, a `troth.Node` handle, `NodeFeeds`): a line that is not `previous`'s (the
    store went back) is taken once the held feed's revocations and supersessions it lacks
    are made again (review 64j, feed 1: 64d installed the shorter line whole, and the hub
    admitted the members they revoked; review 65c, feed 2: a handle's and the CLI's did
    still); None when that failed (the caller keeps `previous`: it revokes more), or while a
    restore of node.db holds the authority (review 65o, feed 2: the store's line is the copy's,
    which lacks every revocation made after it; the caller holds no feed of it, or the one it
    held: every chain of the authority refused for want of one)."""
    if hosted.restore_hold() is not None:
        return None
    feed = hosted.held_feed(now=now, previous=previous)
    if previous is None or extends_held(hosted, previous, feed):
        return feed
    return _revoke_again(hosted, previous, feed, now)


def extends_held(hosted: Authority, previous: VerifiedFeed, feed: VerifiedFeed) -> bool:
    """Whether `feed` (read from the hosted authority's store) holds `previous`'s line: at
    least as many entries, and the store's head at `previous.count` is `previous`'s."""
    if previous.count == 0:
        return True
    if feed.count <= previous.count:
        return (feed.count, feed.head) == (previous.count, previous.head)
    return hosted.store.head_at(previous.count) == previous.head


def _descends(hosted: Authority, digest: bytes, line: Supersession, held: Supersession) -> bool:
    """Whether the store's line's newest supersession of `digest` (`line`) names a history
    that holds the held feed's (`held`): one of more changes, whose change `held.changes - 1`
    the line names too, or which the copy the authority's node stores holds with the held
    change (one line of history holding both). A longer one that does not (a stolen backup's
    key-holder forked the retired history once the store went back, the authority storing the
    fork over the restored copy) is no word on the held one: it is published again, the
    line's newest then (review 65k, feed 1: the hub took a line that accepted the fork and
    refused the owner's rotation; review 66l, feed 1: the stored copy, the owner's, held the
    held change and not the fork's the line names, and was taken as the line's word)."""
    if line.changes <= held.changes:
        return False
    if hosted.store.supersession_hash(digest, held.changes) == held.change_hash:
        return True
    stored = hosted.identities.window_around
    return (
        stored(digest, held.change_hash) is not None
        and stored(digest, line.change_hash) is not None
    )


def _revoke_again(
    hosted: Authority, previous: VerifiedFeed, feed: VerifiedFeed, now: int
) -> VerifiedFeed | None:
    """The hosted authority's feed once it revoked again every identity and credential
    `previous` (the feed the hub held) revoked and `feed` (its store's line now: gone back,
    a restore) does not, and published again each supersession `previous` holds and `feed`
    does not (or of fewer changes, or another hash: review 65c, feed 1; or of more that do
    not hold it, `_descends`: review 65k, feed 1); None when that
    failed (logged: the held feed is kept, denying them).
    Deny when in doubt: a store gone back forgets no revocation the hub held (review 64j,
    feed 1), in one transaction (review 64p, feed 1). Other nodes holding the old line
    refuse the new one as before (docs/storage.md)."""
    identities = [
        digest
        for digest in previous.revoked_identities
        if not feed.identity_revoked(digest) and digest != hosted.identifier.digest
    ]
    credentials = [h for h in previous.revoked_credentials if not feed.credential_revoked(h)]
    # its supersessions too (review 65c, feed 1: the line the hub took let a member's retired
    # history through where the held feed refused it), the held one's where they differ
    line = feed.superseded()
    superseded = [
        (Identifier(digest), held)
        for digest, held in previous.superseded().items()
        if (now_line := line.get(digest)) != held
        and not (now_line is not None and _descends(hosted, digest, now_line, held))
    ]
    if not identities and not credentials and not superseded:
        return feed
    try:
        # one transaction, all or none: one commit each took an fsync under `durability =
        # full` and a raise of the rollback guard (review 64p, feed 1: 1,000 identities ~7 s
        # on the hub's worker, a failure part way left some revoked again)
        with hosted.store.transaction():
            for digest in identities:
                hosted.revoke_identity(Identifier(digest), now=now, reason=_AGAIN)
            if credentials:
                hosted.revoke_credentials(credentials, now=now, reason=_AGAIN)
            for target, held in superseded:
                hosted.revocations.supersede_again(target, held, now=now)
        again = hosted.held_feed(now=now, previous=feed)
    except StorageError as exc:  # the database's (busy, I/O): tried again at the next read
        _log.error(
            "the hosted authority's store went back past the feed held; revoking again "
            "what it lost failed (%s): the held feed is kept, tried again at the next read",
            exc,
        )
        return None
    except AuthorityError as exc:
        # for good (the feed full, an entry over its limit): the held feed is blind to the new
        # line's revocations and the line to the held one's, so the authority is held as a
        # restore holds it (review 65z, hold 1): its node holds no feed of it, it issues
        # nothing until its operator resolves it (`troth authority release-restored`)
        _log.error(
            "the hosted authority's store went back past the feed held; revoking again "
            "what it lost failed for good (%s): the authority is held (every chain of it "
            "refused here) until troth authority release-restored --revoked-again",
            exc,
        )
        lost = [
            *(("identity", digest) for digest in identities),
            *(("credential", digest) for digest in credentials),
            *(("supersession", target.digest) for target, _ in superseded),
        ]
        try:  # what it lost kept with the hold: the held feed is dropped (review 67d, hold 1)
            hosted.store.hold(now, lost)
        except StorageError as failed:  # not held: the held feed kept, tried again next read
            _log.error("holding the hosted authority failed (%s)", failed)
        return None
    _log.warning(
        "the hosted authority's store went back past the feed held (%d entries, %d now): "
        "revoked again %d identity(ies) and %d credential(s) it had revoked, %d "
        "supersession(s) published again",
        previous.count,
        feed.count,
        len(identities),
        len(credentials),
        len(superseded),
    )
    return again
