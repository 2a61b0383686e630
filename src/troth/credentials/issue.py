"""Issuing credentials and delegations. Amplification is refused here, at issue time, and again
by every verifier (troth.credentials.verify), so a hand-built chain gains nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence

from troth import limits
from troth.credentials.attributes import Attributes
from troth.credentials.format import CredentialBody, CredentialChain, Delegation, SignedCredential
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier, Signer

__all__ = ["delegate", "issue_credential"]

_F = CredentialFailure


def _sign(signer: Signer, body: CredentialBody) -> SignedCredential:
    encoded = body.encode()
    return SignedCredential(encoded, signer.sign(encoded), signer.attestation)


def issue_credential(
    signer: Signer,
    *,
    subject: Identifier,
    attributes: Attributes,
    now: int,
    ttl: int,
    depth: int,
    credential_id: bytes | None = None,
) -> SignedCredential:
    """An authority's credential for `subject`. It expires after `ttl` seconds, and never later
    than the issuer's signing-key attestation (renew the key to issue longer)."""
    body = CredentialBody(
        id=credential_id or os.urandom(16),
        subject=subject,
        issuer=signer.identity.identifier,
        attributes=attributes,
        created_at=now,
        not_before=now,
        expires_at=min(now + ttl, signer.expires_at),
        depth=depth,
        delegation=None,
    )
    return _sign(signer, body)


def delegate(
    signer: Signer,
    chain: CredentialChain,
    *,
    subject: Identifier,
    attributes: Attributes,
    now: int,
    ttl: int,
    purpose: str,
    caveats: Sequence[str] = (),
    depth: int | None = None,
    credential_id: bytes | None = None,
) -> CredentialChain:
    """Append a delegation from the holder of `chain` (the signer) to `subject`.

    Refuses (CredentialError) unless the signer is the chain's subject, every attribute is held
    (a set may only shrink), the expiry is no later than the parent's, and the remaining depth
    is below the parent's. `depth` defaults to one less than the parent's. `credential_id`
    (16 bytes) is random unless given (golden vectors)."""
    parent_signed = chain.credentials[-1]
    parent = CredentialBody.decode(parent_signed.body)
    link = len(chain.credentials)
    if parent.subject != signer.identity.identifier:
        raise CredentialError(_F.MISALIGNED, "the signer does not hold this chain", link)
    if subject == signer.identity.identifier:
        raise CredentialError(_F.CYCLE, "an identity cannot delegate to itself", link)
    excess = attributes.first_excess_over(parent.attributes)
    if excess is not None:
        raise CredentialError(_F.AMPLIFIED, f"attribute {excess!r} is not held", link)
    if parent.depth == 0 or len(chain.credentials) > limits.MAX_DELEGATION_LINKS:
        raise CredentialError(_F.DEPTH_EXCEEDED, "the parent allows no further delegation", link)
    depth = parent.depth - 1 if depth is None else depth
    if not 0 <= depth < parent.depth:
        raise CredentialError(_F.AMPLIFIED, f"depth {depth} is not below {parent.depth}", link)
    expires_at = now + ttl
    if expires_at > parent.expires_at:
        raise CredentialError(_F.AMPLIFIED, "expires after the parent credential", link)
    if expires_at > signer.expires_at:
        raise CredentialError(_F.ATTESTATION_INVALID, "signing key expires first; renew it", link)
    try:
        delegation = Delegation(parent_signed.hash, purpose, tuple(caveats))
    except ValueError as exc:
        raise CredentialError(_F.MALFORMED, str(exc), link) from None
    body = CredentialBody(
        id=credential_id or os.urandom(16),
        subject=subject,
        issuer=signer.identity.identifier,
        attributes=attributes,
        created_at=now,
        not_before=max(now, parent.not_before),
        expires_at=expires_at,
        depth=depth,
        delegation=delegation,
    )
    return chain.extended(_sign(signer, body), signer.identity.history)
