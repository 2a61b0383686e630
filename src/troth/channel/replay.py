"""A sliding replay window over explicit 64-bit nonces (RFC 6479 style, as WireGuard does).

The window remembers the highest nonce accepted (`top`) and which of the `size` nonces at or
below it were seen. A nonce above `top` slides the window; one inside it is accepted once; one
below it is too old. Default size: 2048 messages (docs/protocols.md), so a link may reorder or
lose up to 2047 messages without the receiver refusing late ones.
"""

from __future__ import annotations

import enum

__all__ = ["ReplayWindow", "Verdict"]


class Verdict(enum.Enum):
    """What the window says of a nonce."""

    NEW = "new"
    DUPLICATE = "duplicate"  # inside the window, already seen: drop
    TOO_OLD = "too old"  # below the window: a replay the window cannot vouch for


class ReplayWindow:
    """The nonces accepted so far, as a top and a bitmap of the `size` nonces at or below it."""

    __slots__ = ("_bits", "_mask", "size", "top")

    def __init__(self, size: int = 2048) -> None:
        if size < 64:
            raise ValueError("a replay window holds at least 64 messages")
        self.size = size
        self.top = -1  # nothing seen yet
        self._bits = 0  # bit i set = nonce (top - i) seen
        self._mask = (1 << size) - 1

    def check(self, nonce: int) -> Verdict:
        """Classify without recording (call `accept` after the frame authenticates)."""
        if nonce > self.top:
            return Verdict.NEW
        offset = self.top - nonce
        if offset >= self.size:
            return Verdict.TOO_OLD
        return Verdict.DUPLICATE if self._bits >> offset & 1 else Verdict.NEW

    def accept(self, nonce: int) -> None:
        """Record `nonce` (its frame authenticated)."""
        if nonce > self.top:
            shift = nonce - self.top
            self._bits = (self._bits << shift | 1) & self._mask if shift < self.size else 1
            self.top = nonce
        else:
            self._bits |= 1 << (self.top - nonce)
