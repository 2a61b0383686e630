"""Review 57o, transport 1: `FrameReader.feed` under `max_cut` (review 57c, transport 2).

`feed(data, now)` copies `data` in and returns "the frames it completes", and the reader
promises that any split of a stream gives the same frames. With `max_cut` (the TCP
connection's `CUT_BATCH`) each `advance` inside `feed` cut at most that many, so `feed` of ten
one-byte frames returned 2 with a 16-KiB buffer, and 8 with a 16-byte one (each `get_buffer`
that found the buffer full cut nothing more but moved the rest): what came out depended on the
buffer's size and the split, and the rest waited for a `more` that `feed`'s callers (tools,
tests, the sans-IO users of the copying API) never make. Now `feed` returns every complete
frame, whatever `max_cut` (the bound is `advance`'s and `more`'s, for a caller that paces
itself: the TCP connection's read callback). Was a strict xfail.
"""

from __future__ import annotations

import pytest

from troth.transport import FrameReader, frame

BODIES = [bytes([n]) * n for n in range(10)]
STREAM = b"".join(frame(b) for b in BODIES)


@pytest.mark.parametrize("small", [16, 16 * 1024])
def test_feed_returns_every_frame_it_completes_whatever_max_cut(small: int) -> None:
    reader = FrameReader(max_cut=2, small=small, large=max(small, 64))
    assert reader.feed(STREAM, 0.0) == BODIES
    assert not reader.has_frame()
    assert reader.buffered == 0


def test_feed_in_any_split_gives_the_same_frames_under_max_cut() -> None:
    reader = FrameReader(max_cut=3)
    got: list[bytes] = []
    for part in STREAM[:60], STREAM[60:]:  # seven frames and a part, then the rest
        got += reader.feed(part, 0.0)
    assert got == BODIES
