"""Change signatures a verifier checked before (review 61b, identity 1): `verify_history(...,
seen=...)` checks a change's signature, or its previous-key signature, only when this very
key, signature and body are not remembered as valid, and remembers each one that verifies.

A long history shown again in other bytes (beside a new or a bad channel-key attestation, or
with one of its signatures corrupted: a change's hash covers its body only) then costs the
signatures new to it, not all of them again: 127 for 64 changes, ~34 ms of a core measured
here, at every handshake of a peer that needs no key for it (any public history will do).

Only a signature that verified is remembered, under the SHA-256 of its key (type and bytes),
its length, itself and the signed body: a remembered entry is exactly a check that passed, and
holds at any time (a signature's validity does not depend on it; the times of a change are
rules of their own, checked at every verification). Bounded (`limits.MAX_SEEN_SIGNATURES`),
oldest first out: anyone can make keys and signatures, so filling it costs only time, never a
verdict. Safe to share between threads.
"""

from __future__ import annotations

import threading

from troth import limits
from troth.crypto import PublicKey, sha256, verify_signature

__all__ = ["SeenSignatures"]


class SeenSignatures:
    """Signatures verified before (by key, signature and message), at most `max_entries`."""

    __slots__ = ("_lock", "_seen", "max_entries")

    def __init__(self, max_entries: int = limits.MAX_SEEN_SIGNATURES) -> None:
        self.max_entries = max_entries
        self._seen: dict[bytes, None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def verify(self, key: PublicKey, signature: bytes, message: bytes) -> None:
        """`troth.crypto.verify_signature` (CryptoError when it does not verify), skipped for a
        key, signature and message remembered as valid; one that verifies is remembered."""
        token = sha256(
            b"".join(
                (
                    bytes((int(key.key_type),)),
                    key.data,
                    len(signature).to_bytes(4, "big"),
                    signature,
                    message,
                )
            )
        )
        if token in self._seen:
            return
        verify_signature(key, signature, message)
        with self._lock:
            seen = self._seen
            while seen and len(seen) >= self.max_entries:
                del seen[next(iter(seen))]
            if self.max_entries > 0:
                seen[token] = None
