"""The small-document fast path of the CBOR decoder accepts exactly what the strict scan accepts.

`cbor.decode` lets cbor2's C decoder materialise small documents and checks canonical form on
the value (`_decode_small`); everything it does not accept goes through the scan (`_scan`),
which names the reason. These properties compare the two strategies directly: a document one
of them accepts and the other refuses would be a check lost (or a valid document refused).
"""

from __future__ import annotations

import sys
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_encoding import VALUES, WIDE
from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError

DEPTHS = st.sampled_from([1, 2, 3, 4, limits.MAX_CBOR_DEPTH])


def scan_accepts(data: bytes, max_depth: int) -> bool:
    """Whether the scan-then-cbor2 path (the decoder without its fast path) accepts `data`."""
    try:
        cbor._scan(data, max_depth, sys.maxsize)
        cbor2.loads(data, allow_indefinite=False, allow_duplicate_keys=False)
    except DecodeError:
        return False
    except cbor2.CBORDecodeError:  # what the scan leaves to cbor2: UTF-8
        return False
    return True


def agree(data: bytes, max_depth: int = limits.MAX_CBOR_DEPTH) -> None:
    """The fast path accepts `data` iff the scan does, with the value cbor2 decodes."""
    value = cbor._decode_small(data, max_depth)
    accepted = value is not cbor._NOT_DECIDED
    assert accepted == scan_accepts(data, max_depth), data.hex()
    if accepted:
        assert value == cbor2.loads(data)
        assert cbor2.dumps(value, canonical=True) == data


@given(VALUES, DEPTHS)
def test_agree_on_canonical_documents(value: Any, max_depth: int) -> None:
    agree(cbor.encode(value), max_depth)


@given(WIDE, st.booleans(), DEPTHS)
def test_agree_on_everything_cbor2_writes(value: Any, canonical: bool, max_depth: int) -> None:
    try:
        data = cbor2.dumps(value, canonical=canonical)
    except (cbor2.CBOREncodeError, TypeError, ValueError):
        return
    agree(data, max_depth)


@given(VALUES, st.data())
def test_agree_on_mutated_documents(value: Any, data: Any) -> None:
    document = bytearray(cbor.encode(value))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(document)))
        action = data.draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
        byte = data.draw(st.integers(0, 255))
        if action == "replace" and position < len(document):
            document[position] = byte
        elif action == "insert":
            document.insert(position, byte)
        elif action == "delete" and position < len(document):
            del document[position]
        elif action == "cut":
            del document[position:]
    agree(bytes(document), data.draw(DEPTHS))


@given(st.binary(max_size=64))
def test_agree_on_arbitrary_bytes(data: bytes) -> None:
    agree(data)


@given(VALUES, st.binary(min_size=1, max_size=4))
def test_agree_with_trailing_bytes(value: Any, tail: bytes) -> None:
    agree(cbor.encode(value) + tail)


@pytest.mark.parametrize(
    "hex_input",
    [
        "1801",  # 1 with a one-byte argument
        "190001",  # 1 with a two-byte argument
        "3800",  # -1 with a one-byte argument
        "5800",  # empty byte string, long length
        "780161",  # "a", long length
        "9800",  # empty array, long length
        "9801" + "00",  # one-element array, long length
        "b800",  # empty map, long length
        "a2616101616102",  # duplicate key
        "a2616201616101",  # keys out of order
        "a2626161016162",  # longer key first: "aa" before "b"
        "a10102",  # integer key
        "a1410102",  # byte-string key
        "a1f401",  # false as a key
        "9f01ff",  # indefinite array
        "9f" + "00" * 24 + "ff",  # indefinite array as long as a definite one with a 2-byte head
        "bf616101ff",  # indefinite map
        "5f4100ff",  # indefinite byte string
        "7f6161ff",  # indefinite text
        "f97e00",  # half float
        "fa3fc00000",  # single float
        "fb3ff8000000000000",  # double
        "f7",  # undefined
        "f0",  # simple value 16
        "f814",  # false in the two-byte form
        "f820",  # simple value 32
        "0000",  # trailing byte
        "62c328",  # not UTF-8
        "63eda080",  # a UTF-16 surrogate in UTF-8 form
        "62c0af",  # overlong UTF-8 for "/"
        "",
    ],
)
def test_refusals_go_through_the_scan(hex_input: str) -> None:
    data = bytes.fromhex(hex_input)
    assert cbor._decode_small(data, limits.MAX_CBOR_DEPTH) is cbor._NOT_DECIDED
    with pytest.raises(DecodeError):
        cbor.decode(data)


def test_the_fast_path_is_on() -> None:
    # with the cbor2 this is tested on; each property above would pass vacuously if it were off
    assert cbor._FAST_PATH
    assert cbor._decode_small(cbor.encode([1, b"x", "y"]), 2) == [1, b"x", "y"]


def tagged(tag: int, content: bytes) -> bytes:
    """`content` under `tag`, the tag's argument in shortest form."""
    return cbor2.dumps(cbor2.CBORTag(tag, None))[:-1] + content


@pytest.mark.parametrize("content", ["00", "4100", "6161", "80", "a0", "8100", "f6", "c100"])
def test_every_tag_refused_before_its_content_is_used(content: str) -> None:
    # cbor2 has its own decoders for dozens of tags (dates, bignums, decimals, sets, shared
    # and string references, regular expressions...): none may run, whatever the number
    for tag in [*range(70_000), 2**32 - 1, 2**32, 2**63, 2**64 - 1]:
        data = tagged(tag, bytes.fromhex(content))
        assert cbor._decode_small(data, limits.MAX_CBOR_DEPTH) is cbor._NOT_DECIDED, tag


def test_string_references_cannot_pay_for_padding() -> None:
    # the attack on a size check: string references (tag 25, 3 bytes each) stand for a
    # 26-byte string, and integers in a longer form than needed make up the difference, so the
    # document is exactly as long as the canonical encoding of what cbor2 makes of it
    text = "a" * 24
    namespace = bytes.fromhex("d90100")  # tag 256
    string = bytes.fromhex("7818") + text.encode()
    reference = bytes.fromhex("d81900")  # tag 25: the namespace's first string
    padded_zero = bytes.fromhex("1b0000000000000000")  # 0 in 9 bytes instead of 1
    data = namespace + bytes([0x80 + 20]) + string + reference * 5 + padded_zero * 14
    value = cbor2.loads(data)
    assert value == [text] * 6 + [0] * 14
    assert len(data) == len(cbor2.dumps(value, canonical=True))
    agree(data)
    with pytest.raises(DecodeError, match="tags are not allowed"):
        cbor.decode(data)


def test_shared_references_refused() -> None:
    shared: list[Any] = [1]
    data = cbor2.dumps([shared, shared, shared], value_sharing=True)
    agree(data)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    agree(cbor2.dumps(cyclic, value_sharing=True))


@pytest.mark.parametrize("max_depth", [0, 1, 2, 3, limits.MAX_CBOR_DEPTH])
def test_depth_boundaries(max_depth: int) -> None:
    for levels in range(max_depth + 3):
        for innermost in ([], [0], {}, {"a": 0}, 0):
            nested: Any = innermost
            for _ in range(levels):
                nested = [nested]
            agree(cbor.encode(nested), max_depth)
            agree(cbor.encode({"k": nested}), max_depth)


def test_lengths_at_argument_boundaries() -> None:
    for size in (23, 24, 255, 256, 1000):
        agree(cbor.encode(b"x" * size))
        agree(cbor.encode("é" * size))
        agree(cbor.encode(list(range(size))))
        agree(cbor.encode({f"{i:04}": i for i in range(size)}))
    for number in (23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1):
        agree(cbor.encode(number))
        agree(cbor.encode(-number - 1))


def test_non_ascii_keys_in_utf8_length_order() -> None:
    # "é" is 1 character but 2 UTF-8 bytes (c3 a9): among the 2-byte keys it sorts last
    data = cbor.encode({"é": 1, "zz": 2, "z": 3, "ab": 4})
    assert list(cbor.decode(data)) == ["z", "ab", "zz", "é"]
    agree(data)
    swapped = cbor2.dumps({"z": 3, "é": 1, "zz": 2, "ab": 4})
    agree(swapped)
