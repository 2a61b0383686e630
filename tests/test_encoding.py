"""Canonical CBOR: what encodes, what decodes, and that nothing but DecodeError escapes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem

SCALARS = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=64)
    | st.text(max_size=32)
    | st.booleans()
    | st.none()
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.integers(-100, 100) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


@given(VALUES)
def test_round_trip(value: Any) -> None:
    data = cbor.encode(value)
    assert cbor.decode(data) == value
    assert cbor.encode(cbor.decode(data)) == data


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        cbor.decode(data)


def test_map_keys_in_length_first_order() -> None:
    # RFC 8949 §4.2.3: shorter encoded keys first, then bytewise
    assert cbor.encode({"bb": 1, "a": 2, 10: 3, 1: 4}).hex() == "a401040a0361610262626201"


@pytest.mark.parametrize(
    ("hex_input", "problem"),
    [
        ("0102", DecodeProblem.TRAILING_BYTES),
        ("1801", DecodeProblem.NON_CANONICAL),  # 1 encoded in two bytes
        ("a2616101616102", DecodeProblem.MALFORMED),  # duplicate map key
        ("a2616201616101", DecodeProblem.NON_CANONICAL),  # keys out of order
        ("9f01ff", DecodeProblem.MALFORMED),  # indefinite-length array
        ("c11a514b67b0", DecodeProblem.MALFORMED),  # tag 1 (epoch date)
        ("d9d9f700", DecodeProblem.NON_CANONICAL),  # self-described CBOR tag (cbor2 drops it)
        ("f97e00", DecodeProblem.MALFORMED),  # half-precision float
        ("f7", DecodeProblem.MALFORMED),  # undefined
        ("f0", DecodeProblem.MALFORMED),  # simple value 16
        ("c249010000000000000000", DecodeProblem.MALFORMED),  # bignum (a tag)
        ("5bffffffffffffffff00", DecodeProblem.MALFORMED),  # length claim past the end
        ("", DecodeProblem.MALFORMED),
    ],
)
def test_rejections(hex_input: str, problem: DecodeProblem) -> None:
    with pytest.raises(DecodeError) as caught:
        cbor.decode(bytes.fromhex(hex_input))
    assert caught.value.problem is problem


def test_size_limit() -> None:
    data = cbor.encode(b"x" * 100)
    with pytest.raises(DecodeError) as caught:
        cbor.decode(data, max_bytes=50)
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    assert cbor.decode(data, max_bytes=len(data)) == b"x" * 100


def test_depth_limit() -> None:
    nested: Any = 0
    for _ in range(limits.MAX_CBOR_DEPTH):
        nested = [nested]
    with pytest.raises(DecodeError) as caught:
        cbor.decode(cbor.encode(nested))
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    assert cbor.decode(cbor.encode(nested[0])) == nested[0]


def test_deep_input_beyond_cbor2_limit() -> None:
    with pytest.raises(DecodeError) as caught:
        cbor.decode(b"\x81" * 5000 + b"\x00")
    assert caught.value.problem is DecodeProblem.OVER_LIMIT


def test_item_limit() -> None:
    data = cbor.encode(list(range(100)))
    with pytest.raises(DecodeError) as caught:
        cbor.decode(data, max_items=100)
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    assert len(cbor.decode(data, max_items=101)) == 100


def test_integer_range() -> None:
    data = cbor.encode(2**64)  # cbor2 writes a bignum (tag 2): troth's formats never do
    with pytest.raises(DecodeError):
        cbor.decode(data)
    assert cbor.decode(cbor.encode(2**64 - 1)) == 2**64 - 1


def test_encode_refuses_unknown_types() -> None:
    with pytest.raises(DecodeError):
        cbor.encode(object())


def test_header_checks() -> None:
    cbor.expect_header(["t", 1], "t", 1, "doc")
    with pytest.raises(DecodeError) as caught:
        cbor.expect_header(["u", 1], "t", 1, "doc")
    assert caught.value.problem is DecodeProblem.UNKNOWN_TYPE
    for version in (2, True, "1"):
        with pytest.raises(DecodeError) as caught:
            cbor.expect_header(["t", version], "t", 1, "doc")
        assert caught.value.problem is DecodeProblem.UNKNOWN_VERSION
