"""The sans-IO TCP deframer: frames out of any split of the stream, DecodeError on a bad header
as soon as it is in, never another exception; buffers that shrink back; the stall clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from troth import limits
from troth.errors import DecodeError, DecodeProblem
from troth.transport import FrameReader, frame
from troth.transport.framing import FRAME_HEADER

MAX = 64  # a small frame limit, so that generated headers often pass and often fail it


def header(length: int, version: int = 1) -> bytes:
    return FRAME_HEADER.pack(version, length)


def read_all(reader: FrameReader, chunks: list[bytes]) -> tuple[list[bytes], str | None]:
    """Frames until the first DecodeError (its message), feeding chunk by chunk."""
    frames: list[bytes] = []
    for chunk in chunks:
        try:
            frames += reader.feed(chunk, 0.0)
        except DecodeError as exc:
            return frames, str(exc)
    return frames, None if reader.error is None else str(reader.error)


def read_into(reader: FrameReader, data: bytes, sizes: list[int]) -> tuple[list[bytes], str | None]:
    """The same through get_buffer/advance (recv_into), `sizes` bytes at a time (cycled)."""
    frames: list[bytes] = []
    at, turn = 0, 0
    while at < len(data):
        try:
            space = reader.get_buffer()
            count = min(len(space), len(data) - at, sizes[turn % len(sizes)])
            space[:count] = data[at : at + count]
            frames += reader.advance(count, 0.0)
        except DecodeError as exc:
            return frames, str(exc)
        at, turn = at + count, turn + 1
    return frames, None if reader.error is None else str(reader.error)


def stream_parts() -> st.SearchStrategy[list[bytes]]:
    """Streams that look like frames often: good frames, bad versions, long lengths, junk."""
    good = st.binary(max_size=MAX).map(lambda body: header(len(body)) + body)
    bad_version = st.integers(0, 255).map(lambda v: header(1, v) + b"x")
    too_long = st.integers(MAX + 1, 2**32 - 1).map(header)
    return st.lists(st.one_of(good, good, bad_version, too_long, st.binary(max_size=8)))


@settings(max_examples=400)
@given(stream_parts(), st.lists(st.integers(0, 300), max_size=20), st.data())
def test_any_split_gives_the_same_frames_or_the_same_error(
    parts: list[bytes], cuts: list[int], data: st.DataObject
) -> None:
    stream = b"".join(parts)
    expected = read_all(FrameReader(max_frame=MAX, small=8, large=32), [stream])
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert read_all(FrameReader(max_frame=MAX, small=8, large=32), chunks) == expected
    one_by_one = [stream[i : i + 1] for i in range(len(stream))]
    assert read_all(FrameReader(max_frame=MAX, small=8, large=32), one_by_one) == expected
    sizes = data.draw(st.lists(st.integers(1, 100), min_size=1, max_size=5))
    assert read_into(FrameReader(max_frame=MAX, small=8, large=32), stream, sizes) == expected


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_decode_error(stream: bytes) -> None:
    reader = FrameReader()
    for at in range(0, len(stream), 7):
        try:
            reader.feed(stream[at : at + 7], 0.0)
        except DecodeError:
            return


def test_a_bad_header_fails_as_soon_as_it_is_in() -> None:
    reader = FrameReader()
    assert reader.feed(header(limits.MAX_TRANSPORT_FRAME + 1)[:4], 0.0) == []
    with pytest.raises(DecodeError) as caught:
        reader.feed(b"\x01", 0.0)  # the fifth byte: the body never had to arrive
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    with pytest.raises(DecodeError) as again:  # the stream has no boundaries left
        reader.feed(b"more", 0.0)
    assert again.value is caught.value
    with pytest.raises(DecodeError) as caught:
        FrameReader().feed(header(3, version=2), 0.0)
    assert caught.value.problem is DecodeProblem.UNKNOWN_VERSION


def test_frames_before_a_bad_header_come_out_first() -> None:
    reader = FrameReader()
    assert reader.feed(frame(b"good") + header(1, version=9), 0.0) == [b"good"]
    assert reader.error is not None
    assert reader.error.problem is DecodeProblem.UNKNOWN_VERSION
    with pytest.raises(DecodeError) as caught:
        reader.get_buffer()
    assert caught.value is reader.error


def test_frames_come_out_whole_and_in_order() -> None:
    reader = FrameReader()
    stream = frame(b"one") + frame(b"") + frame(b"three")
    assert reader.feed(stream[:6], 0.0) == []
    assert reader.feed(stream[6:], 0.0) == [b"one", b"", b"three"]
    assert reader.frames_read == 3
    assert reader.buffered == 0


def test_the_buffer_grows_for_a_large_frame_and_is_given_back() -> None:
    reader = FrameReader()
    small = reader.capacity
    body = bytes(100_000)
    assert reader.feed(frame(body)[:50_000], 0.0) == []
    assert reader.capacity >= 50_000  # room for the whole frame was made
    assert reader.feed(frame(body)[50_000:], 0.0) == [body]
    assert reader.shrink()  # the host calls this once the connection is quiet
    assert reader.capacity == small
    heavy = frame(bytes(60_000)) * 20
    for at in range(0, len(heavy), 65_536):
        reader.feed(heavy[at : at + 65_536], 0.0)
    assert reader.capacity > small  # a heavy stream keeps its larger buffer meanwhile
    reader.feed(frame(b"abc")[:3], 0.0)
    assert reader.shrink()  # a partial frame that fits moves along
    assert reader.capacity == small
    assert reader.feed(frame(b"abc")[3:], 0.0) == [b"abc"]
    assert not reader.shrink()  # already small


def test_the_stall_clock_starts_with_each_frame() -> None:
    reader = FrameReader()
    assert reader.partial_since is None
    reader.feed(frame(b"abc")[:4], 10.0)
    assert reader.partial_since == 10.0
    reader.feed(b"\x03ab", 11.0)  # the same frame goes on: its clock does not restart
    assert reader.partial_since == 10.0
    reader.feed(b"c" + frame(b"xy")[:2], 12.0)  # one frame done, the next one started
    assert reader.partial_since == 12.0
    reader.feed(frame(b"xy")[2:], 13.0)
    assert reader.partial_since is None


def test_advance_cannot_pass_the_buffer_given_out() -> None:
    reader = FrameReader()
    space = reader.get_buffer()
    with pytest.raises(ValueError, match="past the buffer"):
        reader.advance(len(space) + 1, 0.0)
    with pytest.raises(ValueError, match="small <= large"):
        FrameReader(small=64, large=32)
