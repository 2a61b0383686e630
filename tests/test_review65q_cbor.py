"""Review 65q of review 65b's CBOR item limit: findings in `troth.encoding.cbor`.

cbor 1: the item limit (`MAX_CBOR_ENCODE_ITEMS`, review 65b, cbor 1) bounds the data items
`encode` writes, not their bytes. One string shared by many paths is written by cbor2 once per
path: a list holding one 1 MiB byte string 64 times (65 items) was written as 64 MiB, four
times what any decoder reads, and a million times (within the item limit) as 1 TiB: cbor2's
allocation failed and aborted the process (a Rust `memory allocation ... failed`, no
MemoryError; measured under a 2 GiB address-space limit), where `encode` promises a
DecodeError. `encode_counted` (service requests and answers) wrote it too, its count of
items within the limit. Now both refuse a value whose encoding is longer than
`limits.MAX_CBOR_ENCODE_BYTES` (16 MiB, the most any decoder reads, a control answer's): cbor2
writes into a bounded writer that refuses past it, in chunks of some KiB, so no more is held
(review 65y; before, each walk counted the strings' lengths, a quarter of the hot path).
"""

from __future__ import annotations

from typing import Any

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem


class _Text(str):
    """A string that says it is empty."""

    def __len__(self) -> int:
        return 0


class _Items(tuple[Any, ...]):
    """A sequence of no exact list type (the encoder's general path)."""


_MIB = b"x" * (1 << 20)


@pytest.mark.parametrize(
    "value",
    [
        [_MIB] * 17,
        _Items([_MIB] * 17),
        {"a": [_MIB.decode()] * 17},
        [{_MIB.decode(): 1}] * 17,
        [_Text(_MIB.decode())] * 17,
        [bytearray(_MIB)] * 17,
    ],
    ids=["bytes", "general-path", "text", "keys", "str-subclass", "bytearray"],
)
def test_cbor1_strings_shared_past_what_any_decoder_reads_are_refused(value: Any) -> None:
    """17 paths to one 1 MiB string: more than the 16 MiB any decoder reads, refused before it
    is written (it was written whole; a million paths aborted the process)."""
    with pytest.raises(DecodeError, match="longer than") as refused:
        cbor.encode(value)
    assert refused.value.problem is DecodeProblem.OVER_LIMIT


def test_cbor1_encode_counted_refuses_them_too() -> None:
    with pytest.raises(DecodeError, match="longer than"):
        cbor.encode_counted([1, [_MIB] * 17])


def test_cbor1_an_encoding_up_to_the_limit_is_written() -> None:
    """The limit is the most any decoder reads, a control answer of 16 MiB: an encoding of
    exactly that many bytes is still written, on every path; one byte more is refused."""
    assert limits.MAX_CBOR_ENCODE_BYTES == limits.MAX_CONTROL_ANSWER
    most = limits.MAX_CBOR_ENCODE_BYTES
    strings = [_MIB] * 15 + [b"y" * (most - 15 * (len(_MIB) + 5) - 1 - 5)]
    data = cbor.encode(strings)
    assert len(data) == most
    assert cbor.encode(_Items(strings)) == data
    assert cbor.encode_counted(strings)[0] == data
    strings[-1] += b"y"
    for value in (strings, _Items(strings)):
        with pytest.raises(DecodeError, match="longer than"):
            cbor.encode(value)
    with pytest.raises(DecodeError, match="longer than"):
        cbor.encode_counted(strings)
