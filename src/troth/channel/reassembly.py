"""Reassembly of fragmented channel messages (docs/protocols.md, "Secure channel"), sans-IO.

Fragments reach the reassembler only after they authenticated, so every violation here is the
peer's own (a ChannelError that closes the channel). Memory is bounded three ways:

- per message: its declared total is at most `max_message` bytes;
- per channel: at most `max_messages` messages at once, holding at most `max_message` +
  one frame of decrypted bytes together. A fragment that would pass either bound (or the
  peer's budget, below) first makes room by giving up the channel's other incomplete
  messages, oldest first: a channel's fragments leave in order, a message's together, so an
  older message still incomplete lost its tail on the way (a first hop that refused a packet
  drops it and the ones after it: troth.node.channel_ends, `flush`), and its sender, told, may
  send it again. Only a fragment that passes a bound with nothing else held closes the channel
  (review 49f, reassembly 1: the sender's next large message closed it, TOO_LARGE);
- per peer: a `ReassemblyBudget` shared by all channels with that peer (the node gives each
  member one, its delegates' channels included: troth.node.channels), so many channels cannot
  multiply the per-channel bound;
- per node: each peer's budget draws on the node's (its `parent`), so many identities
  cannot multiply the per-peer bound either.

A chunk is kept as a view of its decrypted frame and the whole frame counts against the limits
(padding or trailing bytes cannot make a small chunk pin more than it is charged for); every
fragment but the last carries at least MIN_FRAGMENT bytes, and each is charged at least
MIN_CHARGE (32 KiB), so its bookkeeping adds at most 1/25 to its charge (review 58i, reassembly
1). An incomplete message is given up
`timeout` seconds after its first fragment, by `expire(now)`: the host calls it from a timer,
so memory is released even when no other fragment ever arrives.

In place: the channel decrypts a nearly full frame (at least IN_PLACE_FROM bytes) into a
bytearray with IN_PLACE_ROOM bytes of room allocated after it. A message whose first fragment
came in one, with no padding after its chunk, and whose other fragments fit in that room (a
64 KiB message behind its routed header: one full fragment and a small one) is completed by
appending them to that bytearray and cutting the fragment header off its front, instead of
copying every chunk into a new message: one copy of the message fewer. The room is not charged
(the limits count frames, and two frames is the least budget a fragmented message may need:
review 30): it is at most 1/60 of the frame it follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from troth import limits
from troth.channel.payloads import FRAGMENT, HEADER
from troth.errors import ChannelError, ChannelFailure

__all__ = [
    "IN_PLACE_FROM",
    "IN_PLACE_ROOM",
    "MIN_CHARGE",
    "MIN_FRAGMENT",
    "REASSEMBLY_TIMEOUT",
    "Reassembler",
    "ReassemblyBudget",
]

MIN_FRAGMENT: Final = 4096  # every fragment but the last carries at least this much
MIN_CHARGE: Final = 32 * 1024
"""What a fragment is charged at least: its decrypted frame, or this for a smaller one, whose
bookkeeping (a view of its chunk, its place in its message's table: ~0.4 KiB; a message's own
record ~0.4 KiB more) is not small beside it. Charged its frame alone, a peer's 4 KiB fragments
held 1.10 times their charge, and sixteen 1-byte last fragments 12.7 KB on a channel for 352
bytes (review 58i, reassembly 1). An honest sender's every fragment but a message's last fills a
frame (~60 KiB at any padding), and that last one, held only when it comes first, fits in what
the channel's bound leaves beside its message."""
IN_PLACE_FROM: Final = 60 * 1024  # frames decrypted with room after them (module docstring)
IN_PLACE_ROOM: Final = 1024  # the room: what the rest of a message may take to be put in place
_FRAGMENT_START: Final = HEADER.size + FRAGMENT.size  # where a fragment's chunk starts
REASSEMBLY_TIMEOUT: Final = 60  # seconds an incomplete message is kept (default)
_F = ChannelFailure


class ReassemblyBudget:
    """Bytes that the reassemblies of one peer's channels may hold together; with a `parent`
    (the node's budget for all peers), what is taken here is taken there too."""

    __slots__ = ("held", "limit", "parent")

    def __init__(self, limit: int, parent: ReassemblyBudget | None = None) -> None:
        self.limit = limit
        self.parent = parent
        self.held = 0

    def take(self, size: int) -> bool:
        """Reserve `size` bytes (False when that would pass this limit or the parent's)."""
        if self.held + size > self.limit:
            return False
        if self.parent is not None and not self.parent.take(size):
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        """Release `size` bytes."""
        self.held -= size
        if self.parent is not None:
            self.parent.give(size)


@dataclass(slots=True)
class _Message:
    total: int
    started: int
    chunks: dict[int, memoryview] = field(default_factory=dict)
    got: int = 0  # message bytes received
    held: int = 0  # decrypted-frame bytes kept alive for them


class Reassembler:
    """The fragmented messages of one channel, being put back together."""

    __slots__ = (
        "_deadline",
        "_messages",
        "budget",
        "given_up",
        "held",
        "max_message",
        "max_messages",
        "timeout",
    )

    def __init__(
        self,
        *,
        max_message: int,
        timeout: int = REASSEMBLY_TIMEOUT,
        max_messages: int = limits.MAX_REASSEMBLIES,
        budget: ReassemblyBudget | None = None,
    ) -> None:
        self.max_message = max_message
        self.timeout = timeout
        self.max_messages = max_messages
        self.budget = budget
        """The peer's budget, shared with its other channels (None: this channel's bound)."""
        self.held = 0
        """Decrypted bytes held by incomplete messages now."""
        self.given_up = 0
        """Incomplete messages given up for a later one (their tails lost on the way)."""
        self._messages: dict[int, _Message] = {}  # by message id
        self._deadline: int | None = None  # when the oldest message expires

    @property
    def pending(self) -> int:
        """Incomplete messages now."""
        return len(self._messages)

    def add(self, body: memoryview, now: int) -> bytes | memoryview | None:
        """Take one fragment (`body` = fragment header || chunk, a view of its decrypted
        frame): the whole message when this completes it (ChannelError for a violation)."""
        if len(body) < FRAGMENT.size:
            raise ChannelError(_F.PROTOCOL, "short fragment")
        message_id, total, offset = FRAGMENT.unpack_from(body)
        chunk = body[FRAGMENT.size :]
        size = len(chunk)
        if total > self.max_message or offset + size > total or not size:
            raise ChannelError(_F.TOO_LARGE, f"fragment of a {total}-byte message")
        if size < MIN_FRAGMENT and offset + size != total:
            raise ChannelError(_F.PROTOCOL, f"a {size}-byte fragment that is not the last")
        entry = self._messages.get(message_id)
        if entry is not None and (entry.total != total or offset in entry.chunks):
            raise ChannelError(_F.PROTOCOL, "inconsistent fragments")
        # the whole decrypted frame stays alive, and its bookkeeping (MIN_CHARGE)
        held = max(len(body.obj), MIN_CHARGE)  # type: ignore[arg-type]
        new = 1 if entry is None else 0
        while (  # past a bound: the channel's older messages go first (module docstring)
            len(self._messages) + new > self.max_messages
            or self.held + held > self.max_message + limits.MAX_CHANNEL_FRAME
        ) and self._give_up_oldest(message_id):
            pass
        if len(self._messages) + new > self.max_messages:  # (the bound is at least 1: never)
            raise ChannelError(_F.PROTOCOL, "too many messages in reassembly")
        if self.held + held > self.max_message + limits.MAX_CHANNEL_FRAME:
            raise ChannelError(_F.TOO_LARGE, "reassembly over the message limit")
        budget = self.budget
        while budget is not None and not budget.take(held):
            if not self._give_up_oldest(message_id):
                raise ChannelError(_F.TOO_LARGE, "reassembly over the peer's or the node's limit")
        if entry is None:
            entry = self._messages[message_id] = _Message(total, now)
            if self._deadline is None:
                self._deadline = now + self.timeout
        entry.chunks[offset] = chunk
        entry.got += size
        entry.held += held
        self.held += held
        if entry.got < total:
            return None
        self._release(message_id)
        offsets = sorted(entry.chunks)
        at = 0
        for o in offsets:  # the chunks tile the message (got == total: none overlaps)
            if o != at:
                raise ChannelError(_F.PROTOCOL, "fragments overlap")
            at += len(entry.chunks[o])
        return _in_place(entry.chunks, offsets, total) or b"".join(entry.chunks[o] for o in offsets)

    def next_expiry(self) -> int | None:
        """When the oldest incomplete message will be given up (None: nothing held)."""
        return self._deadline

    def expire(self, now: int) -> int:
        """Give up the messages older than the timeout; the bytes released."""
        if self._deadline is None or now < self._deadline:
            return 0
        released = 0
        for message_id, entry in list(self._messages.items()):
            if now - entry.started >= self.timeout:
                released += entry.held
                self._release(message_id)
        return released

    def clear(self) -> None:
        """Give up every incomplete message (the channel closed)."""
        for message_id in list(self._messages):
            self._release(message_id)

    def _give_up_oldest(self, keep: int) -> bool:
        """Give up the oldest incomplete message but `keep` (False when there is none)."""
        oldest = next((m for m in self._messages if m != keep), None)
        if oldest is None:
            return False
        self.given_up += 1
        self._release(oldest)
        return True

    def _release(self, message_id: int) -> None:
        entry = self._messages.pop(message_id)
        self.held -= entry.held
        if self.budget is not None:
            self.budget.give(entry.held)
        messages = self._messages.values()
        self._deadline = min(e.started for e in messages) + self.timeout if messages else None


def _in_place(chunks: dict[int, memoryview], offsets: list[int], total: int) -> memoryview | None:
    """The message completed in its first fragment's frame (module docstring, "In place"), or
    None when that frame is not one to complete in place (the chunks are then unchanged)."""
    first = chunks[0]
    frame = first.obj
    if (
        type(frame) is not bytearray
        or len(frame) != _FRAGMENT_START + len(first)  # padding after the chunk
        or total - len(first) > IN_PLACE_ROOM
    ):
        return None
    rest = [chunks[o] for o in offsets[1:]]
    if not rest:  # one fragment, the whole message (no honest sender's: `send` fragments only
        # what a frame cannot hold): copied, as its frame may still be viewed (the one being
        # read) and cannot then lose its header in place (BufferError, review 47q, in place 1)
        return None
    try:
        first.release()  # the frame's only view left (the channel keeps none): it may grow now
        for chunk in rest:
            frame += chunk  # within the room allocated: what it holds is not moved
    except BufferError:  # (another view of it is alive: not resized, nothing appended)
        chunks[0] = memoryview(frame)[_FRAGMENT_START:]  # the chunk again, for the copy
        return None
    del frame[:_FRAGMENT_START]  # (moves its start: no copy)
    return memoryview(frame)
