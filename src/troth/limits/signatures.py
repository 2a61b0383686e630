"""The hard limits of the change signatures a verifier remembers having checked
(troth.identity.signatures).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_SEEN_SIGNATURES"]

MAX_SEEN_SIGNATURES: Final = 16_384
"""Most change signatures a `SeenSignatures` remembers as valid (each a 32-byte digest of the
key, the signature and the change body: ~2 MB held at most), the oldest forgotten first: 256
histories of MAX_IDENTITY_CHANGES changes, each change's own and previous-key signatures. One
not remembered is checked again (review 61b, identity 1)."""
