"""What the TCP connections hold unsent: the bytes waiting in each one's event-loop write
buffer and its kernel send queue, and the node-wide budget on the write buffers together
(`TcpSettings.write_buffer_total`; docs/protocols.md, "TCP transport" and "Load limits").

Each write buffer is capped by `TcpSettings.write_buffer`, but a peer that never reads holds up
to that much until the write timeout drops it: at the connection cap, ~1 GiB for as long as
its peers ask for answers (review 48q, write budget 1). The budget counts what each
connection's buffer held after its last write (an overestimate: what the loop wrote since shows
at the next write, or when the budget is asked and counts again), so the connections that hold
unsent bytes are known without looking at every connection."""

from __future__ import annotations

import contextlib
import fcntl
import math
import struct
import termios
from typing import Final, Protocol

__all__ = ["BUDGET_RECOUNT", "STALL_PROGRESS", "Buffered", "WriteBudget", "unsent"]

BUDGET_RECOUNT: Final = 0.05
"""Seconds between two recounts of the holders' buffers while the budget is over (each costs
one look per connection holding unsent bytes)."""

STALL_PROGRESS: Final = 16
"""A peer whose write buffer is full takes at least `write_buffer / STALL_PROGRESS` bytes (64 KiB
at the defaults) in each `stall_timeout`, or it has stalled."""

_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)
"""The ioctl that tells the bytes a socket's kernel send queue holds (Linux): whether a peer
takes what was sent shows there first, before the event loop's write buffer shrinks."""


class _Socket(Protocol):
    def get_write_buffer_size(self) -> int: ...

    def get_extra_info(self, name: str) -> object: ...


def unsent(socket: _Socket | None) -> int:
    """Bytes sent to the peer that it has not taken yet: the event loop's write buffer and the
    kernel's send queue (0 for no socket)."""
    if socket is None:
        return 0
    size = socket.get_write_buffer_size()
    raw = socket.get_extra_info("socket")
    fileno = getattr(raw, "fileno", None)
    if _OUTQ is not None and fileno is not None:
        with contextlib.suppress(OSError, ValueError):
            size += struct.unpack("i", fcntl.ioctl(fileno(), _OUTQ, bytes(4)))[0]
    return size


class Buffered(Protocol):
    """A connection as the budget sees it."""

    def buffered(self) -> int:
        """The bytes its event-loop write buffer holds now."""
        ...


class WriteBudget:
    """The bytes the connections' write buffers hold together, against `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        """What the holders' buffers held when last counted (at least what they hold)."""
        self._held: dict[Buffered, int] = {}  # the connections holding unsent bytes
        self._recounted = -math.inf

    def count(self, holder: Buffered) -> int:
        """Count what `holder`'s buffer holds now (after a write, or as it drained)."""
        size = holder.buffered()
        before = self._held.pop(holder, 0)
        if size:
            self._held[holder] = size
        self.total += size - before
        return size

    def forget(self, holder: Buffered) -> None:
        """`holder` closed: its buffer is given back."""
        self.total -= self._held.pop(holder, 0)

    def over(self, now: float) -> bool:
        """Whether the buffers together hold more than the limit: counted again first (at most
        every `BUDGET_RECOUNT` s) when the last counts say so, as what drained since a holder's
        last write shows only then."""
        if self.total <= self.limit:
            return False
        if now - self._recounted >= BUDGET_RECOUNT:
            self._recounted = now
            for holder in list(self._held):
                self.count(holder)
        return self.total > self.limit
