"""Identities with signing keys, built without a node (for credential tests and vectors)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from troth.channel import ChannelIdentity
from troth.channel.verification import HandshakeClaim
from troth.credentials import Attributes, CredentialChain, VerifiedFeed, delegate
from troth.credentials.format import CredentialBody, Delegation, SignedCredential
from troth.crypto import KeyType
from troth.identity import Identifier, Signer, VerifiedIdentity, attest_purpose_key, new_identity
from troth.vault import KeyHandle, KeyPurpose, Vault

SIGNING_TTL = 90 * 86_400


@dataclass(frozen=True)
class Party:
    identity: VerifiedIdentity
    primary: KeyHandle
    signer: Signer
    next_primary: KeyHandle  # the committed next primary key (pre-rotation)

    @property
    def identifier(self) -> Identifier:
        return self.identity.identifier


def make_party(
    vault: Vault,
    *,
    now: int,
    key_type: KeyType = KeyType.ED25519,
    signing_ttl: int = SIGNING_TTL,
    valid_for: int = 10 * 365 * 86_400,
) -> Party:
    primary, identity, next_primary = new_identity(vault, key_type, now=now, valid_for=valid_for)
    signer = signer_as(vault, primary, identity, now=now, key_type=key_type, ttl=signing_ttl)
    return Party(identity, primary, signer, next_primary)


def signer_as(
    vault: Vault,
    primary: KeyHandle,
    identity: VerifiedIdentity,
    *,
    now: int,
    key_type: KeyType = KeyType.ED25519,
    ttl: int = SIGNING_TTL,
) -> Signer:
    """A signer as `identity`: a new signing key, attested by its primary key `primary`."""
    signing = vault.generate(key_type, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        vault,
        primary,
        identity,
        KeyPurpose.SIGNING,
        vault.public_key(signing),
        now=now,
        expires_at=now + ttl,
    )
    return Signer(identity, vault, signing, attestation, now + ttl)


def empty_feed(authority: Party, *, now: int) -> bytes:
    """A signed revocation feed with no entries."""
    from troth.credentials import build_feed, feed_genesis

    return build_feed(authority.signer, [], feed_genesis(authority.identifier), now=now)


def feed_with(
    authority: Party, entries: list[tuple[int, bytes]], *, now: int, revoked_at: int | None = None
) -> bytes:
    """A feed revoking (kind, target) pairs, all by the authority (at `revoked_at`, else `now`)."""
    from troth.credentials import (
        RevocationEntry,
        RevocationKind,
        build_feed,
        feed_genesis,
        next_head,
    )

    head = feed_genesis(authority.identifier)
    encoded = []
    for seq, (kind, target) in enumerate(entries):
        when = now if revoked_at is None else revoked_at
        entry = RevocationEntry(
            seq, RevocationKind(kind), target, authority.identifier, when, ""
        ).encode()
        encoded.append(entry)
        head = next_head(head, entry)
    return build_feed(authority.signer, encoded, head, now=now)


def verified_feed(
    authority: Party,
    entries: list[tuple[int, bytes]] | None = None,
    *,
    now: int,
    revoked_at: int | None = None,
) -> VerifiedFeed:
    """`feed_with` (or `empty_feed`), signed and verified at `now`."""
    from troth.credentials import verify_feed

    data = feed_with(authority, entries or [], now=now, revoked_at=revoked_at)
    return verify_feed(data, authority=authority.identifier, now=now, max_staleness=60)


@dataclass(frozen=True)
class ChannelParty:
    """A party with an attested X25519 channel key, ready to open secure channels."""

    party: Party
    vault: Vault
    channel_key: KeyHandle
    attestation: bytes

    @property
    def identifier(self) -> Identifier:
        return self.party.identifier

    def claim(self) -> HandshakeClaim:
        """What this party shows in a handshake: its history, attestation and channel key."""
        return HandshakeClaim(
            self.party.identity.history, self.attestation, self.vault.public_key(self.channel_key)
        )

    def me(self, credentials: tuple[bytes, ...] = ()) -> ChannelIdentity:
        from troth.vault.ephemeral import VaultDhKey

        return ChannelIdentity(
            self.party.identity.history,
            VaultDhKey(self.vault, self.channel_key),
            self.attestation,
            credentials,
        )


def make_channel_party(
    vault: Vault, *, now: int, key_ttl: int = SIGNING_TTL, valid_for: int = 10 * 365 * 86_400
) -> ChannelParty:
    """A party (its current key valid `valid_for` s from `now`) with a channel key attested
    for `key_ttl` s."""
    party = make_party(vault, now=now, valid_for=valid_for)
    handle = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    attestation = attest_purpose_key(
        vault,
        party.primary,
        party.identity,
        KeyPurpose.SECURE_CHANNEL,
        vault.public_key(handle),
        now=now,
        expires_at=now + key_ttl,
    )
    return ChannelParty(party, vault, handle, attestation)


def claim_with_new_key(
    vault: Vault, primary: KeyHandle, identity: VerifiedIdentity, *, now: int, ttl: int = 3600
) -> HandshakeClaim:
    """What a peer shows in a handshake as `identity` (its primary key `primary`): a new
    channel key, attested by that primary key for `ttl` seconds from `now`."""
    handle = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    key = vault.public_key(handle)
    attestation = attest_purpose_key(
        vault, primary, identity, KeyPurpose.SECURE_CHANNEL, key, now=now, expires_at=now + ttl
    )
    return HandshakeClaim(identity.history, attestation, key)


def hand_link(
    signer: Party,
    chain: CredentialChain,
    subject: Identifier,
    attributes: Attributes,
    *,
    now: int,
    expires_at: int,
    depth: int | None = None,
    parent: bytes | None = None,
    caveats: tuple[str, ...] = (),
) -> CredentialChain:
    """`chain` extended by a link `signer` signs by hand, with no check at all (`delegate`
    refuses what verifiers must refuse too: a cycle, an amplification)."""
    above = CredentialBody.decode(chain.credentials[-1].body)
    body = CredentialBody(
        os.urandom(16),
        subject,
        signer.identifier,
        attributes,
        now,
        now,
        expires_at,
        above.depth - 1 if depth is None else depth,
        Delegation(parent or chain.credentials[-1].hash, "p", caveats),
    )
    return chain.extended(hand_signed(signer.signer, body), signer.identity.history)


def hand_signed(signer: Signer, body: CredentialBody) -> SignedCredential:
    """`body` signed by `signer` by hand, with no check at all (`issue_credential` and
    `delegate` cap or refuse what verifiers must refuse too: a key past its `valid_until`)."""
    data = body.encode()
    return SignedCredential(data, signer.sign(data), signer.attestation)


def delegated(
    by: Party,
    chain: CredentialChain,
    subject: Identifier,
    attributes: Attributes,
    *,
    now: int,
    ttl: int,
    purpose: str,
    caveats: tuple[str, ...] = (),
    past_keys: bool = False,
) -> CredentialChain:
    """`delegate`; with `past_keys`, the link signed by hand (`hand_link`), its expiry not
    capped at `by`'s primary key: a chain outliving its keys, as troth signed one before
    review 75g (delegation2 3)."""
    if past_keys:
        end = now + ttl
        return hand_link(by, chain, subject, attributes, now=now, expires_at=end, caveats=caveats)
    return delegate(
        by.signer,
        chain,
        subject=subject,
        attributes=attributes,
        now=now,
        ttl=ttl,
        purpose=purpose,
        caveats=caveats,
    )
