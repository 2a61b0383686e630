"""Which purpose keys a rotation or a purpose key's renewal retires (review 48k, pkcs11 3;
docs/vault.md, "PKCS#11 vault"): a purpose key record of node.db names its key by handle,
and a writer of node.db points it where it likes. A record's key is retired only when its
attestation is the identity's, for that very key: signed by the identity's current key
(`verify_attestation` at the attestation's own creation, so one that expired still counts)
and naming the public key the vault holds under the handle. Any other record retires
nothing (its key, if any, is left: not the identity's to delete)."""

from __future__ import annotations

from collections.abc import Iterable

from troth.errors import KeyNotFound, TrothError
from troth.identity.attestation import PurposeKeyAttestation, verify_attestation
from troth.identity.fresh import NewKeys
from troth.identity.history import VerifiedIdentity
from troth.storage import PurposeKeyRecord
from troth.storage.base import RETIRED_PROOF_MARK
from troth.vault import KeyHandle, KeyPurpose, Vault
from troth.vault.base import RetiringVault

__all__ = ["owned_purpose_keys", "retirement_record"]

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


def retirement_record(
    vault: Vault, handle: KeyHandle, purpose: KeyPurpose, keys: NewKeys
) -> str | None:
    """The record of `handle` retired as a key of `purpose`: the handle and the proof its
    vault made of the retirement (`RetiringVault.retire`, before the commit), which
    `forget_retired` needs to delete it: a record planted in node.db by a writer who
    cannot use the vault has none, and the vault keeps the key (review 48k, pkcs11 3).
    None when the vault holds no such key of `purpose` (a purpose key record pointed at
    an identity's key): nothing to delete. The retirement is recorded in `keys`, the write's,
    which undoes it if the write fails (review 53m, pkcs11 1)."""
    if not isinstance(vault, RetiringVault):
        return str(handle)
    try:
        proof = vault.retire(handle, purpose)
    except KeyNotFound:
        return None
    if proof is None:
        return str(handle)
    keys.retired(handle, proof)
    return f"{handle}{RETIRED_PROOF_MARK}{proof}"
