"""W3C Verifiable Credentials 2.0 secured with Data Integrity `eddsa-jcs-2022`
(W3C vc-di-eddsa 1.0, §3.3): JCS (RFC 8785, via `rfc8785`) canonical forms, SHA-256, Ed25519.

    proofConfig = JCS(proof options, with the document's @context copied in)   (§3.3.5)
    hashData    = SHA-256(proofConfig) || SHA-256(JCS(document without proof))  (§3.3.4)
    proofValue  = "z" + base58btc(Ed25519(hashData))                            (§3.3.6)

troth exports an authority-issued credential as a VC signed by the authority's signing purpose
key (never its primary key). Its verification method is
`did:troth:<hex>#signing-<first 8 bytes of SHA-256(public key), hex>` and the proof carries
the key's attestation in `trothKeyAttestation` (base64url), which the proof config hash covers;
a verifier resolves the key from the authority's change history and that attestation.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import base58
import rfc8785

from troth.credentials.attributes import Attributes
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
    "did_key_resolver",
    "export_credential_vc",
    "sign_eddsa_jcs_2022",
    "signing_key_id",
    "troth_resolver",
    "verify_eddsa_jcs_2022",
    "xsd_datetime",
]

CRYPTOSUITE: Final = "eddsa-jcs-2022"
VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
_XSD_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_F = CredentialFailure

Resolver = Callable[[str, dict[str, Any]], PublicKey]
"""Maps a verification method (and the proof, for extra properties) to an Ed25519 key."""


def xsd_datetime(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _jcs(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
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


def verify_eddsa_jcs_2022(secured: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    """Verify a secured document (§3.3.2); returns it without its proof."""
    proof = secured.get("proof")
    if not isinstance(proof, dict):
        raise CredentialError(_F.MALFORMED, "no proof object")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise CredentialError(_F.MALFORMED, "not a DataIntegrityProof with eddsa-jcs-2022")
    if proof.get("proofPurpose") != "assertionMethod":
        raise CredentialError(_F.MALFORMED, "proofPurpose must be assertionMethod")
    created = proof.get("created")
    if created is not None and not (isinstance(created, str) and _XSD_DATETIME.fullmatch(created)):
        raise CredentialError(_F.MALFORMED, "created is not an xsd:dateTime")
    proof_value = proof.get("proofValue")
    if not isinstance(proof_value, str) or not proof_value.startswith("z"):
        raise CredentialError(_F.MALFORMED, "proofValue must be base58btc multibase ('z')")
    try:
        signature = base58.b58decode(proof_value[1:])
    except ValueError:
        raise CredentialError(_F.MALFORMED, "proofValue is not base58btc") from None
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    if "@context" in options:
        context = options["@context"]
        document_context = unsecured.get("@context")
        if (
            not isinstance(context, list)
            or not isinstance(document_context, list)
            or (document_context[: len(context)] != context)
        ):
            raise CredentialError(_F.MALFORMED, "document @context does not start with the proof's")
        unsecured["@context"] = context
    method = proof.get("verificationMethod")
    if not isinstance(method, str):
        raise CredentialError(_F.MALFORMED, "no verificationMethod")
    key = resolve(method, proof)
    if key.key_type is not KeyType.ED25519 or len(signature) != 64:
        raise CredentialError(_F.BAD_SIGNATURE, "eddsa-jcs-2022 needs a 64-byte Ed25519 signature")
    try:
        verify_signature(key, signature, _hash_data(unsecured, options))
    except CryptoError:
        raise CredentialError(_F.BAD_SIGNATURE) from None
    return unsecured


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
    return f"{identifier.did}#signing-{sha256(key.data)[:8].hex()}"


def troth_resolver(issuer: VerifiedIdentity, *, at: int) -> Resolver:
    """Resolve `did:troth:<issuer>#signing-...` with the issuer's verified history and the
    attestation the proof carries (valid at `at`)."""

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
        return key.key

    return resolve


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
    """An authority's credential as a W3C VC 2.0 JSON document, secured with eddsa-jcs-2022."""
    key = signer.vault.public_key(signer.handle)
    if key.key_type is not KeyType.ED25519:
        raise CredentialError(_F.MALFORMED, "eddsa-jcs-2022 needs an Ed25519 issuer")
    issuer = signer.identity.identifier
    document = {
        "@context": [VC_CONTEXT],
        "id": f"urn:troth:credential:{credential_id.hex()}",
        "type": ["VerifiableCredential", "TrothAttributeCredential"],
        "issuer": issuer.did,
        "validFrom": xsd_datetime(valid_from),
        "validUntil": xsd_datetime(valid_until),
        "credentialSubject": {"id": subject.did, "attributes": attributes.to_json()},
    }
    options = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": xsd_datetime(now),
        "verificationMethod": signing_key_id(issuer, key),
        "proofPurpose": "assertionMethod",
        "trothKeyAttestation": base64.urlsafe_b64encode(signer.attestation).rstrip(b"=").decode(),
    }
    return sign_eddsa_jcs_2022(document, options, signer.sign)
