"""The limits of reading a W3C VC's proof (troth.credentials.vc).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_PROOF_VALUE_CHARS"]

MAX_PROOF_VALUE_CHARS: Final = 89
"""Longest eddsa-jcs-2022 `proofValue` read: "z" and the base58 of a 64-byte Ed25519 signature,
at most 88 characters. Longer is refused (`bad signature`) before base58 decoding, whose time
grows with the square of the text: one proofValue filling MAX_VC_BYTES took seconds (review 61a,
credentials 6), as a did:key Multikey is bounded (MAX_ED25519_MULTIKEY_CHARS)."""
