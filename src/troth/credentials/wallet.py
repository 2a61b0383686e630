"""What a node's identities hold: their credential chains, delegations they make, and the
newest revocation feed verified per authority."""

from __future__ import annotations

from collections.abc import Sequence

from troth.credentials.attributes import Attributes
from troth.credentials.format import CredentialBody, CredentialChain
from troth.credentials.issue import delegate
from troth.credentials.revocation import VerifiedFeed, verify_feed
from troth.credentials.verify import ChainVerifier, TrustPolicy, VerifiedCredential
from troth.errors import CredentialError, CredentialFailure, DecodeError, NotFound
from troth.identity import Identifier, IdentityService
from troth.storage import CredentialStore, HeldCredential

__all__ = ["CredentialWallet"]

_F = CredentialFailure


class CredentialWallet:
    def __init__(self, identities: IdentityService, store: CredentialStore) -> None:
        self.identities = identities
        self.store = store

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
        the held chain ending in credential `credential_hash`, else the held chain that covers
        `attributes` and expires last (else the one that expires last, and delegate() refuses
        the amplification)."""
        try:
            parent = self.best(ref, now=now, needs=attributes, credential_hash=credential_hash)
        except NotFound:
            parent = self.best(ref, now=now, credential_hash=credential_hash)
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

    # -- revocation feeds ------------------------------------------------------------------------

    def update_feed(
        self, data: bytes, *, authority: Identifier, now: int, max_staleness: int
    ) -> VerifiedFeed:
        """Verify a newer feed (it must extend the one held) and keep it."""
        previous = self._held_feed(authority, now)
        feed = verify_feed(
            data,
            authority=authority,
            now=now,
            max_staleness=max_staleness,
            previous=previous,
            known=self.identities.check_known,
        )
        self.store.put_feed(authority.digest, data, feed.count, feed.issued_at)
        return feed

    def feed(self, authority: Identifier, *, now: int, max_staleness: int) -> VerifiedFeed:
        feed = self._held_feed(authority, now)
        if feed is None:
            raise CredentialError(_F.NO_FEED, str(authority))
        feed.check_fresh(now=now, max_staleness=max_staleness)
        return feed

    def _held_feed(self, authority: Identifier, now: int) -> VerifiedFeed | None:
        data = self.store.get_feed(authority.digest)
        if data is None:
            return None
        # re-verified (not for freshness: a held feed may be old; the caller decides)
        return verify_feed(data, authority=authority, now=now, max_staleness=2**62)
