"""TCP framing (docs/formats.md, "Routed message and TCP frame"), sans-IO:

    version (1 byte, 0x01) || length (4 bytes, big-endian) || routed message

`FrameReader` turns received bytes into complete frames. A bad version or a length over
`limits.MAX_TRANSPORT_FRAME` raises DecodeError as soon as the 5-byte header is in, before
any of the body is buffered. Its buffer is bounded: it starts at `small` bytes, grows to hold
a large frame (exactly) or to `large` for a heavy stream (reads that fill all the space they
are given, so the kernel can hand over several frames at once), and `shrink()` gives it
back to `small` bytes (or to the partial frame it holds, when that is more: review 62f,
buffers 1); the host calls that, through `settle()`, when at most `small` bytes,
or less than half the buffer, came in since it last looked (the TCP sweep), so an idle or a
trickling connection holds a small buffer, never the largest it once needed, while a busy
stream is not slowed by reallocating per frame. Buffers are anonymous memory mappings: only
the pages bytes were written to are resident, and a dropped buffer goes back to the system at
once (docs/protocols.md, "Load limits"). With `max_cut`, one call cuts at most that many
frames and the rest wait in the buffer (`has_frame`, `more`): the TCP connection cuts a batch
a turn of its event loop, not a whole read of tiny frames at once (review 57c, transport 2).
"""

from __future__ import annotations

import mmap
import struct
from typing import Final

from troth import limits
from troth.errors import DecodeError, DecodeProblem

__all__ = ["FRAME_HEADER", "FRAME_VERSION", "FrameReader", "check_header", "frame"]

FRAME_VERSION: Final = 0x01
FRAME_HEADER: Final = struct.Struct(">BI")
SMALL_BUFFER: Final = 16 * 1024  # a connection's buffer while frames are small (zeroing 512 KiB
# per new connection would cost more than a whole handshake)
LARGE_BUFFER: Final = 4 * limits.MAX_TRANSPORT_FRAME  # the buffer while a stream is heavy


def _allocate(size: int) -> mmap.mmap:
    """A zeroed buffer of `size` bytes, an anonymous mapping: its pages cost memory only once
    bytes are written to them, and they go back to the system as soon as the buffer is
    dropped (a bytearray would be zeroed, all of it resident, at once, and freed into the
    allocator's heap, where fragmentation can keep it from the system for good)."""
    return mmap.mmap(-1, size)


def frame(body: bytes, max_frame: int | None = None) -> bytes:
    """One frame around `body` (DecodeError over `max_frame`, by default the frame limit)."""
    limit = limits.MAX_TRANSPORT_FRAME if max_frame is None else max_frame
    if len(body) > limit:
        raise DecodeError(
            f"frame of {len(body)} bytes over the limit of {limit}", DecodeProblem.OVER_LIMIT
        )
    return FRAME_HEADER.pack(FRAME_VERSION, len(body)) + body


def check_header(header: bytes | bytearray | memoryview, max_frame: int | None = None) -> int:
    """The body length announced by a frame header (DecodeError for a bad version or size)."""
    version, length = FRAME_HEADER.unpack(header)
    if version != FRAME_VERSION:
        raise DecodeError(f"unknown frame version {version}", DecodeProblem.UNKNOWN_VERSION)
    limit = limits.MAX_TRANSPORT_FRAME if max_frame is None else max_frame
    if length > limit:
        raise DecodeError(
            f"frame of {length} bytes over the limit of {limit}", DecodeProblem.OVER_LIMIT
        )
    return int(length)


class FrameReader:
    """Bytes in, complete frame bodies out (sans-IO; `now` is passed in).

    Two ways in: `feed(data, now)` copies `data`; `get_buffer()` + `advance(n, now)` let the
    caller (asyncio's BufferedProtocol, recv_into) write straight into the reader's buffer.
    Every frame body comes out as its own `bytes` (the one copy).

    A bad header raises DecodeError from the call that brings it in, unless complete frames
    came before it in the same call: those are returned first (so any split of a stream gives
    the same frames), `error` is set, and the next call raises it. After an error the reader
    refuses all input with that error (the stream has no frame boundaries left).
    """

    __slots__ = (
        "_buffer",
        "_end",
        "_heavy",
        "_offered",
        "_settled_at",
        "_start",
        "bytes_read",
        "error",
        "frames_read",
        "large",
        "max_cut",
        "max_frame",
        "partial_since",
        "small",
    )

    def __init__(
        self,
        *,
        max_frame: int = limits.MAX_TRANSPORT_FRAME,
        small: int = SMALL_BUFFER,
        large: int = LARGE_BUFFER,
        max_cut: int | None = None,
    ) -> None:
        if not FRAME_HEADER.size <= small <= large:
            raise ValueError("buffer sizes: header size <= small <= large")
        if max_cut is not None and max_cut < 1:
            raise ValueError("max_cut must be at least 1")
        self.max_frame = max_frame
        self.max_cut = max_cut
        """The most frames one `advance` or `more` returns (None: every complete one); the
        rest stay in the buffer for `more` (`has_frame` says whether one is there)."""
        self.small = small
        self.large = large
        self._buffer: bytearray | mmap.mmap = _allocate(small)
        self._start = 0  # first unread byte
        self._end = 0  # one past the last byte received
        self._offered = 0  # the free space the last get_buffer() gave out
        self._heavy = False  # the last read filled all of it: more is probably waiting
        self.error: DecodeError | None = None
        """The bad header that ended the stream (None while it is well-formed)."""
        self.partial_since: float | None = None
        """When the frame now being received started (None: no partial frame held)."""
        self.frames_read = 0
        """Complete frames cut so far."""
        self.bytes_read = 0
        """Bytes received so far."""
        self._settled_at = 0  # bytes_read at the last `settle()`

    @property
    def capacity(self) -> int:
        """The size of the buffer now."""
        return len(self._buffer)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet part of a complete frame."""
        return self._end - self._start

    def get_buffer(self) -> memoryview:
        """Free space to receive into (never empty); then call `advance` with the count."""
        if self.error is not None:
            raise self.error
        if self._end == len(self._buffer):  # full: move the unread bytes, grow for a stream
            self._move_unread(max(len(self._buffer), self.large))
        elif self._heavy and len(self._buffer) < self.large:  # reads fill what they are
            self._move_unread(self.large)  # given: a heavy stream, read it in large pieces
        self._offered = len(self._buffer) - self._end
        return memoryview(self._buffer)[self._end :]

    def advance(self, nbytes: int, now: float, *, offered: bool = True) -> list[bytes]:
        """`nbytes` were written at the start of the last `get_buffer()`: the frames they
        complete (DecodeError for a bad header; at most `max_cut` of them). `offered`: they
        came into the space given out (False: `more`, nothing came)."""
        if self.error is not None:
            raise self.error
        if not 0 <= nbytes <= len(self._buffer) - self._end:
            raise ValueError("advance past the buffer given out")
        if offered:
            self._heavy = nbytes == self._offered
        self._end += nbytes
        self.bytes_read += nbytes
        frames = self._cut()
        if self.error is not None:
            self._buffer = bytearray(0)  # nothing more will be read: release it
            self._start = self._end = 0
            self.partial_since = None
            if not frames:
                raise self.error
            return frames
        if self._start == self._end:
            self._start = self._end = 0
            self.partial_since = None
        elif frames or self.partial_since is None:
            self.partial_since = now  # a new frame started (the stall clock)
        return frames

    def has_frame(self) -> bool:
        """Whether a complete frame (or a bad header) waits in the buffer, left by `max_cut`:
        `more` takes it out."""
        if self.error is not None or self.buffered < FRAME_HEADER.size:
            return False
        version, length = FRAME_HEADER.unpack_from(self._buffer, self._start)
        if version != FRAME_VERSION or length > self.max_frame:
            return True
        return self.buffered >= FRAME_HEADER.size + int(length)

    def more(self, now: float) -> list[bytes]:
        """The next frames (at most `max_cut`) of what was received, left in the buffer by
        `max_cut` (DecodeError for a bad header, as `advance`)."""
        return self.advance(0, now, offered=False)

    def shrink(self) -> bool:
        """Give the buffer back to `small` bytes, or to what it holds when that is more (a
        partial frame), if that is less than it is now (True when it did). Before review 62f
        (buffers 1) a buffer holding more than `small` was kept whole: the start of a frame of
        a little over 16 KiB before each sweep kept a burst's 512 KiB."""
        size = max(self.small, self.buffered)
        if len(self._buffer) <= size or self.error:
            return False
        unread = memoryview(self._buffer)[self._start : self._end]
        self._buffer = _allocate(size)
        self._buffer[: len(unread)] = unread
        self._start, self._end = 0, len(unread)
        self._heavy = False
        return True

    def settle(self) -> bool:
        """The host's periodic look (the TCP sweep): `shrink()` when at most `small` bytes, or
        less than half the buffer, came in since the last call (True when it shrank). A quiet
        stream and a light one alike: a peer that sent one small frame before each sweep kept
        the buffer a burst had grown (review 49f, buffers 1), and one that sent just over
        `small` kept 512 KiB for 17 KiB a sweep (review 53g, buffers 1); a buffer is kept
        only by at least half of it since the last call, so it holds at most twice that."""
        came = self.bytes_read - self._settled_at
        self._settled_at = self.bytes_read
        return (came <= self.small or came < len(self._buffer) // 2) and self.shrink()

    def feed(self, data: bytes | bytearray | memoryview, now: float) -> list[bytes]:
        """Copy `data` in: the frames it completes, all of them whatever `max_cut` (DecodeError
        for a bad header)."""
        frames: list[bytes] = []
        view = memoryview(data)
        if self.error is not None:
            raise self.error
        while view and self.error is None:
            space = self.get_buffer()
            count = min(len(space), len(view))
            space[:count] = view[:count]
            try:
                frames += self.advance(count, now)
                while self.has_frame():  # every one, whatever `max_cut` (review 57o,
                    frames += self.more(now)  # transport 1)
            except DecodeError:
                if not frames:
                    raise
            view = view[count:]
        return frames  # any frames before a bad header; then `error` is set, the next call raises

    def _cut(self) -> list[bytes]:
        frames: list[bytes] = []
        buffer = self._buffer
        view = memoryview(buffer)
        header = FRAME_HEADER.size
        most = self.max_cut
        while self._end - self._start >= header and (most is None or len(frames) < most):
            version, length = FRAME_HEADER.unpack_from(buffer, self._start)
            if version != FRAME_VERSION or length > self.max_frame:
                try:
                    check_header(buffer[self._start : self._start + header], self.max_frame)
                except DecodeError as exc:
                    self.error = exc
                    break
            begin = self._start + header
            if self._end - begin < length:
                need = header + length
                if self._start + need > len(buffer):  # make room for the rest of this frame
                    self._move_unread(max(need, len(buffer)))
                break
            frames.append(bytes(view[begin : begin + length]))  # the one copy
            self._start = begin + length
        self.frames_read += len(frames)
        return frames

    def _move_unread(self, size: int) -> None:
        """Move the unread bytes to the front of the buffer, into a new one of `size` bytes
        when that is larger (the old buffer is never resized: views of it may be alive)."""
        unread = self._end - self._start
        source = memoryview(self._buffer)[self._start : self._end]
        if size > len(self._buffer):
            grown = _allocate(size)
            grown[:unread] = source
            self._buffer = grown
        else:
            memoryview(self._buffer)[:unread] = source  # overlapping: memoryview copies safely
        self._start, self._end = 0, unread
