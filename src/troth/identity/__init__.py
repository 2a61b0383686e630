"""Identities: signed change histories, identifiers, purpose-key attestations, DID documents."""

from troth.identity.attestation import (
    PurposeKeyAttestation,
    VerifiedPurposeKey,
    attest_purpose_key,
    verify_attestation,
)
from troth.identity.change import (
    ChangeBody,
    Checkpoint,
    SignedChange,
    UnverifiedHistory,
    decode_history,
    encode_history,
    next_key_digest,
)
from troth.identity.create import HeldIdentity, new_identity, rotate_identity
from troth.identity.did import did_document, ed25519_from_multikey, multikey
from troth.identity.history import (
    Checkpoints,
    VerifiedChange,
    VerifiedIdentity,
    change_hashes,
    check_extends,
    indexed_hashes,
    verify_history,
)
from troth.identity.identifier import Identifier
from troth.identity.service import IdentityExists, IdentityService, LocalIdentity
from troth.identity.signatures import SeenSignatures
from troth.identity.signer import Signer, verify_signed_by

__all__ = [
    "ChangeBody",
    "Checkpoint",
    "Checkpoints",
    "HeldIdentity",
    "Identifier",
    "IdentityExists",
    "IdentityService",
    "LocalIdentity",
    "PurposeKeyAttestation",
    "SeenSignatures",
    "SignedChange",
    "Signer",
    "UnverifiedHistory",
    "VerifiedChange",
    "VerifiedIdentity",
    "VerifiedPurposeKey",
    "attest_purpose_key",
    "change_hashes",
    "check_extends",
    "decode_history",
    "did_document",
    "ed25519_from_multikey",
    "encode_history",
    "indexed_hashes",
    "multikey",
    "new_identity",
    "next_key_digest",
    "rotate_identity",
    "verify_attestation",
    "verify_history",
    "verify_signed_by",
]
