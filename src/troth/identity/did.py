"""DID documents for `did:troth:` identifiers (W3C DID Core 1.0; keys as Multikey, W3C
Controlled Identifiers 1.0 §2.2.2, multicodec ed25519-pub 0xed01 / p256-pub 0x8024)."""

from __future__ import annotations

from typing import Any, Final

import base58

from troth import limits
from troth.crypto import KeyType, PublicKey
from troth.errors import InvalidKey
from troth.identity.history import VerifiedIdentity

__all__ = ["did_document", "ed25519_from_multikey", "multikey"]

_MULTICODEC: Final = {KeyType.ED25519: b"\xed\x01", KeyType.P256: b"\x80\x24"}


def multikey(key: PublicKey) -> str:
    """The Multikey `publicKeyMultibase` of a signing key: 'z' + base58btc(multicodec || key)."""
    raw = key.p256_compressed() if key.key_type is KeyType.P256 else key.data
    return "z" + base58.b58encode(_MULTICODEC[key.key_type] + raw).decode("ascii")


def ed25519_from_multikey(value: str) -> PublicKey:
    """The Ed25519 key of a Multikey `publicKeyMultibase` (the inverse of `multikey`); raises
    ValueError for anything else."""
    if len(value) > limits.MAX_ED25519_MULTIKEY_CHARS:  # a peer's text, bounded before decoding
        raise ValueError(f"not an Ed25519 Multikey: {len(value)} characters")
    raw = base58.b58decode(value[1:]) if value.startswith("z") else b""
    if len(raw) != 34 or raw[:2] != _MULTICODEC[KeyType.ED25519]:
        raise ValueError(f"not an Ed25519 Multikey: {value!r}")
    try:
        return PublicKey(KeyType.ED25519, raw[2:])
    except InvalidKey as exc:  # a key of small order
        raise ValueError(f"not a usable Ed25519 key: {exc}") from None


def did_document(identity: VerifiedIdentity) -> dict[str, Any]:
    """The DID document of a verified identity: its current primary key, for authentication
    and assertions. The key id is the change number, so a rotation gives a new id. The
    pre-rotation commitment is not in it: DID Core 1.0 defines no property for one (it stays
    in the history, as KERI methods keep it in their key event log)."""
    did = identity.identifier.did
    key_id = f"{did}#key-{identity.current.index}"
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [
            {
                "id": key_id,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multikey(identity.current_key),
            }
        ],
        "authentication": [key_id],
        "assertionMethod": [key_id],
    }
