"""When the TCP sweep gives a connection up (sans-IO: the time is passed in): a started frame
that stalls, no first frame, or no progress for the idle timeout (docs/protocols.md, "TCP
transport").

What counts as progress is the transport's choice (`TcpTransport.authenticated_idle`): for a
bare transport (tests, tools) any complete frame either way; at a node only authenticated
progress (`Connection.progressed`: a handshake step that verified the peer, a transport frame
of a channel that authenticated, a relay owner's frame sent back through the node to the
connection that is a channel's transport frame, `TcpTransport.relayed_progress` — not a
handshake message: review 50k, idle 1, where a relay owner's message 2 to a stranger's message
1 every 59 s kept the stranger's connection). Junk — a frame that does not decode, does not
authenticate, or reaches nothing, even one the node answers (a route error) — does not: review
50e, idle 1, where a junk frame every 59 s held a connection open for good and kept it from
being evicted as idle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from troth.transport.framing import FrameReader
from troth.transport.settings import TcpCounters, TcpSettings

__all__ = ["Liveness", "last_active"]


class _Live(Protocol):
    liveness: Liveness


def last_active(connection: _Live) -> float:
    """When the sweep last saw `connection` make progress (what eviction as idle compares)."""
    return connection.liveness.last_active


class _Owner(Protocol):
    settings: TcpSettings
    counters: TcpCounters


@dataclass(slots=True)
class Liveness:
    """A connection's clocks: when it opened and when the sweep last saw it make progress."""

    opened_at: float = 0.0
    last_active: float = 0.0
    """When the sweep last saw progress (loop time; what eviction as idle compares)."""
    seen: int = 0
    """The progress count the sweep saw last."""

    def opened(self, now: float) -> None:
        """The connection is made at `now`: both clocks start."""
        self.opened_at = self.last_active = now

    def overdue(
        self,
        now: float,
        progress: int,
        reader: FrameReader,
        reading_paused: bool,
        owner: _Owner,
    ) -> str | None:
        """The sweep at `now`, `progress` the connection's count of progress so far, `reader`
        its deframer: why to close it (counted in `owner.counters`), or None to keep it. The
        stalled-frame and first-frame clocks do not count while the node holds its reading
        (`reading_paused`: its own frames wait, or its source's, troth.transport.holds)."""
        settings, counters = owner.settings, owner.counters
        partial_since, frames_read = reader.partial_since, reader.frames_read
        if progress != self.seen:
            self.seen = progress
            self.last_active = now
        if (
            partial_since is not None
            and not reading_paused
            and now - partial_since > settings.frame_timeout
        ):
            counters.closed_stalled += 1
            return f"a frame stalled for {settings.frame_timeout} s"
        if (  # not while the node holds its reading (its source's hold: review 55k, transport 1)
            not frames_read
            and not reading_paused
            and now - self.opened_at > settings.first_frame_timeout
        ):
            counters.closed_first_frame += 1
            return f"no frame within {settings.first_frame_timeout} s"
        if now - self.last_active > settings.idle_timeout:
            counters.closed_idle += 1
            return f"idle for {settings.idle_timeout} s"
        return None
