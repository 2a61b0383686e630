"""Peer verification for secure channels (docs/protocols.md, "Secure channel"): one entry
point, `verify_peer`, used at the handshake, at an in-band credential refresh and by the
continuous re-checks, so all three apply the same checks in the same order:

1. at the handshake only: the change history verifies, the channel-key attestation is valid
   and attests exactly the Noise static key the handshake proved; at every re-check and
   refresh: the identity's current key is still within its `valid_until` and that
   attestation has not expired (review 68n, expiry 1: an open channel outlived both); at every
   check: the history extends any stored copy (no fork, no rollback: a copy stored since the
   handshake, e.g. the peer's rotation, refuses the history a stolen backup opened the
   channel with);
2. every credential chain rooted at a trust anchor verifies, with the peer as presenter,
   against the current feeds (expiry and revocation included); a chain whose root is not a
   trust anchor is dropped (it grants nothing here) and said so in `VerifiedPeer.dropped`;
   a full history that step 1 found forking from or rolling back a stored copy is judged
   again, when every chain verified and one did (or the peer is an anchor), by
   `ChannelTrust.known_by`: a copy from a checkpoint binds it only when an authority
   attesting it has standing over it (docs/formats.md, "A stored copy from a checkpoint");
   then the roots of the chains that verified are remembered for the peer
   (`ChannelTrust.vouch`);
3. the identity is not revoked, and its history not superseded, by an authority with
   standing over it (`standing_feeds`, docs/formats.md "Whose word counts on an identity"):
   the root of each chain that verified, the identity itself when it is a trust anchor, and
   every authority whose chain this side verified for it before (`ChannelTrust.vouched`,
   whatever it shows now); a peer with none of the first two (a stranger now, or one whose
   every chain failed) by every held feed;
4. a chain of step 2 that did not verify refuses the channel (deny when in doubt: a forged,
   revoked or expired chain of a trusted root is never silently dropped);
5. the peer policy admits the peer (default deny).

Every refusal is a ChannelError whose reason is the close code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from troth import limits
from troth.channel.claims import ClaimCache
from troth.credentials import ChainVerifier, VerifiedCredential, VerifiedFeed
from troth.crypto import PublicKey
from troth.errors import (
    ChannelError,
    ChannelFailure,
    CredentialError,
    CredentialFailure,
    IdentityError,
    IdentityFailure,
)
from troth.identity import (
    Checkpoints,
    Identifier,
    VerifiedIdentity,
    verify_attestation,
    verify_history,
)
from troth.vault import KeyPurpose

__all__ = [
    "ChannelTrust",
    "Feeds",
    "HandshakeClaim",
    "IdentityRefusal",
    "KnownBy",
    "PeerPolicy",
    "VerifiedPeer",
    "Vouch",
    "Vouched",
    "expired_peer",
    "identity_refusal",
    "remember_nothing",
    "standing_feeds",
    "verify_peer",
]

_F = ChannelFailure


@dataclass(frozen=True, slots=True)
class VerifiedPeer:
    """A peer that passed `verify_peer`: its identity, its verified credentials, and why each
    chain it also presented was dropped (its root is not one of this side's trust anchors)."""

    identity: VerifiedIdentity
    credentials: tuple[VerifiedCredential, ...]
    dropped: tuple[str, ...] = ()
    key_expires_at: int | None = None
    """When the attestation of the channel key the peer's handshake proved expires (every
    re-check and refresh closes the channel from then on: `verify_peer`); None: a peer not
    verified from a handshake (only its identity's dates are re-checked)."""

    @property
    def identifier(self) -> Identifier:
        """The peer's identifier."""
        return self.identity.identifier


class PeerPolicy(Protocol):
    """Which authenticated peers a channel admits (troth.channel.policy)."""

    def admit(self, peer: VerifiedPeer) -> bool:
        """Whether to talk to this (authenticated) peer."""
        ...


Feeds = Callable[[], Mapping[Identifier, VerifiedFeed]]
"""The revocation feeds held now, by authority."""

Vouched = Callable[[Identifier], Set[Identifier]]
"""The authorities whose chains this side verified for an identity before (its memory: their
word on it counts whatever chains it shows now)."""

Vouch = Callable[[VerifiedIdentity, tuple[VerifiedCredential, ...]], bool]
"""Remember the roots of the chains just verified for an identity (and the history they were
verified with); False when the memory cannot take them (it is full): the peer is then refused
(deny when in doubt)."""

KnownBy = Callable[[VerifiedIdentity, tuple[VerifiedCredential, ...]], None]
"""`known` for a full history some trusted authority vouches for now (its verified chains, all
that it showed of trusted roots): IdentityError unless every stored copy that binds it (given
those chains and what this side remembers) is extended."""


def remember_nothing(identifier: Identifier) -> Set[Identifier]:
    """A `Vouched` with no memory: only the chains a peer shows count (a side that keeps no
    store, e.g. a test; a node gives its own, troth.node.vouchers)."""
    return frozenset()


@dataclass(frozen=True, slots=True)
class ChannelTrust:
    """How this side judges peers. `verifier` checks credential chains (None: ignore them);
    `known` raises IdentityError for a history that forks from or rolls back a stored copy;
    `observe` is given each admitted peer (at the handshake, and again at each refresh and
    re-check: its chains may carry issuers not seen before) to store (or extend) its copy and
    those of its chains' issuers (store-or-extend: judged before, stored only after admission;
    what the holder keeps is its choice: a node keeps members and anchors, so strangers it
    admits, say to enroll, cannot fill its store)."""

    policy: PeerPolicy
    verifier: ChainVerifier | None = None
    feeds: Feeds = dict
    known: Callable[[VerifiedIdentity], None] | None = None
    observe: Callable[[VerifiedPeer], None] | None = None
    checkpoints: Callable[[int], Checkpoints] | None = None
    """Given `now`, judges a checkpointed peer history (a long-lived identity presents a
    suffix attested by its authority's feed); None: such histories are refused."""
    vouched: Vouched = remember_nothing
    """Whose chains this side verified for an identity before (`standing_feeds`)."""
    vouch: Vouch | None = None
    """Given every peer's verified chains, before it is judged, to remember their roots."""
    vouched_for: Callable[[VerifiedIdentity], Set[Identifier]] | None = None
    """Those of `vouched` whose word counts on a given history (e.g. not an authority that
    vouched only with a line of history a full history does not hold); None: `vouched`."""
    known_by: KnownBy | None = None
    """Judges again, given its verified chains, a full history `known` refused as a fork or a
    rollback (a copy from a checkpoint binds it only when an authority attesting it has
    standing over it); None: `known`'s refusal stands. Stores nothing: `observe` replaces the
    copy once the peer is admitted."""
    claims: ClaimCache | None = None
    """Handshake claims verified before (troth.channel.claims): a peer showing the same
    history and attestation again pays no signature; None: every claim verified in full."""


@dataclass(frozen=True, slots=True)
class HandshakeClaim:
    """Who a peer says it is in its handshake: its change history, the attestation of its
    channel key, and the Noise static key the handshake proved it holds."""

    history: bytes
    attestation: bytes
    static_key: PublicKey | None


def verify_peer(
    trust: ChannelTrust,
    who: HandshakeClaim | VerifiedPeer | VerifiedIdentity,
    chains: tuple[bytes, ...],
    now: int,
) -> VerifiedPeer:
    """The peer, verified and admitted (ChannelError with the close code otherwise). `who` is
    the handshake's claim, or the peer (or identity) verified at the handshake (refresh,
    re-checks: the dates its handshake checked are checked again)."""
    key_expires_at: int | None = None
    if isinstance(who, HandshakeClaim):
        identity, bound, key_expires_at = _authenticate(trust, who, now)
    else:  # a refresh or a re-check: the handshake's identity
        shown = who if isinstance(who, VerifiedPeer) else VerifiedPeer(who, ())
        identity, key_expires_at = shown.identity, shown.key_expires_at
        expired = expired_peer(shown, now)
        if expired is not None:
            raise ChannelError(_F.PEER_INVALID, expired)
        bound = _check_known(trust, identity)  # the copy may have moved on since (a rotation)
    feeds = trust.feeds()
    checked = _verify_credentials(trust, identity, chains, feeds, now)
    anchors = frozenset() if trust.verifier is None else trust.verifier.policy.anchors
    if bound is not None:  # before `vouch`: a peer a stored copy refuses leaves no voucher
        _known_by(trust, identity, checked, anchors, bound)
    vouch = trust.vouch
    if checked.verified and vouch is not None and not vouch(identity, checked.verified):
        raise ChannelError(
            _F.PEER_NOT_ALLOWED,
            f"cannot remember who vouches for {identity.identifier}: too many identities",
        )
    vouched_for = trust.vouched_for
    over = standing_feeds(
        identity.identifier,
        checked.verified,
        anchors,
        feeds,
        vouched=(
            trust.vouched(identity.identifier) if vouched_for is None else vouched_for(identity)
        ),
    )
    refusal = identity_refusal(identity, over)
    if refusal is not None:
        if refusal.revoked:
            raise ChannelError(_F.REVOKED, f"{identity.identifier} is {refusal.detail}")
        raise ChannelError(_F.PEER_INVALID, refusal.detail)
    if checked.failure is not None:
        raise checked.failure
    peer = VerifiedPeer(identity, checked.verified, checked.dropped, key_expires_at)
    if not trust.policy.admit(peer):
        raise ChannelError(_F.PEER_NOT_ALLOWED, str(identity.identifier))
    if trust.observe is not None:  # also at a refresh: its chains may carry new issuers
        try:
            trust.observe(peer)
        except IdentityError as exc:  # another copy was stored meanwhile: a fork
            raise ChannelError(_F.PEER_INVALID, str(exc)) from None
    return peer


def standing_feeds(
    identifier: Identifier,
    credentials: Iterable[VerifiedCredential],
    anchors: Set[Identifier],
    feeds: Mapping[Identifier, VerifiedFeed],
    *,
    vouched: Set[Identifier],
) -> tuple[VerifiedFeed, ...]:
    """The held feeds whose word on identity `identifier` counts (docs/formats.md, "Whose word
    counts on an identity"): the feeds of the roots of its verified `credentials`, its own feed
    when it is one of `anchors` (an authority's word about itself), and the feeds of the
    authorities whose chains this side verified for it before (`vouched`), whether it shows
    them now or not: a peer does not choose its judges by hiding a chain. Another authority's
    entry naming a member or an anchor is not its word to give. A peer that shows no verified
    chain and is not an anchor (a stranger now: no trusted authority vouches for it) is judged
    by every held feed: deny when in doubt, and a stolen backup of a member's identity that
    shows no chain stays refused."""
    over = {credential.authority for credential in credentials}
    if identifier in anchors:
        over.add(identifier)
    if not over:
        return tuple(feeds.values())
    over.update(vouched)
    return tuple(feed for authority, feed in feeds.items() if authority in over)


@dataclass(frozen=True, slots=True)
class IdentityRefusal:
    """Why a feed refuses an identity: it revokes it (`revoked`), or supersedes its history."""

    revoked: bool
    detail: str


def identity_refusal(
    identity: VerifiedIdentity, feeds: Iterable[VerifiedFeed]
) -> IdentityRefusal | None:
    """The first of `feeds` (those of `standing_feeds`) that revokes `identity` or supersedes
    its history (an older history than the one an authority published: a stolen backup's, or
    a fork), and why; None when none does."""
    digest = identity.identifier.digest
    for feed in feeds:
        if feed.identity_revoked(digest):
            return IdentityRefusal(True, f"revoked by {feed.authority}")
        try:
            feed.check_current(identity)
        except CredentialError as exc:
            return IdentityRefusal(False, f"{exc} (by {feed.authority})")
    return None


def expired_peer(peer: VerifiedPeer, now: int) -> str | None:
    """Why `peer` is no longer valid at `now` by the dates its handshake checked, else None:
    its identity's current key is past its `valid_until`, or the attestation of the channel
    key it proved has expired (`now < expires_at`). An open channel outlives both; every
    re-check, refresh and (at a node) request asks again (review 68n, expiry 1)."""
    identity = peer.identity
    current = identity.current.body
    if not now <= current.valid_until:
        return (
            f"{identity.identifier}: {IdentityFailure.KEY_OUTSIDE_VALIDITY.value} (current key "
            f"valid {current.valid_from}..{current.valid_until}, now is {now})"
        )
    expires_at = peer.key_expires_at
    if expires_at is not None and not now < expires_at:
        return (
            f"{identity.identifier}: {IdentityFailure.ATTESTATION_EXPIRED.value} (the channel "
            f"key's, at {expires_at}, now is {now})"
        )
    return None


def _check_known(trust: ChannelTrust, identity: VerifiedIdentity) -> IdentityError | None:
    """PEER_INVALID when `identity` forks from or rolls back the copy stored now; the refusal
    when `trust.known_by` may judge it again once its chains are verified (`_judged_again`)."""
    if trust.known is None:
        return None
    try:
        trust.known(identity)
    except IdentityError as exc:
        if _judged_again(trust, identity, exc):
            return exc
        raise ChannelError(_F.PEER_INVALID, str(exc)) from None
    return None


def _judged_again(trust: ChannelTrust, identity: VerifiedIdentity, exc: IdentityError) -> bool:
    """Whether `known`'s refusal `exc` of `identity` waits for its chains: a full history (tied
    to the identifier by its own hash) refused as a fork or a rollback, and a `known_by`."""
    return (
        trust.known_by is not None
        and identity.first_index == 0
        and exc.reason in (IdentityFailure.FORK, IdentityFailure.ROLLBACK)
    )


def _known_by(
    trust: ChannelTrust,
    identity: VerifiedIdentity,
    checked: _Checked,
    anchors: Set[Identifier],
    bound: IdentityError,
) -> None:
    """Judge again a full history `known` refused (`bound`): a peer no trusted authority
    vouches for now (no chain verified, not an anchor), or one a chain of which failed, stays
    refused (every stored copy binds it: deny when in doubt); else `known_by` decides."""
    known_by = trust.known_by
    vouched = bool(checked.verified) or identity.identifier in anchors
    if known_by is None or checked.failure is not None or not vouched:
        raise ChannelError(_F.PEER_INVALID, str(bound))
    try:
        known_by(identity, checked.verified)
    except IdentityError as exc:
        raise ChannelError(_F.PEER_INVALID, str(exc)) from None


def _authenticate(
    trust: ChannelTrust, claim: HandshakeClaim, now: int
) -> tuple[VerifiedIdentity, IdentityError | None, int]:
    """The claim's verified identity, `known`'s refusal of it when `known_by` may judge it
    again (`_check_known`), and when its channel key's attestation expires."""
    bound: IdentityError | None = None
    claims = trust.claims  # (the same checks in the same order whether kept or not)
    kept = None if claims is None else claims.get(claim.history, claim.attestation, now)
    try:
        if kept is None:
            checkpoints = None if trust.checkpoints is None else trust.checkpoints(now)
            seen = None if claims is None else claims.signatures
            identity = verify_history(claim.history, now=now, checkpoints=checkpoints, seen=seen)
        else:
            identity, key = kept
        if trust.known is not None:  # the stored copy: judged at every handshake
            try:
                trust.known(identity)
            except IdentityError as exc:
                if not _judged_again(trust, identity, exc):
                    raise
                bound = exc
        if kept is None:
            key = verify_attestation(
                identity, claim.attestation, purpose=KeyPurpose.SECURE_CHANNEL, now=now
            )
            if claims is not None:
                claims.put(claim.history, claim.attestation, identity, key, now)
    except IdentityError as exc:
        raise ChannelError(_F.PEER_INVALID, str(exc)) from None
    if claim.static_key is None or key.key != claim.static_key:
        raise ChannelError(_F.PEER_INVALID, "attested key is not the Noise static key")
    return identity, bound, key.expires_at


class _Checked(NamedTuple):
    """The chains a peer presented, sorted: verified, dropped (why), and the first refusal."""

    verified: tuple[VerifiedCredential, ...] = ()
    dropped: tuple[str, ...] = ()
    failure: ChannelError | None = None


def _verify_credentials(
    trust: ChannelTrust,
    presenter: VerifiedIdentity,
    chains: tuple[bytes, ...],
    feeds: Mapping[Identifier, VerifiedFeed],
    now: int,
) -> _Checked:
    """Verify each chain. One whose root is not a trust anchor is dropped: the verifier checks
    that first, from the root link's issuer alone (`issuer is not a trust anchor`, link 0), so
    the chain can grant nothing here whatever else it holds. Every other failure (malformed,
    forged, revoked, expired, superseded, a stale feed) is a chain of a trusted root, or one
    that cannot be read: it refuses the channel, as before (deny when in doubt)."""
    verifier = trust.verifier
    if verifier is None or not chains:
        return _Checked()
    if len(chains) > limits.MAX_CHANNEL_CREDENTIALS:
        raise ChannelError(_F.CREDENTIAL_INVALID, "too many credentials")
    verified: list[VerifiedCredential] = []
    dropped: list[str] = []
    for chain in chains:
        try:
            verified.append(verifier.verify(chain, presenter=presenter, feeds=feeds, now=now))
        except CredentialError as exc:
            if exc.reason is CredentialFailure.UNTRUSTED_ISSUER and exc.link == 0:
                dropped.append(f"a credential from {exc.detail}: {exc.reason.value} (ignored)")
                continue
            revoked = exc.reason is CredentialFailure.REVOKED
            failure = ChannelError(_F.REVOKED if revoked else _F.CREDENTIAL_INVALID, str(exc))
            return _Checked(tuple(verified), tuple(dropped), failure)
    return _Checked(tuple(verified), tuple(dropped))
