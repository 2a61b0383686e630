"""Which purpose keys a rotation or a purpose key's renewal retires (review 48k, pkcs11 3;
docs/vault.md, "PKCS#11 vault"): a purpose key record of node.db names its key by handle,
and a writer of node.db points it where it likes. A record's key is retired only when its
attestation is the identity's, for that very key: signed by the identity's current key
(`verify_attestation` at the attestation's own creation, so one that expired still counts)
and naming the public key the vault holds under the handle. Any other record retires
nothing (its key, if any, is left: not the identity's to delete)."""

from __future__ import annotations

from collections.abc import Iterable

from troth.errors import TrothError
from troth.identity.attestation import PurposeKeyAttestation, verify_attestation
from troth.identity.history import VerifiedIdentity
from troth.storage import PurposeKeyRecord
from troth.vault import KeyHandle, KeyPurpose, Vault

__all__ = ["owned_purpose_keys"]

_PURPOSES = frozenset(KeyPurpose)


def owned_purpose_keys(
    vault: Vault, identity: VerifiedIdentity, records: Iterable[PurposeKeyRecord]
) -> list[tuple[KeyHandle, KeyPurpose]]:
    """The handles of `records` whose keys `identity` attested (with their purposes)."""
    owned = []
    for record in records:
        if record.purpose not in _PURPOSES:
            continue
        purpose = KeyPurpose(record.purpose)
        try:
            handle = KeyHandle.parse(record.key_handle)
            created = PurposeKeyAttestation.decode(record.attestation).created_at
            attested = verify_attestation(
                identity, record.attestation, purpose=purpose, now=created
            )
            if vault.public_key(handle) != attested.key:
                continue  # another key (another identity's): not this record's to retire
        except TrothError:  # no attestation of this identity, or no such key in the vault
            continue
        owned.append((handle, purpose))
    return owned
