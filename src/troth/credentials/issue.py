"""Issuing credentials and delegations. Amplification is refused here, at issue time, and again
by every verifier (troth.credentials.verify), so a hand-built chain gains nothing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

from troth import limits
from troth.credentials.attributes import Attributes
from troth.credentials.format import CredentialBody, CredentialChain, Delegation, SignedCredential
from troth.errors import ArgumentError, CredentialError, CredentialFailure
from troth.identity import Identifier, Signer
from troth.kinds import check_kind, got

__all__ = [
    "check_fits",
    "check_within_keys",
    "delegate",
    "issue_credential",
    "signer_key_end",
]

_F = CredentialFailure


def _numbers(call: str, **numbers: int | None) -> None:
    """ArgumentError unless each of `numbers` (None: not given) is an int, not a bool (review
    56a, credentials 1: `depth=True` passed every range check and was signed as CBOR `true`,
    which every verifier refuses)."""
    for name, value in numbers.items():
        if value is not None:
            check_kind(call, name, value, int, "an int")


def _parties(call: str, subject: object, attributes: object, credential_id: object) -> bytes | None:
    """`credential_id` as bytes (None: not given), once `subject` is an Identifier,
    `attributes` an Attributes and `credential_id` bytes (a bytearray taken as its bytes):
    else ArgumentError (review 61a, credentials 4: an id of 16 that is not bytes, a str or a
    list, was signed as CBOR text or an array, which every verifier refuses; a subject or
    attributes of another type failed with a bare AttributeError)."""
    check_kind(call, "subject", subject, Identifier, "an Identifier")
    check_kind(call, "attributes", attributes, Attributes, "an Attributes")
    if credential_id is None or type(credential_id) is bytes:
        return credential_id
    return bytes(check_kind(call, "credential_id", credential_id, bytearray, "16 bytes"))


def caveat_texts(call: str, caveats: object) -> tuple[str, ...]:
    """`caveats` read once into a tuple, or ArgumentError unless they are an iterable of str:
    a str (taken as one caveat per character: review 56a, credentials 1), an item not a str,
    or no iterable at all (None: review 56p, credentials 2, a bare TypeError)."""
    if not isinstance(caveats, str):
        with contextlib.suppress(TypeError):
            conditions: tuple[object, ...] = tuple(caveats)  # type: ignore[arg-type]
            texts = tuple(c for c in conditions if isinstance(c, str))
            if len(texts) == len(conditions):
                return texts
    raise ArgumentError(call, "caveats", "a sequence of str (conditions)", got(caveats))


def _body(link: int, **fields: Any) -> CredentialBody:
    """The body of `fields`, or CredentialError MALFORMED for a value it refuses (an id not 16
    bytes, a negative time, a window that ends before it starts: review 56a, credentials 1,
    bare ValueErrors from `issue_credential`)."""
    try:
        return CredentialBody(**fields)
    except ValueError as exc:
        raise CredentialError(_F.MALFORMED, str(exc), link) from None


def _sign(signer: Signer, body: CredentialBody, link: int = 0) -> SignedCredential:
    """`body` signed; CredentialError OVER_LIMIT when it is over MAX_CREDENTIAL_BYTES, which
    every verifier refuses (caveats and attributes each within their limits can add up to
    more: the maker refuses what no reader takes)."""
    encoded = body.encode()
    if len(encoded) > limits.MAX_CREDENTIAL_BYTES:
        raise CredentialError(
            _F.OVER_LIMIT,
            f"the credential is {len(encoded)} bytes, over {limits.MAX_CREDENTIAL_BYTES} "
            "(MAX_CREDENTIAL_BYTES): fewer or shorter attributes or caveats",
            link,
        )
    return SignedCredential(encoded, signer.sign(encoded), signer.attestation)


def check_fits(attributes: Attributes) -> None:
    """CredentialError OVER_LIMIT unless an authority's credential granting `attributes` fits
    MAX_CREDENTIAL_BYTES (the other fields at their largest): a ticket is refused when it is
    made, not when it is redeemed."""
    widest = 2**63 - 1
    nobody = Identifier(bytes(32))
    depth = limits.MAX_DELEGATION_LINKS
    body = CredentialBody(
        bytes(16), nobody, nobody, attributes, widest, widest, widest, depth, None
    )
    size = len(body.encode())
    if size > limits.MAX_CREDENTIAL_BYTES:
        raise CredentialError(
            _F.OVER_LIMIT,
            f"a credential granting these attributes is {size} bytes, over "
            f"{limits.MAX_CREDENTIAL_BYTES} (MAX_CREDENTIAL_BYTES)",
        )


def signer_key_end(signer: Signer, now: int, link: int = 0) -> int:
    """When a link `signer` makes at `now` must end: once its primary key's `valid_until` is
    past (a key is valid through it, a link while `now < expires_at`), every verifier refuses
    the chain (ISSUER_INVALID: `VerifiedCredential.keys_valid_until`), so a longer window only
    seemed valid, and a holder re-checking the window alone took it (review 75g, delegation2
    3; an authority's VC too, delegation2 4). CredentialError ISSUER_INVALID (for link `link`)
    when that key is past it already (it cannot sign a rotation either: docs/formats.md).
    The number is `Signer.key_end`, which a policy bundle is held to too (review 75l)."""
    key_end = signer.key_end
    if key_end <= now:
        raise CredentialError(
            _F.ISSUER_INVALID,
            f"the signer's current key was valid until {key_end - 1}: an expired key signs "
            "nothing more, nor a rotation (rotate a key before it expires)",
            link,
        )
    return key_end


def check_within_keys(signer: Signer, now: int, ends: int, link: int = 0) -> None:
    """CredentialError unless what `signer` signs at `now` to end at `ends` (a window the
    caller names) ends by its signing key (ATTESTATION_INVALID: renew it) and its primary
    key (ISSUER_INVALID, `signer_key_end`: a shorter window, or rotate). A window asked for is
    made or refused, never shortened in silence, as a delegation's expiry is within its
    proof's (UCAN `exp`; Biscuit: attenuation never extends; review 75l, issuance 1-2);
    an issuer's own TTL (`issue_credential`, `Authority.issue_member_vc`) is a maximum, capped
    at both instead."""
    key_end = signer_key_end(signer, now, link)
    if ends > key_end:
        raise CredentialError(
            _F.ISSUER_INVALID,
            f"ends at {ends}, after the signer's primary key (valid until {key_end - 1}): "
            f"end by {key_end} (a ttl of {key_end - now} s or less), or rotate it first",
            link,
        )
    if ends > signer.expires_at:
        raise CredentialError(
            _F.ATTESTATION_INVALID,
            f"ends at {ends}, after the signer's signing key ({signer.expires_at}): renew it",
            link,
        )


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
    than the issuer's signing-key attestation (renew the key to issue longer) nor its primary
    key's `valid_until` (rotate to issue longer: review 75g, delegation2 3). CredentialError
    for a depth past MAX_DELEGATION_LINKS (DEPTH_EXCEEDED), a primary key already expired
    (ISSUER_INVALID) or a value the body refuses (MALFORMED); ArgumentError for a number that
    is not an int, or a subject, attributes or credential id (bytes) of another type."""
    _numbers("issue_credential", now=now, ttl=ttl, depth=depth)
    credential_id = _parties("issue_credential", subject, attributes, credential_id)
    if depth > limits.MAX_DELEGATION_LINKS:
        raise CredentialError(
            _F.DEPTH_EXCEEDED, f"depth {depth} is over {limits.MAX_DELEGATION_LINKS}", 0
        )
    body = _body(
        0,
        id=credential_id or os.urandom(16),
        subject=subject,
        issuer=signer.identity.identifier,
        attributes=attributes,
        created_at=now,
        not_before=now,
        expires_at=min(now + ttl, signer.expires_at, signer_key_end(signer, now)),
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

    Refuses (CredentialError) unless the signer is the chain's subject, `subject` is not in the
    chain yet (CYCLE), every attribute is held (a set may only shrink), the expiry is no later
    than the parent's nor before the link's start (the parent's, when later than `now`), and
    the remaining depth is below the parent's. The expiry is no later than the signer's
    signing key (ATTESTATION_INVALID) nor its primary key's `valid_until + 1` (every verifier
    refuses the chain from then on: review 75g, delegation2 3): the ttl asked for is made or
    refused (ISSUER_INVALID, naming the end: review 75l, issuance 1, it was shortened in
    silence), as `check_within_keys` says; a key past it already, or ending before the link
    starts, is refused (ISSUER_INVALID). `depth` defaults to one less than the parent's.
    `credential_id` (16 bytes) is random unless given (golden vectors). ArgumentError for a
    number that is not an int, a purpose that is not a str, caveats that are not an iterable
    of str (a str is refused: it was taken as one caveat per character), or a subject,
    attributes or credential id (bytes) of another type."""
    _numbers("delegate", now=now, ttl=ttl, depth=depth)
    credential_id = _parties("delegate", subject, attributes, credential_id)
    check_kind("delegate", "purpose", purpose, str, "a str")
    conditions = caveat_texts("delegate", caveats)
    parent_signed = chain.credentials[-1]
    parent = CredentialBody.decode(parent_signed.body)
    link = len(chain.credentials)
    if parent.subject != signer.identity.identifier:
        raise CredentialError(_F.MISALIGNED, "the signer does not hold this chain", link)
    if subject == signer.identity.identifier:
        raise CredentialError(_F.CYCLE, "an identity cannot delegate to itself", link)
    # every verifier refuses an identity twice in a chain: refused when made (review 54q,
    # delegation 4: a delegation back to a delegator, or to the authority, was signed)
    above = [CredentialBody.decode(signed.body) for signed in chain.credentials[:-1]]
    if subject in {above[0].issuer if above else parent.issuer, *(b.subject for b in above)}:
        raise CredentialError(_F.CYCLE, f"{subject} is already in the chain", link)
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
    not_before = max(now, parent.not_before)
    key_end = signer_key_end(signer, now, link)
    if key_end <= not_before:
        raise CredentialError(
            _F.ISSUER_INVALID,
            f"the signer's current key ends at {key_end}, before the link starts: rotate it first",
            link,
        )
    check_within_keys(signer, now, expires_at, link)
    if expires_at < not_before:  # review 48j, delegation 2: a bare ValueError from the body
        if parent.not_before > now:
            raise CredentialError(
                _F.NOT_YET_VALID,
                f"the parent is valid from {parent.not_before}, after this delegation would "
                f"end at {expires_at}: a longer ttl, or delegate once it starts",
                link,
            )
        raise CredentialError(_F.MALFORMED, f"a ttl of {ttl} s ends before it starts", link)
    try:
        delegation = Delegation(parent_signed.hash, purpose, conditions)
    except ValueError as exc:
        raise CredentialError(_F.MALFORMED, str(exc), link) from None
    body = _body(
        link,
        id=credential_id or os.urandom(16),
        subject=subject,
        issuer=signer.identity.identifier,
        attributes=attributes,
        created_at=now,
        not_before=not_before,
        expires_at=expires_at,
        depth=depth,
        delegation=delegation,
    )
    extended = chain.extended(_sign(signer, body, link), signer.identity.history)
    size = len(extended.encode())
    if size > limits.MAX_PRESENTED_CHAIN_BYTES:  # what a handshake carries (review 45g)
        raise CredentialError(
            _F.OVER_LIMIT,
            f"the chain would be {size} bytes, over {limits.MAX_PRESENTED_CHAIN_BYTES} "
            "(MAX_PRESENTED_CHAIN_BYTES, what a handshake carries): its issuers' histories are "
            "long (present them from a checkpoint), it grants many attributes, or it is deep",
            link,
        )
    return extended
