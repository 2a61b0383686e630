"""What every gate of a node decides with (docs/policy.md, "Bundles on a node"): the node's
policy bundles and the decision point on them (`NodePolicies`), the feeds it holds
(`NodeFeeds`, for code outside a running node), and the credentials a decision is made for (a
local identity's, `LocalCredential`; a channel peer's, `PeerCredential`). Split from
troth.node.services.policy, which distributes the bundles (the policy service)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from troth.authority import Authority
from troth.authority.tickets import LOCAL_PREFIX
from troth.channel import VerifiedPeer
from troth.channel.verification import identity_refusal
from troth.clock import Clock
from troth.credentials import (
    ChainVerifier,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
)
from troth.credentials.wallet import revokes_a_link
from troth.crypto import sha256
from troth.errors import (
    CredentialError,
    CredentialFailure,
    IdentityError,
    PolicyError,
    PolicyFailure,
)
from troth.gates import (
    ActiveBundle,
    BundleStore,
    DecisionPoint,
    DecisionRecorder,
    PolicyEngine,
    SqliteBundleTable,
    VerifiedBundle,
    bundle_claims,
)
from troth.identity import Identifier, VerifiedIdentity
from troth.node.access import Standing
from troth.node.copies import with_standing
from troth.node.node import Node
from troth.node.trust import (
    CREDENTIAL_SKEW,
    FEED_STALENESS,
    read_hosted,
    supersedes_extension,
)

__all__ = [
    "LocalCredential",
    "NodeFeeds",
    "NodePolicies",
    "PeerCredential",
    "unrevoked",
]

log = logging.getLogger("troth.node.policy")  # one logger with the policy service
_P = PolicyFailure


class NodeFeeds:
    """The feeds a node holds, read from its store at each call (for code outside a running
    node: the CLI, the local MCP gate): the hosted authority's from its own store, the others'
    as the running node last synced them (a node that is not running lets them go stale, and
    stale feeds deny)."""

    def __init__(self, node: Node, clock: Clock) -> None:
        self.node = node
        self.clock = clock
        self.hosted: Authority | None = node.hosted_authority()
        self._hosted_feed: VerifiedFeed | None = None

    def __call__(self, authority: Identifier) -> VerifiedFeed | None:
        """The current feed of `authority`, or None."""
        hosted = self.hosted
        if hosted is not None and authority == hosted.identifier:
            # a store gone back forgets nothing this held (review 65c, feed 2)
            feed = read_hosted(hosted, self._hosted_feed, self.clock.now())
            if feed is not None or hosted.restore_hold() is not None:
                self._hosted_feed = feed  # held: none (review 65z, hold 1)
            return self._hosted_feed
        return self.node.wallet.held_feed(authority)

    def anchors(self) -> frozenset[Identifier]:
        """The authorities the node trusts (the ones it enrolled with, the one it hosts)."""
        anchors = set(self.node.wallet.trusted())
        if self.hosted is not None:
            anchors.add(self.hosted.identifier)
        return frozenset(anchors)

    def all(self) -> dict[Identifier, VerifiedFeed]:
        """The current feed of every trusted authority that has one."""
        feeds = {authority: self(authority) for authority in self.anchors()}
        return {authority: feed for authority, feed in feeds.items() if feed is not None}


class NodePolicies:
    """A node's policy bundles (its own table) and the decision point on them (module
    docstring). `feeds` gives an authority's current feed; `trust` sets the anchors."""

    def __init__(
        self,
        node: Node,
        feeds: Callable[[Identifier], VerifiedFeed | None],
        *,
        recorder: DecisionRecorder | None = None,
    ) -> None:
        self.node = node
        self.feeds = feeds
        self.table = SqliteBundleTable(node.db)
        self.store: BundleStore | None = None
        self.anchors: frozenset[Identifier] = frozenset()
        self.point = self.decision_point(recorder)

    def decision_point(self, recorder: DecisionRecorder | None = None) -> DecisionPoint:
        """A decision point on these bundles and feeds, with the node's clock skew, handing its
        decisions to `recorder` (a gate that records where `self.point` does not)."""
        return DecisionPoint(self, self.feeds, recorder=recorder, max_clock_skew=CREDENTIAL_SKEW)

    def trust(self, anchors: frozenset[Identifier], *, now: int) -> None:
        """Trust `anchors` (bundles of other authorities are refused) and activate the stored
        bundles (on storage: call off the event loop)."""
        if anchors and anchors != self.anchors:
            verifier = ChainVerifier(
                TrustPolicy(
                    anchors, max_clock_skew=CREDENTIAL_SKEW, max_feed_staleness=FEED_STALENESS
                ),
                known_in=self._issuer_known,
            )
            if self.store is None:
                self.store = BundleStore(
                    verifier,
                    self.table,
                    known_in=self._signer_known,
                    checkpoints=self.node.identities.attested_by_store,
                )
            else:
                self.store.use(verifier)
        self.anchors = anchors
        self.reload(now=now)

    def _issuer_known(self, identity: VerifiedIdentity, authority: Identifier) -> None:
        """A chain's issuer histories (a bundle signer's, a caller's) judged against the node's
        stored copies, as at a handshake (the chain's root has standing over them). One that
        extends a stored copy is stored (a rotation the node then holds to, as the trace
        collector's verifier does: `NodeTrust._extend_known`): with `known_in` a verifier keeps
        no memory of its own, so a rotation seen only in a bundle's chain no longer refused
        the retired key's chains (review 57j, bundles 1); a new identity's is not kept, nor an
        extension the held feed of a trust anchor supersedes (`supersedes_extension`): the chain is
        judged by its root's feed alone, so a thief's fork of a rotation another authority
        published was stored over the copy, the owner's history a FORK here after (review 57p,
        policies 1)."""
        identities = self.node.identities
        binds = functools.partial(self.node.binds_over, identity, {authority})
        with_standing(identities.check_known, identity, binds)
        if identities.stored_changes(identity.identifier) is None:
            return
        if supersedes_extension(identities, identity, self._anchor_feeds()):  # (57w, trust 2)
            return
        with contextlib.suppress(IdentityError):  # a copy that does not bind it: left as it is
            identities.observe(identity)

    def _signer_known(self, identity: VerifiedIdentity, authority: Identifier) -> None:
        """Store (or extend) a verified bundle signer's history. A full history a copy from a
        checkpoint refuses is judged again with the node's `Binds`, the bundle's `authority`
        (the root of the chain verified with it) having standing over it (docs/formats.md,
        "A stored copy from a checkpoint"): a copy that does not bind it is replaced (review
        30a, bundles 1: else a co-trusted authority's copy of acme's policy admin made up
        after a gap kept acme's bundles off this node). An extension a trust anchor's held feed
        supersedes is not stored (`supersedes_extension`: a thief's fork of the signer's
        rotation, the chain judged by its root's feed alone; review 57w, trust 3)."""
        identities = self.node.identities
        if supersedes_extension(identities, identity, self._anchor_feeds()):
            return
        binds = functools.partial(self.node.binds_over, identity, {authority})
        with_standing(identities.observe, identity, binds)

    def _anchor_feeds(self) -> Iterator[VerifiedFeed]:
        """The trust anchors' held feeds."""
        return (feed for a in self.anchors if (feed := self.feeds(a)) is not None)

    def reload(self, *, now: int) -> list[VerifiedBundle]:
        """Activate the bundles stored since (by another process: `troth policy push`)."""
        return [] if self.store is None else self.store.reload(now=now)

    def accept(
        self, data: bytes, *, now: int, confirms: bool = True
    ) -> tuple[VerifiedBundle, bool]:
        """Verify, store and activate a bundle of a higher revision (PolicyError otherwise;
        the bytes already active again are no error): the bundle, and whether it is new.
        `confirms`: the bytes held back, given again, decide again (`BundleStore.accept`)."""
        if self.store is None:
            raise PolicyError(_P.UNTRUSTED_AUTHORITY, "this node trusts no authority yet")
        held = {a: self.store.active(a) for a in self.anchors}
        feeds = {a: feed for a in self.anchors if (feed := self.feeds(a)) is not None}
        noted = self.store.conflicts_noted
        try:
            verified = self.store.accept(data, feeds=feeds, now=now, confirms=confirms)
        except PolicyError as exc:
            # two signers at one revision: said once per conflict, not at each replay of the
            # refused bundle (review 43b, bundles 2)
            if exc.reason is _P.SAME_REVISION and self.store.conflicts_noted != noted:
                log.warning("policy bundle refused: %s", exc)
            raise
        before = held.get(verified.body.authority)
        same = before is not None and before.bundle.body.revision == verified.body.revision
        if same and before is not None and before.bundle.data != verified.data:
            expired = now >= before.bundle.body.expires_at  # review 43b, bundles 3
            log.warning(
                "policy bundle of %s: revision %d of digest %s replaced by the one of digest "
                "%s (two bundles signed at one revision: review 41d, bundles 2%s)",
                verified.body.authority,
                verified.body.revision,
                before.bundle.digest.hex(),
                verified.digest.hex(),
                "; the one replaced expired" if expired else "",
            )
        return verified, before is None or before.bundle.data != verified.data

    def held_back(self, authority: Identifier) -> bool:
        """Whether `authority`'s bundle came back with a restored copy of node.db and decides
        nothing until confirmed (`BundleStore.held_back`; review 54p, rollback 1)."""
        return self.store is not None and self.store.held_back(authority)

    def conflicts(self) -> list[dict[str, Any]]:
        """The last same-revision conflict of each authority (`BundleStore.conflicts`)."""
        return [] if self.store is None else [c.to_json() for c in self.store.conflicts()]

    # -- what gates ask -------------------------------------------------------------------------

    def engine(self, authority: Identifier, *, feed: VerifiedFeed | None, now: int) -> PolicyEngine:
        """The engine of `authority`'s bundle in force (PolicyError when there is none)."""
        if self.store is None:
            raise PolicyError(_P.NO_BUNDLE, str(authority))
        return self.store.engine(authority, feed=feed, now=now)

    def held(self, authority: Identifier) -> ActiveBundle | None:
        """The active bundle of `authority` (in force or not)."""
        return None if self.store is None else self.store.active(authority)

    def offered(self, authority: Identifier) -> ActiveBundle | None:
        """`held`, unless the table holds a higher revision that did not load here, which
        replaced it (`BundleStore.dormant`): the bundle the policy service hands out and asks
        above; none then, so it hands it to no one and pulls any revision (review 57a, gates
        3: a node answered other nodes' pulls with it, and they decided by it)."""
        active = self.held(authority)
        if active is None or self.store is None:
            return None
        bundle = active.bundle
        ahead = self.store.dormant.ahead(authority.digest, bundle.body.revision, bundle.digest)
        return None if ahead else active

    def replaceable(self, authority: Identifier) -> bool:
        """Whether the held feed says the active bundle of `authority` is no longer in force
        for good (its signer revoked or superseded): a bundle of any revision issued since it
        replaces it."""
        return self.store is not None and self.store.replaceable(authority, self.feeds(authority))

    def declares(self, service: str) -> bool:
        """Whether an active bundle declares node service `service`."""
        return self.store is not None and self.store.declares(service)

    def governs(self, service: str, authority: Identifier, *, hosted: Identifier | None) -> bool:
        """Whether Cedar decides node service `service` for the chains of `authority` on a
        node hosting `hosted` (docs/policy.md, "Services"): when that authority's own active
        bundle declares it, or the hosted authority's does (it speaks for the node's own
        services: every other authority's members then need a permit of their own, deny when
        in doubt); on a node hosting none, when any active bundle declares it. Another
        co-trusted authority's declaration never governs `authority`'s chains (review 36c,
        services 1)."""
        store = self.store
        if store is None:
            return False
        if hosted is None:
            return store.declares(service)
        return store.declares(service, authority) or store.declares(service, hosted)

    def credential_for(self, credentials: list[VerifiedCredential]) -> VerifiedCredential:
        """The credential a gate decides with: the first from an authority whose bundle this
        node holds (PolicyError NO_BUNDLE when none is; CredentialError when there are none)."""
        if not credentials:
            raise CredentialError(CredentialFailure.UNTRUSTED_ISSUER, "no credential")
        for credential in credentials:
            if self.held(credential.authority) is not None:
                return credential
        raise PolicyError(_P.NO_BUNDLE, "none for the caller's authorities")

    def show(self, *, now: int) -> list[dict[str, Any]]:
        """Every active bundle: its summary, and whether it is in force now (and why not); and
        each bundle of the table that did not load where none of its authority is active: its
        claims, not in force, and why it did not load (review 57a, gates 4)."""
        rows = []
        for active in [] if self.store is None else self.store.actives():
            authority = active.bundle.body.authority
            try:
                self.engine(authority, feed=self.feeds(authority), now=now)
                in_force, why = True, None
            except PolicyError as exc:
                in_force, why = False, exc.reason.value
            rows.append({**active.bundle.to_json(), "in_force": in_force, "not_in_force": why})
        for digest, failure in [] if self.store is None else self.store.dormant.unloaded():
            data = self.table.load(digest)
            if data is None or self.held(Identifier(digest)) is not None:
                continue
            try:
                claims = bundle_claims(data).to_json()
            except PolicyError:
                continue
            not_loaded = {"in_force": False, "not_in_force": failure.value}
            rows.append({**claims, "digest": sha256(data).hex(), "policies": [], **not_loaded})
        return rows


class LocalCredential:
    """A local identity's current credential (a `CredentialSource`): its held chains re-read
    from the node's store at each decision, the one that expires last from an authority whose
    bundle the node holds, verified against that authority's current feed, passing over the
    chains of an authority whose feed is due a sync (as handing them out does); the identity
    itself judged by the feeds of all the authorities whose chains it holds. With `anchors`
    (outside a running node), the node's trust and stored bundles are re-read first."""

    def __init__(
        self,
        node: Node,
        name: str,
        policies: NodePolicies,
        *,
        anchors: Callable[[], frozenset[Identifier]] | None = None,
    ) -> None:
        self.node = node
        self.name = name
        self.policies = policies
        self.anchors = anchors
        self.identifier = Identifier(node.identities.find(name).identifier)

    def presenter_identifier(self) -> Identifier | None:
        """Who presents the credential (`troth.gates.Presenting`): the local identity."""
        return self.identifier

    def current(self, *, now: int) -> VerifiedCredential:
        """The credential, verified now (CredentialError / PolicyError when there is none)."""
        if self.anchors is not None:
            self.policies.trust(self.anchors(), now=now)
        wallet = self.node.wallet
        every = wallet.held(self.name)
        if not every:
            raise CredentialError(CredentialFailure.UNTRUSTED_ISSUER, f"{self.name} holds none")
        waits = self._judge_identity({Identifier(h.authority) for h in every}, now)
        held = sorted((h for h in every if h.expires_at > now), key=lambda h: -h.expires_at)
        store = self.policies.store
        if store is None:
            raise PolicyError(_P.NO_BUNDLE, "this node trusts no authority yet")
        usable = [h for h in held if self.policies.held(Identifier(h.authority)) is not None]
        # not a chain of an authority whose feed a revocation made here left due a sync (the
        # feed held may predate it): none is handed out meanwhile (review 55i, mcp 2)
        if usable and all(waits[h.authority] for h in usable):
            raise CredentialError(
                CredentialFailure.STALE_FEED,
                f"the chains {self.name} holds wait for this node's copy of their authority's "
                "feed to be synced (due a sync after a revocation made on this machine)",
            )
        usable = [h for h in usable if not waits[h.authority]]
        if not usable:
            if held:
                raise PolicyError(_P.NO_BUNDLE, f"none for the authorities {self.name} holds")
            raise CredentialError(CredentialFailure.EXPIRED, f"{self.name} holds none unexpired")
        chains = [(h.chain, Identifier(h.authority)) for h in usable]
        return _first_current(store.verifier, chains, self.identifier, self.policies, now)

    def _judge_identity(self, roots: set[Identifier], now: int) -> dict[bytes, bool]:
        """CredentialError when the feed of an authority whose chain the identity holds (any
        of them: each has standing over it) revokes the identity or supersedes its history,
        as every node that verified that chain refuses it whatever chain it shows
        (docs/formats.md, "Whose word counts on an identity"; review 55i, mcp 3: it was judged
        by its decided chain's root feed alone). A root whose copy of the feed a revocation made
        on this machine left due a sync is synced first; one still due refuses it (STALE_FEED:
        the copy held may predate a revocation of the identity; review 61j, api 4). Not one whose
        marks are all of link revocations with the authority over the network (review 61q,
        policies 1): a link revocation hides nothing this judges, only a running node's sync
        settles those, and the identity's every call was refused until then, under the other
        authorities' chains too (the due authority's own are passed over in `current`). Returns
        whether each root's feed is still due a sync (by digest), asked once: `current` passes
        over the due ones' chains."""
        wallet = self.node.wallet
        waits = {root.digest: wallet.sync_due(root, now=now) for root in roots}
        due = [root for root in roots if waits[root.digest]]
        if due:  # an authority elsewhere marks no node here: its marks are link revocations
            addresses = dict(wallet.store.syncs_due())  # each root's least: "" if one is local
            due = [root for root in due if _marked_here(addresses.get(root.digest, ""))]
        if due:
            names = ", ".join(sorted(map(str, due)))
            raise CredentialError(
                CredentialFailure.STALE_FEED,
                f"{self.name} is judged by the feeds of {names}, due a sync after a "
                "revocation made on this machine",
            )
        feeds = [feed for feed in map(self.policies.feeds, roots) if feed is not None]
        identity = self.node.identities.get(self.name, now=now).identity
        refusal = identity_refusal(identity, feeds)
        if refusal is not None:
            failure = CredentialFailure.REVOKED if refusal.revoked else CredentialFailure.SUPERSEDED
            raise CredentialError(failure, f"{self.name} is {refusal.detail}")
        return waits


def _marked_here(address: str) -> bool:
    """Whether a mark due a sync at `address` may stand for a revocation an authority made on
    this machine (troth.node.localdue marks with no address; a link revocation with an
    authority found here, syncdue, with none or `node:NAME`): not an authority reached over
    the network, which only a link revocation marks (troth.node.syncdue)."""
    return not address or address.startswith(LOCAL_PREFIX)


def _first_current(
    verifier: ChainVerifier,
    chains: list[tuple[bytes, Identifier]],
    presenter: Identifier | VerifiedIdentity,
    policies: NodePolicies,
    now: int,
) -> VerifiedCredential:
    """The first of `chains` (each with its authority) that verifies now against its
    authority's current feed (else the first one's CredentialError: it says why, revoked or
    expired)."""
    first: CredentialError | None = None
    for chain, authority in chains:
        feed = policies.feeds(authority)
        feeds = {} if feed is None else {authority: feed}
        try:
            return verifier.verify(chain, presenter=presenter, feeds=feeds, now=now)
        except CredentialError as exc:
            first = first or exc
    raise first or CredentialError(CredentialFailure.MALFORMED, "no chain")


class PeerCredential:
    """A channel peer's current credential (a `CredentialSource`): at each decision, the
    peer's standing against the feeds held now (its identity neither revoked nor superseded;
    the chains of an authority whose feed is due a sync left out, `Standing.waiting`),
    then the first chain it presented from an authority whose bundle the node holds, verified
    again against that authority's current feed (so a denial says why: revoked, expired). With
    `admits`, among the chains it says the service admits now only (the MCP service: the
    chains its `send` admission takes, `GatedPolicy.admits`; review 37a, mcp 1: the peer's
    chain of an authority whose bundle keeps it out of the server decided its tools/calls
    while another chain admitted it). With `granted`, the chains of the authorities it names
    come first (a published MCP server's tools are decided by the bundles of the authorities
    granting them only, `GrantedBundles`; review 37d, mcp 1: a peer presenting first its chain
    of another authority was denied tools its granted authority's chain is permitted)."""

    def __init__(
        self,
        peer: Callable[[], VerifiedPeer | None],
        standing: Callable[[VerifiedPeer, int], Standing],
        policies: NodePolicies,
        admits: Callable[[VerifiedCredential, int], bool] | None = None,
        granted: Callable[[], frozenset[Identifier]] | None = None,
    ) -> None:
        self.peer = peer
        self.standing = standing
        self.policies = policies
        self.admits = admits
        self.granted = granted

    def presenter_identifier(self) -> Identifier | None:
        """Who presents the credential (`troth.gates.Presenting`): the channel's peer, while
        the channel is open."""
        peer = self.peer()
        return None if peer is None else peer.identifier

    def current(self, *, now: int) -> VerifiedCredential:
        """The credential, verified now (CredentialError / PolicyError when none is)."""
        peer = self.peer()
        if peer is None:
            raise CredentialError(CredentialFailure.REVOKED, "the channel is closed")
        standing = self.standing(peer, now)
        if standing.problem is not None:
            raise CredentialError(CredentialFailure.REVOKED, standing.problem)
        # not the chains of an authority whose feed is due a sync: the feed held may predate
        # a revocation made here, and the standing drops them (review 55i, mcp 1)
        waiting = standing.waiting
        credentials = [c for c in peer.credentials if c.authority not in waiting]
        if waiting and not credentials:
            raise CredentialError(
                CredentialFailure.STALE_FEED,
                "its chains wait for this node's copy of their authority's feed to be synced "
                "(due a sync after a revocation made on this machine)",
            )
        if self.admits is not None and credentials:
            credentials = [c for c in credentials if self.admits(c, now)]
            if not credentials:  # none of its chains meets the service's admission now
                raise CredentialError(
                    CredentialFailure.UNTRUSTED_ISSUER, "no chain the service admits"
                )
        self.policies.credential_for(credentials)  # raises when none is usable
        store = self.policies.store
        if store is None:
            raise PolicyError(_P.NO_BUNDLE, "this node trusts no authority yet")
        chains = [
            (c.chain, c.authority)
            for c in credentials
            if self.policies.held(c.authority) is not None
        ]
        if self.granted is not None:
            granted = self.granted()
            chains.sort(key=lambda chain: chain[1] not in granted)  # stable: granted first
        return _first_current(store.verifier, chains, peer.identity, self.policies, now)


def unrevoked(
    chains: tuple[bytes, ...], feeds: Mapping[Identifier, VerifiedFeed]
) -> tuple[bytes, ...]:
    """`chains` without those a held feed revokes a link of (a channel presenting one fails)."""
    return tuple(chain for chain in chains if not revokes_a_link(chain, feeds.get))
