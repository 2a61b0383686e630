"""W3C Verifiable Credentials 2.0 secured with Data Integrity `eddsa-jcs-2022`
(W3C vc-di-eddsa 1.0, §3.3): JCS (RFC 8785, via `rfc8785`) canonical forms, SHA-256, Ed25519.

    proofConfig = JCS(proof options, with the document's @context copied in)   (§3.3.5)
    hashData    = SHA-256(proofConfig) || SHA-256(JCS(document without proof))  (§3.3.4)
    proofValue  = "z" + base58btc(Ed25519(hashData))                            (§3.3.6)

`proof` may be one proof or a proof set (Data Integrity §2.1.1): every proof this suite
understands (DataIntegrityProof / eddsa-jcs-2022) must verify and at least one must be there
(Data Integrity §4.5); proof chains (`previousProof`, §2.1.2) are refused as unsupported.
`@context` may be a string or an ordered set on either side (VC 2.0 §4.3, JSON-LD 1.1 §3.1).

troth exports an authority-issued credential as a VC signed by the authority's signing purpose
key (never its primary key). Its verification method is
`did:troth:<hex>#signing-<first 8 bytes of SHA-256(public key), hex>` and the proof carries
the key's attestation in `trothKeyAttestation` (base64url), which the proof config hash covers;
a verifier resolves the key from the authority's change history and that attestation.

Its `credentialStatus` (VC 2.0 §4.10) names the authority's revocation feed and the VC's
credential hash, SHA-256("troth.vc/1" 0x00 || UTF-8 of the VC's `id`) — a domain apart from
the hashes of CBOR credentials. `verify_troth_vc` checks it like a CBOR chain: the issuer's
feed must be held and fresh, and neither that hash nor the issuer nor the subject is revoked.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import base58
import rfc8785

from troth import limits
from troth.credentials.attributes import Attributes
from troth.credentials.issue import check_within_keys
from troth.credentials.revocation_held import VerifiedFeed
from troth.credentials.verify import TrustPolicy
from troth.crypto import KeyType, PublicKey, sha256, verify_signature
from troth.errors import CredentialError, CredentialFailure, CryptoError, IdentityError
from troth.identity import (
    Identifier,
    Signer,
    VerifiedIdentity,
    ed25519_from_multikey,
    verify_attestation,
)
from troth.vault import KeyPurpose

__all__ = [
    "CRYPTOSUITE",
    "STATUS_TYPE",
    "VerifiedVC",
    "did_key_resolver",
    "export_credential_vc",
    "parse_xsd_datetime",
    "sign_eddsa_jcs_2022",
    "signing_key_id",
    "troth_resolver",
    "vc_credential_hash",
    "vc_issuer",
    "verify_eddsa_jcs_2022",
    "verify_troth_vc",
    "xsd_datetime",
]

CRYPTOSUITE: Final = "eddsa-jcs-2022"
VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
STATUS_TYPE: Final = "TrothRevocationFeedEntry"
VC_HASH_DOMAIN: Final = b"troth.vc/1\x00"
DID_TROTH: Final = "did:troth:"
_XSD_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_F = CredentialFailure

Resolver = Callable[[str, dict[str, Any]], PublicKey]
"""Maps a verification method (and the proof, for extra properties) to an Ed25519 key."""


def xsd_datetime(timestamp: int) -> str:
    """Unix seconds as an xsd:dateTimeStamp in UTC (`2026-09-21T12:00:00Z`); CredentialError
    MALFORMED for a time before 1970 or after 9999-12-31T23:59:59Z (`LAST_CLOCK_READING`), which
    no four-digit year carries (review 61a, credentials 2: a bare ValueError, OSError or
    OverflowError by platform)."""
    if not 0 <= timestamp <= limits.LAST_CLOCK_READING:
        raise CredentialError(
            _F.MALFORMED, f"{timestamp} is not a time a VC carries (1970 to 9999-12-31T23:59:59Z)"
        )
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_xsd_datetime(value: Any, what: str) -> int:
    """An xsd:dateTimeStamp (with `Z` or an offset; VC 2.0 §4.9) as Unix seconds (fractions
    dropped), else `CredentialError(MALFORMED)`."""
    if not isinstance(value, str) or not _XSD_DATETIME.fullmatch(value):
        raise CredentialError(_F.MALFORMED, f"{what} is not an xsd:dateTimeStamp")
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except (ValueError, OverflowError):
        raise CredentialError(_F.MALFORMED, f"{what} is not a valid date") from None


def _jcs(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError) as exc:
        raise CredentialError(_F.MALFORMED, f"cannot canonicalize: {exc}") from None


def _hash_data(document: dict[str, Any], proof_options: dict[str, Any]) -> bytes:
    return sha256(_jcs(proof_options)) + sha256(_jcs(document))


def sign_eddsa_jcs_2022(
    document: dict[str, Any], options: dict[str, Any], sign: Callable[[bytes], bytes]
) -> dict[str, Any]:
    """Add a DataIntegrityProof (§3.3.1). `options` holds type, cryptosuite, created,
    verificationMethod, proofPurpose (and any extra properties)."""
    if options.get("type") != "DataIntegrityProof" or options.get("cryptosuite") != CRYPTOSUITE:
        raise CredentialError(_F.MALFORMED, "options must name DataIntegrityProof / eddsa-jcs-2022")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    proof = dict(options)
    if "@context" in unsecured:
        proof["@context"] = unsecured["@context"]  # §3.3.1 step 2
    signature = sign(_hash_data(unsecured, proof))
    proof["proofValue"] = "z" + base58.b58encode(signature).decode("ascii")
    return {**unsecured, "proof": proof}


def _contexts(value: Any) -> list[Any] | None:
    """`@context` as an ordered set: a string is a set of one (JSON-LD 1.1 §3.1, VC 2.0 §4.3)."""
    if isinstance(value, str):
        return [value]
    return value if isinstance(value, list) else None


def _understood(proof: dict[str, Any]) -> bool:
    return proof.get("type") == "DataIntegrityProof" and proof.get("cryptosuite") == CRYPTOSUITE


def verify_eddsa_jcs_2022(secured: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    """Verify a secured document's proof or proof set; returns the verified document (without
    its proof; its @context as the proofs signed it).

    Data Integrity §4.5 (proof sets): each proof secures the document without the `proof`
    property; every proof this suite understands must verify, proofs of other suites are not
    judged here, and at least one eddsa-jcs-2022 proof must be present. §2.1.2 proof chains
    (`previousProof`) are refused: troth does not verify them."""
    proofs = secured.get("proof")
    if isinstance(proofs, dict):
        proofs = [proofs]
    if not isinstance(proofs, list) or not all(isinstance(p, dict) for p in proofs):
        raise CredentialError(_F.MALFORMED, "proof must be an object or a set of objects")
    if len(proofs) > limits.MAX_VC_PROOFS:
        raise CredentialError(_F.OVER_LIMIT, f"more than {limits.MAX_VC_PROOFS} proofs")
    if any("previousProof" in p for p in proofs):
        raise CredentialError(
            _F.MALFORMED, "proof chains (previousProof, Data Integrity §2.1.2) are not supported"
        )
    ours = [p for p in proofs if _understood(p)]
    if not ours:
        raise CredentialError(_F.MALFORMED, "no DataIntegrityProof with eddsa-jcs-2022")
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    verified = unsecured
    for proof in ours:  # §4.5 step 3 (no previousProof: matchingProofs is empty)
        verified = _verify_proof(unsecured, proof, resolve)
    return verified


def _verify_proof(
    unsecured: dict[str, Any], proof: dict[str, Any], resolve: Resolver
) -> dict[str, Any]:
    """Verify one eddsa-jcs-2022 proof over `unsecured` (§3.3.2)."""
    if proof.get("proofPurpose") != "assertionMethod":
        raise CredentialError(_F.MALFORMED, "proofPurpose must be assertionMethod")
    created = proof.get("created")
    if created is not None and not (isinstance(created, str) and _XSD_DATETIME.fullmatch(created)):
        raise CredentialError(_F.MALFORMED, "created is not an xsd:dateTime")
    proof_value = proof.get("proofValue")
    if not isinstance(proof_value, str) or not proof_value.startswith("z"):
        raise CredentialError(_F.MALFORMED, "proofValue must be base58btc multibase ('z')")
    if len(proof_value) > limits.MAX_PROOF_VALUE_CHARS:  # before decoding (review 61a, 6)
        raise CredentialError(
            _F.BAD_SIGNATURE, f"proofValue of {len(proof_value)} characters: no 64-byte signature"
        )
    try:
        signature = base58.b58decode(proof_value[1:])
    except ValueError:
        raise CredentialError(_F.MALFORMED, "proofValue is not base58btc") from None
    options = {k: v for k, v in proof.items() if k != "proofValue"}  # step 2
    document = dict(unsecured)
    if "@context" in options:  # step 4: the document's @context starts with the proof's
        context = _contexts(options["@context"])
        document_context = _contexts(document.get("@context"))
        if (
            context is None
            or document_context is None
            or (document_context[: len(context)] != context)
        ):
            raise CredentialError(_F.MALFORMED, "document @context does not start with the proof's")
        document["@context"] = options["@context"]
    method = proof.get("verificationMethod")
    if not isinstance(method, str):
        raise CredentialError(_F.MALFORMED, "no verificationMethod")
    key = resolve(method, proof)
    if key.key_type is not KeyType.ED25519 or len(signature) != 64:
        raise CredentialError(_F.BAD_SIGNATURE, "eddsa-jcs-2022 needs a 64-byte Ed25519 signature")
    try:
        verify_signature(key, signature, _hash_data(document, options))
    except CryptoError:
        raise CredentialError(_F.BAD_SIGNATURE) from None
    return document


def _ed25519_from_multikey(value: str) -> PublicKey:
    try:
        return ed25519_from_multikey(value)
    except ValueError:
        raise CredentialError(_F.MALFORMED, f"not an Ed25519 Multikey: {value!r}") from None


def did_key_resolver(method: str, proof: dict[str, Any]) -> PublicKey:
    """did:key with an Ed25519 Multikey (`did:key:z6Mk...#z6Mk...`)."""
    did, _, fragment = method.partition("#")
    if not did.startswith("did:key:") or fragment != did[len("did:key:") :]:
        raise CredentialError(_F.MALFORMED, f"not a did:key verification method: {method!r}")
    return _ed25519_from_multikey(fragment)


def signing_key_id(identifier: Identifier, key: PublicKey) -> str:
    """The verification method id of `identifier`'s signing purpose key `key`."""
    return f"{identifier.did}#signing-{sha256(key.data)[:8].hex()}"


def troth_resolver(issuer: VerifiedIdentity, *, at: int) -> Resolver:
    """Resolve `did:troth:<issuer>#signing-...` with the issuer's verified history and the
    attestation the proof carries (valid at `at`)."""
    return _resolver(issuer, at, [])


def _resolver(issuer: VerifiedIdentity, at: int, expiries: list[int]) -> Resolver:
    """`troth_resolver`, adding the expiry of each key it resolves to `expiries`."""

    def resolve(method: str, proof: dict[str, Any]) -> PublicKey:
        encoded = proof.get("trothKeyAttestation")
        if not isinstance(encoded, str):
            raise CredentialError(_F.ATTESTATION_INVALID, "no trothKeyAttestation in the proof")
        try:
            attestation = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            key = verify_attestation(issuer, attestation, purpose=KeyPurpose.SIGNING, now=at)
        except (binascii.Error, ValueError, IdentityError) as exc:
            raise CredentialError(_F.ATTESTATION_INVALID, str(exc)) from None
        if method != signing_key_id(issuer.identifier, key.key):
            raise CredentialError(_F.MALFORMED, f"{method} is not the attested key")
        expiries.append(key.expires_at)
        return key.key

    return resolve


# -- troth's VCs: export, status, verification ------------------------------------------------


def vc_credential_hash(vc_id: str) -> bytes:
    """What a troth VC is revoked by: SHA-256("troth.vc/1" 0x00 || UTF-8 of its `id`)."""
    try:
        return sha256(VC_HASH_DOMAIN + vc_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise CredentialError(_F.MALFORMED, "id is not valid Unicode text") from None


def _status(authority: Identifier, credential_hash: bytes) -> dict[str, str]:
    return {
        "id": f"urn:troth:revocation:{authority.digest.hex()}#{credential_hash.hex()}",
        "type": STATUS_TYPE,
        "statusPurpose": "revocation",
        "revocationFeed": authority.did,
        "credentialHash": credential_hash.hex(),
    }


def export_credential_vc(
    signer: Signer,
    *,
    credential_id: bytes,
    subject: Identifier,
    attributes: Attributes,
    valid_from: int,
    valid_until: int,
    now: int,
) -> dict[str, Any]:
    """An authority's credential as a W3C VC 2.0 JSON document, secured with eddsa-jcs-2022,
    its `credentialStatus` naming the authority's feed and `vc_credential_hash(id)`. The
    caller records that hash as issued to `subject` (so removing the member revokes it):
    `troth.authority.Authority.issue_member_vc` does both. CredentialError MALFORMED for a
    window that ends before it starts, or a time past 9999 (`xsd_datetime`); ISSUER_INVALID
    or ATTESTATION_INVALID for a `valid_until` past the signer's primary or signing key
    (`check_within_keys`: `verify_vc` refuses such a VC, for good past the signing key;
    review 75l, issuance 2, it was signed)."""
    if valid_from > valid_until:  # what every verifier refuses (review 56a, credentials 3)
        raise CredentialError(_F.MALFORMED, "valid_from is after valid_until")
    key = signer.vault.public_key(signer.handle)
    if key.key_type is not KeyType.ED25519:
        raise CredentialError(_F.MALFORMED, "eddsa-jcs-2022 needs an Ed25519 issuer")
    issuer = signer.identity.identifier
    vc_id = f"urn:troth:credential:{credential_id.hex()}"
    document = {
        "@context": [VC_CONTEXT],
        "id": vc_id,
        "type": ["VerifiableCredential", "TrothAttributeCredential"],
        "issuer": issuer.did,
        "validFrom": xsd_datetime(valid_from),
        "validUntil": xsd_datetime(valid_until),
        "credentialSubject": {"id": subject.did, "attributes": attributes.to_json()},
        "credentialStatus": _status(issuer, vc_credential_hash(vc_id)),
    }
    check_within_keys(signer, now, valid_until)  # a time past 9999 is refused first
    options = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": xsd_datetime(now),
        "verificationMethod": signing_key_id(issuer, key),
        "proofPurpose": "assertionMethod",
        "trothKeyAttestation": base64.urlsafe_b64encode(signer.attestation).rstrip(b"=").decode(),
    }
    return sign_eddsa_jcs_2022(document, options, signer.sign)


def _did_troth(value: Any, what: str) -> Identifier:
    if not isinstance(value, str) or not value.startswith(DID_TROTH):
        raise CredentialError(_F.MALFORMED, f"{what} is not a did:troth identifier")
    try:
        return Identifier.parse(value)
    except ValueError:
        raise CredentialError(_F.MALFORMED, f"{what} is not a did:troth identifier") from None


def vc_issuer(document: Any) -> Identifier:
    """The did:troth issuer a (not yet verified) troth VC names: whose history and feed a
    verifier needs."""
    if not isinstance(document, dict):
        raise CredentialError(_F.MALFORMED, "a VC is a JSON object")
    return _did_troth(document.get("issuer"), "issuer")


@dataclass(frozen=True, slots=True)
class VerifiedVC:
    """A troth VC whose proofs, window and revocation status verified."""

    id: str
    credential_hash: bytes
    issuer: Identifier
    subject: Identifier
    attributes: Attributes
    valid_from: int
    valid_until: int
    within_skew: bool  # valid only thanks to the clock-skew allowance
    proofs: int  # the eddsa-jcs-2022 proofs verified (those of other suites are not judged)

    def to_json(self) -> dict[str, Any]:
        """The verification result, as `troth credential verify --format vc --json` prints it."""
        return {
            "valid": True,
            "id": self.id,
            "credential_hash": self.credential_hash.hex(),
            "issuer": str(self.issuer),
            "subject": self.subject.did,
            "attributes": self.attributes.to_json(),
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "within_skew": self.within_skew,
            "proofs": self.proofs,
        }


def verify_troth_vc(
    document: Any,
    *,
    policy: TrustPolicy,
    issuer: VerifiedIdentity,
    feeds: Mapping[Identifier, VerifiedFeed],
    now: int,
) -> VerifiedVC:
    """Verify a troth VC like a one-link CBOR chain (docs/formats.md, "W3C Verifiable
    Credentials"): the issuer is a trust anchor whose history is `issuer`; its proof (set)
    verifies; `now` is in [validFrom - skew, validUntil + skew) with the policy's skew, and
    `validUntil` no later than the signing key of each proof (ATTESTATION_INVALID); its
    `credentialStatus` names the issuer's feed and the hash of its `id`; that feed is held and
    fresh, and neither the credential hash, the issuer nor the subject is revoked in it; nor
    does it supersede `issuer`, nor leave it unbound (a history from a checkpoint counts only
    when that feed names one of its changes: `VerifiedFeed.binds`, as for a chain's issuer)."""
    named = vc_issuer(document)
    if named not in policy.anchors:
        raise CredentialError(_F.UNTRUSTED_ISSUER, str(named))
    if issuer.identifier != named:
        raise CredentialError(_F.ISSUER_INVALID, "the history is not the issuer's")
    expiries: list[int] = []  # of the signing keys of its proofs
    signed = verify_eddsa_jcs_2022(document, _resolver(issuer, now, expiries))
    contexts = _contexts(signed.get("@context"))
    if not contexts or contexts[0] != VC_CONTEXT:  # VC 2.0 §4.3
        raise CredentialError(_F.MALFORMED, f"@context does not start with {VC_CONTEXT}")
    types = signed.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types:  # VC 2.0 §4.5
        raise CredentialError(_F.MALFORMED, "type does not include VerifiableCredential")
    vc_id = signed.get("id")
    if not isinstance(vc_id, str):
        raise CredentialError(_F.MALFORMED, "no id: a troth VC is revoked by the hash of its id")
    claims = signed.get("credentialSubject")
    if not isinstance(claims, dict):
        raise CredentialError(_F.MALFORMED, "credentialSubject is not an object")
    subject = _did_troth(claims.get("id"), "credentialSubject.id")
    attributes = _attributes(claims.get("attributes", {}))
    valid_from, valid_until, within_skew = _window(signed, policy.max_clock_skew, now)
    if valid_until > min(expiries):  # as a chain's link (review 48j, delegation 4)
        raise CredentialError(_F.ATTESTATION_INVALID, "outlives the issuer's signing key")
    credential_hash = vc_credential_hash(vc_id)
    if signed.get("credentialStatus") != _status(named, credential_hash):
        raise CredentialError(
            _F.MALFORMED, f"credentialStatus is not this VC's entry in {named.did}'s feed"
        )
    feed = feeds.get(named)
    if feed is None or feed.authority != named:
        raise CredentialError(_F.NO_FEED, str(named))
    feed.check_fresh(now=now, max_staleness=policy.max_feed_staleness)
    if credential_hash in feed.revoked_credentials:
        raise CredentialError(_F.REVOKED, f"credential {credential_hash.hex()}")
    for role, identifier in (("issuer", named), ("subject", subject)):
        if identifier.digest in feed.revoked_identities:
            raise CredentialError(_F.REVOKED, f"{role} {identifier}")
    feed.check_current(issuer)  # a superseded issuer history (a rolled-back key) is refused
    if not feed.binds(issuer):  # review 56a, credentials 2: as a chain's issuer (review 23a)
        raise CredentialError(
            _F.ISSUER_INVALID,
            f"{named}'s history from change {issuer.first_index} is another authority's word, "
            "which its own feed does not name: present its whole history",
        )
    return VerifiedVC(
        vc_id,
        credential_hash,
        named,
        subject,
        attributes,
        valid_from,
        valid_until,
        within_skew,
        len(expiries),  # the proofs verified: one of another suite is not (review 65f, 2)
    )


def _attributes(value: Any) -> Attributes:
    """`credentialSubject.attributes` ({key: text or [text, ...]}) as validated Attributes."""
    if isinstance(value, dict) and all(
        isinstance(v, str) or (isinstance(v, list) and all(isinstance(t, str) for t in v))
        for v in value.values()
    ):
        try:
            return Attributes(
                {k: v if isinstance(v, str) else frozenset(v) for k, v in value.items()}
            )
        except ValueError as exc:
            raise CredentialError(_F.MALFORMED, f"attributes: {exc}") from None
    raise CredentialError(_F.MALFORMED, "attributes must map names to text or lists of text")


def _window(signed: dict[str, Any], skew: int, now: int) -> tuple[int, int, bool]:
    """validFrom / validUntil (VC 2.0 §4.9) checked at `now` with `skew` seconds either way
    (the chain verifier's rule: `not_before - skew <= now < expires_at + skew`); also whether
    only the skew made the VC valid. A troth VC names both, as a CBOR credential has its
    window (docs/formats.md, "W3C Verifiable Credentials"): one without is malformed (review
    48j, delegation 1: a VC without `validUntil` was valid for as long as its key, one without
    `validFrom` before it was issued), as is one whose `validFrom` is after its `validUntil`
    (review 56a, credentials 3: it verified within the skew)."""
    for name in ("validFrom", "validUntil"):
        if name not in signed:
            raise CredentialError(_F.MALFORMED, f"no {name}: a troth VC names its window")
    valid_from = parse_xsd_datetime(signed["validFrom"], "validFrom")
    valid_until = parse_xsd_datetime(signed["validUntil"], "validUntil")
    if valid_from > valid_until:  # VC 2.0 §4.9; as a CBOR body (review 56a, credentials 3)
        raise CredentialError(_F.MALFORMED, "validFrom is after validUntil")
    if now < valid_from - skew:
        raise CredentialError(_F.NOT_YET_VALID, signed["validFrom"])
    if now >= valid_until + skew:
        raise CredentialError(_F.EXPIRED, signed["validUntil"])
    return valid_from, valid_until, now < valid_from or now >= valid_until
