"""Handshake claims verified before (docs/protocols.md, "Secure channel", "Claims verified
before"): what `verify_peer` derives from a peer's history and channel-key attestation bytes
alone, kept so that the next handshake presenting the same bytes pays no signature again.

A claim's history and attestation are signed once, when made, and shown unchanged at every
handshake until the peer rotates or attests a new channel key: verifying them again finds the
same signatures valid. What a result does not keep is judged again at every handshake, as
before: the stored copy (`ChannelTrust.known`), the feeds, the chains, the policy, and that the
attested key is the Noise static key the handshake proved.

Only what depends on the bytes and on time is in a result, and time only one way: a result is
used at a later `now` only while every time check it passed still holds at `now` (the history's
current key within its validity, the attestation not expired); a check that holds at a time
holds at any later one otherwise (created no later than `now` plus the skew). Anything else (an
earlier `now`, past its validity) is verified in full, with the same errors. A checkpointed
history is never kept (its first change is judged by the feeds held now).

Bounded (`limits.MAX_CACHED_CLAIMS` results, `limits.MAX_CACHED_CLAIM_BYTES` charged), oldest
first out: anyone can make identities and claims, so filling it costs only time, never a
verdict. Keyed by the bytes themselves: equal keys are equal claims.
"""

from __future__ import annotations

import threading
from typing import Final, NamedTuple

from troth import limits
from troth.identity import SeenSignatures, VerifiedIdentity, VerifiedPurposeKey

__all__ = ["CLAIM_CHANGE_BYTES", "ClaimCache"]

CLAIM_CHANGE_BYTES: Final = 1536
"""What one decoded change of a kept history holds beyond the claim's bytes (its objects and a
copy of its bytes; as `troth.credentials.verify.CACHED_CHANGE_BYTES`)."""


class _Verified(NamedTuple):
    identity: VerifiedIdentity
    key: VerifiedPurposeKey
    since: int  # the `now` it was verified at
    until: int  # the first `now` a time check it passed no longer holds at
    cost: int


class ClaimCache:
    """Claims (history, attestation bytes) verified before, with what they verified to; safe
    to share between threads."""

    __slots__ = ("_held", "_lock", "_results", "max_bytes", "max_results", "signatures")

    def __init__(
        self,
        max_results: int = limits.MAX_CACHED_CLAIMS,
        max_bytes: int = limits.MAX_CACHED_CLAIM_BYTES,
    ) -> None:
        self.max_results = max_results
        self.max_bytes = max_bytes
        self._results: dict[tuple[bytes, bytes], _Verified] = {}
        self._held = 0
        self._lock = threading.Lock()
        self.signatures = SeenSignatures()
        """The change signatures verified before: a history shown again in other bytes (a new
        or a bad attestation, one signature corrupted) costs only the signatures new to it
        (review 61b, identity 1)."""

    def __len__(self) -> int:
        return len(self._results)

    def get(
        self, history: bytes, attestation: bytes, now: int
    ) -> tuple[VerifiedIdentity, VerifiedPurposeKey] | None:
        """What the claim verified to, when it did before and every time check it passed then
        still holds at `now`; else None (verify it in full). Only `bytes` are keys (what a
        handshake decodes): any other buffer is verified in full."""
        if type(history) is not bytes or type(attestation) is not bytes:
            return None
        found = self._results.get((history, attestation))
        if found is None or not found.since <= now < found.until:
            return None
        return found.identity, found.key

    def put(
        self,
        history: bytes,
        attestation: bytes,
        identity: VerifiedIdentity,
        key: VerifiedPurposeKey,
        now: int,
    ) -> None:
        """Keep a claim that just verified at `now` (a checkpointed history is not kept)."""
        if identity.checkpoint is not None or type(history) is not bytes:
            return
        if type(attestation) is not bytes:
            return
        # the time checks that can stop holding later: the current key's validity
        # (`now <= valid_until`) and the attestation's (`now < expires_at`)
        until = min(identity.current.body.valid_until + 1, key.expires_at)
        cost = len(history) + len(attestation) + CLAIM_CHANGE_BYTES * len(identity.changes)
        if cost > self.max_bytes or until <= now:
            return
        entry = _Verified(identity, key, now, until, cost)
        with self._lock:
            results = self._results
            old = results.pop((history, attestation), None)
            if old is not None:
                self._held -= old.cost
            while results and (
                len(results) >= self.max_results or self._held + cost > self.max_bytes
            ):
                self._held -= results.pop(next(iter(results))).cost
            results[(history, attestation)] = entry
            self._held += cost
