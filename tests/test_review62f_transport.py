"""Review 62f, transport: the TCP transport and listener under hostile sources (issue #8).

Buffers 1: a connection's read buffer is given back at the sweep (`FrameReader.settle`) only
when what it holds fits the small buffer (`shrink` refused when more than `small_read_buffer`
bytes wait). A peer that sent one burst (its buffer grown to `large_read_buffer`, 512 KiB, its
pages written) and then, before each sweep, the start of a frame of a little over 16 KiB
(completed after the sweep, within `frame_timeout`, and the next one started) kept the whole
large buffer for as long as it went on: ~20 KiB a sweep interval (~8 KB/s) held 512 KiB, where
review 53g's bound says twice what came in a sweep interval. 64 connections from one address
held 32 MiB, the connection cap 512 MiB. A buffer holding more than the small one is now given
back to what it holds (the partial frame), not kept whole.
"""

from __future__ import annotations

from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, LARGE_BUFFER, FrameReader, frame

PARTIAL = 17 * 1024  # what waits in the buffer at each sweep: just over the small buffer
BODY = 20 * 1024  # the frame it belongs to (completed after the sweep)


def test_a_partial_frame_just_over_the_small_buffer_does_not_keep_a_large_one() -> None:
    reader = FrameReader()
    assert len(reader.feed(frame(bytes(120_000)) * 5, 0.0)) == 5  # a burst: grown to large
    assert reader.capacity == LARGE_BUFFER
    reader.settle()
    rest = b""
    for sweep in range(1, 5):  # before each sweep: the last frame's rest, the next one's start
        sent = rest + FRAME_HEADER.pack(FRAME_VERSION, BODY) + bytes(PARTIAL)
        assert reader.feed(sent, float(sweep)) == ([bytes(BODY)] if rest else [])
        rest = bytes(BODY - PARTIAL)
        reader.settle()
        assert reader.buffered > reader.small
        assert reader.capacity <= 2 * len(sent)  # at most twice what came in a sweep interval
