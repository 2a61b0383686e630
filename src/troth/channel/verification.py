"""Peer verification for secure channels (docs/protocols.md, "Secure channel"): one entry
point, `verify_peer`, used at the handshake, at an in-band credential refresh and by the
continuous re-checks, so all three apply the same checks in the same order:

1. at the handshake only: the change history verifies (and extends any stored copy: no fork,
   no rollback), the channel-key attestation is valid and attests exactly the Noise static
   key the handshake proved;
2. the identity is not revoked by any held feed, and its history is not superseded in any
   (an authority published a newer change: this one is a stolen backup's or a fork);
3. every credential chain verifies for the trust anchors, with the peer as presenter, against
   the current feeds (expiry and revocation included);
4. the peer policy admits the peer (default deny).

Every refusal is a ChannelError whose reason is the close code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from troth import limits
from troth.credentials import ChainVerifier, VerifiedCredential, VerifiedFeed
from troth.crypto import PublicKey
from troth.errors import (
    ChannelError,
    ChannelFailure,
    CredentialError,
    CredentialFailure,
    IdentityError,
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
    "PeerPolicy",
    "VerifiedPeer",
    "verify_peer",
]

_F = ChannelFailure


@dataclass(frozen=True, slots=True)
class VerifiedPeer:
    """A peer that passed `verify_peer`: its identity and its verified credentials."""

    identity: VerifiedIdentity
    credentials: tuple[VerifiedCredential, ...]

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


@dataclass(frozen=True, slots=True)
class ChannelTrust:
    """How this side judges peers. `verifier` checks credential chains (None: ignore them);
    `known` raises IdentityError for a history that forks from or rolls back a stored copy;
    `observe` is given each admitted peer to store (or extend) its copy (store-or-extend:
    judged before, stored only after admission; what the holder keeps is its choice: a node
    keeps members and anchors, so strangers it admits, say to enroll, cannot fill its store)."""

    policy: PeerPolicy
    verifier: ChainVerifier | None = None
    feeds: Feeds = dict
    known: Callable[[VerifiedIdentity], None] | None = None
    observe: Callable[[VerifiedPeer], None] | None = None
    checkpoints: Callable[[int], Checkpoints] | None = None
    """Given `now`, judges a checkpointed peer history (a long-lived identity presents a
    suffix attested by its authority's feed); None: such histories are refused."""


@dataclass(frozen=True, slots=True)
class HandshakeClaim:
    """Who a peer says it is in its handshake: its change history, the attestation of its
    channel key, and the Noise static key the handshake proved it holds."""

    history: bytes
    attestation: bytes
    static_key: PublicKey | None


def verify_peer(
    trust: ChannelTrust,
    who: HandshakeClaim | VerifiedIdentity,
    chains: tuple[bytes, ...],
    now: int,
) -> VerifiedPeer:
    """The peer, verified and admitted (ChannelError with the close code otherwise). `who` is
    the handshake's claim, or the identity verified at the handshake (refresh, re-checks)."""
    identity = who if isinstance(who, VerifiedIdentity) else _authenticate(trust, who, now)
    for feed in trust.feeds().values():
        if identity.identifier.digest in feed.revoked_identities:
            raise ChannelError(_F.REVOKED, f"{identity.identifier} is revoked by {feed.authority}")
        try:  # an older history than the one an authority published (a stolen backup's)
            feed.check_current(identity)
        except CredentialError as exc:
            raise ChannelError(_F.PEER_INVALID, f"{exc} (by {feed.authority})") from None
    peer = VerifiedPeer(identity, _verify_credentials(trust, identity, chains, now))
    if not trust.policy.admit(peer):
        raise ChannelError(_F.PEER_NOT_ALLOWED, str(identity.identifier))
    if trust.observe is not None and not isinstance(who, VerifiedIdentity):
        try:
            trust.observe(peer)
        except IdentityError as exc:  # another copy was stored meanwhile: a fork
            raise ChannelError(_F.PEER_INVALID, str(exc)) from None
    return peer


def _authenticate(trust: ChannelTrust, claim: HandshakeClaim, now: int) -> VerifiedIdentity:
    try:
        checkpoints = None if trust.checkpoints is None else trust.checkpoints(now)
        identity = verify_history(claim.history, now=now, checkpoints=checkpoints)
        if trust.known is not None:
            trust.known(identity)
        key = verify_attestation(
            identity, claim.attestation, purpose=KeyPurpose.SECURE_CHANNEL, now=now
        )
    except IdentityError as exc:
        raise ChannelError(_F.PEER_INVALID, str(exc)) from None
    if claim.static_key is None or key.key != claim.static_key:
        raise ChannelError(_F.PEER_INVALID, "attested key is not the Noise static key")
    return identity


def _verify_credentials(
    trust: ChannelTrust, presenter: VerifiedIdentity, chains: tuple[bytes, ...], now: int
) -> tuple[VerifiedCredential, ...]:
    verifier = trust.verifier
    if verifier is None or not chains:
        return ()
    if len(chains) > limits.MAX_CHANNEL_CREDENTIALS:
        raise ChannelError(_F.CREDENTIAL_INVALID, "too many credentials")
    feeds = trust.feeds()
    verified = []
    for chain in chains:
        try:
            verified.append(verifier.verify(chain, presenter=presenter, feeds=feeds, now=now))
        except CredentialError as exc:
            revoked = exc.reason is CredentialFailure.REVOKED
            raise ChannelError(_F.REVOKED if revoked else _F.CREDENTIAL_INVALID, str(exc)) from None
    return tuple(verified)
