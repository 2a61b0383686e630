"""Blobs made under a software vault's seal keys, re-sealed by a rekey (review 62i, rekey 1).

A seal key's value is an AES-256-GCM key: whoever holds it seals as well as unseals. A stolen
copy of a node directory (node.db and vault.key) gives the thief every seal key's value, so a
rekey gives each seal key a fresh value. Review 55d kept the replaced values beside it to
unseal what they had sealed; then a blob the thief sealed under an old value, with an AAD read
from node.db (a secret's name, engine and configuration's digest), opened on the recovered
node as its own (review 62d, vault 2). So `SoftwareVault.rekey` replaces the values, and in its
transaction hands a `Resealer` to the caller's hook (`troth.secrets.reseal` for the broker's
tables), which re-seals every blob it keeps under the new value.

A blob kept anywhere else (a library user's own table or file) is not re-sealed: it opens
under nothing after the rekey. Unseal it before, and seal it again after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from troth.crypto import Aead
from troth.vault.base import SealKey, seal_under, unseal_under

__all__ = ["ResealHook", "Resealer"]


class Resealer:
    """What a rekey hands to its `ResealHook`: re-seals a blob made under one of the vault's
    seal keys with the value the rekey gave that key (`values`: per key id, the values it
    had, the one that sealed first, and the new one)."""

    def __init__(self, vault: str, values: Mapping[str, tuple[tuple[Aead, ...], Aead]]) -> None:
        self._vault = vault
        self._values = values
        self.resealed = 0
        """How many blobs were re-sealed."""

    def __call__(self, key: SealKey, sealed: bytes, aad: bytes) -> bytes | None:
        """`sealed` (made under `key` with the caller's `aad`) sealed again under `key`'s new
        value; None, to be left as it is, for a key the rekey gave no new value (a token's
        seal key: its value never leaves the token; one of another vault; no key stored) or
        a blob no value of the key opens (tampered, moved, or never sealed under it: it opens
        under nothing afterwards either, and a blob planted there cannot stop the rekey)."""
        return self._reseal(key, sealed, aad, None)

    def renew(self, key: SealKey, sealed: bytes, aad: bytes, fresh: bytes) -> bytes | None:
        """`fresh` sealed under `key`'s new value in place of `sealed`, which an old value
        opens (None as `__call__`): for a secret of the caller's own that a copy of the vault
        opened, replaced at the rekey (the broker's audit key: review 62o, rekey 1)."""
        return self._reseal(key, sealed, aad, fresh)

    def _reseal(self, key: SealKey, sealed: bytes, aad: bytes, fresh: bytes | None) -> bytes | None:
        """`__call__`, or `renew` for a `fresh` plaintext."""
        found = self._values.get(key.key_id) if key.vault == self._vault else None
        if found is None or not isinstance(sealed, bytes):
            return None
        old, new = found
        plaintext = unseal_under(old, key, sealed, aad)
        if plaintext is None:
            return None
        self.resealed += 1
        return seal_under(new, key, plaintext if fresh is None else fresh, aad)


ResealHook = Callable[[Resealer], object]
"""Called by `SoftwareVault.rekey` in its transaction, once the seal keys have their new
values: re-seals, with the `Resealer`, every blob its caller keeps, and writes them back."""
