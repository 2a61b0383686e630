"""Vaults hold private keys and seal keys and use them; no API returns key bytes."""

from troth.vault.base import KeyHandle, KeyPurpose, SealingVault, SealKey, Vault
from troth.vault.composite import CompositeVault
from troth.vault.software import SoftwareVault

__all__ = [
    "CompositeVault",
    "KeyHandle",
    "KeyPurpose",
    "SealKey",
    "SealingVault",
    "SoftwareVault",
    "Vault",
]
