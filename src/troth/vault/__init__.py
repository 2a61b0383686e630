"""Vaults hold private keys and use them; no API returns private key bytes."""

from troth.vault.base import KeyHandle, KeyPurpose, Vault
from troth.vault.composite import CompositeVault
from troth.vault.software import SoftwareVault

__all__ = ["CompositeVault", "KeyHandle", "KeyPurpose", "SoftwareVault", "Vault"]
