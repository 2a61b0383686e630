"""Canonical CBOR: what encodes, what decodes, and that nothing but DecodeError escapes."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import json
import tracemalloc
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from troth import limits
from troth.encoding import cbor
from troth.encoding.ijson import MAX_SAFE_INTEGER, load_json
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
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=30), children, max_size=6)
    ),
    max_leaves=40,
)
# Everything cbor2 can write, most of it outside troth's subset: floats, big integers, sets,
# tags, undefined, integer / byte-string / tuple map keys.
WIDE = st.recursive(
    SCALARS
    | st.integers()
    | st.floats()
    | st.just(cbor2.undefined)
    | st.builds(cbor2.CBORTag, st.integers(0, 2**16), st.text(max_size=4))
    | st.builds(cbor2.CBORSimpleValue, st.sampled_from([0, 16, 19, 32, 255])),
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.frozensets(st.integers(0, 9), max_size=3)
        | st.dictionaries(
            st.text(max_size=30) | st.integers(-30, 30) | st.binary(max_size=3),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


def decode_like_cbor2(data: bytes) -> None:
    """The decoder either returns what cbor2 returns, re-encoding to the same bytes, or raises
    DecodeError — never another exception."""
    try:
        value = cbor.decode(data)
    except DecodeError:
        return
    assert value == cbor2.loads(data)
    assert cbor.encode(value) == data


@given(VALUES)
def test_round_trip(value: Any) -> None:
    data = cbor.encode(value)
    assert cbor.decode(data) == value
    assert cbor.encode(cbor.decode(data)) == data


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_like_cbor2_or_raise_decode_error(data: bytes) -> None:
    decode_like_cbor2(data)


@given(WIDE, st.booleans())
def test_cbor2_documents_decode_like_cbor2_or_raise_decode_error(
    value: Any, canonical: bool
) -> None:
    with contextlib.suppress(cbor2.CBOREncodeError, TypeError, ValueError):
        decode_like_cbor2(cbor2.dumps(value, canonical=canonical))


@given(VALUES, st.data())
def test_mutated_documents_decode_like_cbor2_or_raise_decode_error(value: Any, data: Any) -> None:
    document = bytearray(cbor.encode(value))
    position = data.draw(st.integers(0, len(document) - 1))
    document[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(document) + 2))
    decode_like_cbor2(bytes(document[:cut]) + b"\x00" * max(0, cut - len(document)))


@given(WIDE)
def test_encode_refuses_what_decode_refuses(value: Any) -> None:
    try:
        data = cbor.encode(value)
    except DecodeError:
        return
    assert cbor.encode(cbor.decode(data, max_items=10**6, max_depth=10**3)) == data


def test_map_keys_in_bytewise_order_of_their_encodings() -> None:
    # RFC 8949 §4.2.1: keys sorted by their encoded bytes. An encoded text key starts with its
    # length, so this is also §4.2.3 length-first order: "z" (61 7a) before 24 x "b" (78 18 ...)
    # although "b..." < "z" as text.
    long_key = "b" * 24
    data = cbor.encode({long_key: 1, "z": 2, "aa": 3})
    assert data.hex() == "a3617a0262616103" + "7818" + long_key.encode().hex() + "01"
    assert list(cbor.decode(data)) == ["z", "aa", long_key]


@pytest.mark.parametrize(
    ("hex_input", "problem"),
    [
        ("0102", DecodeProblem.TRAILING_BYTES),
        ("1801", DecodeProblem.NON_CANONICAL),  # 1 encoded in two bytes
        ("590001" + "00", DecodeProblem.NON_CANONICAL),  # a 1-byte string with a 2-byte length
        ("a2616101616102", DecodeProblem.MALFORMED),  # duplicate map key
        ("a2616201616101", DecodeProblem.NON_CANONICAL),  # keys out of order
        ("a10102", DecodeProblem.MALFORMED),  # integer map key: no troth format has one
        ("a1410102", DecodeProblem.MALFORMED),  # byte-string map key
        ("9f01ff", DecodeProblem.MALFORMED),  # indefinite-length array
        ("7f6161ff", DecodeProblem.MALFORMED),  # indefinite-length text
        ("c11a514b67b0", DecodeProblem.MALFORMED),  # tag 1 (epoch date)
        ("d9d9f700", DecodeProblem.MALFORMED),  # self-described CBOR tag
        ("f97e00", DecodeProblem.MALFORMED),  # half-precision float
        ("f90000", DecodeProblem.MALFORMED),  # half-precision 0.0 (not "non-shortest")
        ("fb3ff8000000000000", DecodeProblem.MALFORMED),  # double 1.5
        ("f7", DecodeProblem.MALFORMED),  # undefined
        ("f0", DecodeProblem.MALFORMED),  # simple value 16
        ("f820", DecodeProblem.MALFORMED),  # simple value 32
        ("1c", DecodeProblem.MALFORMED),  # reserved additional information
        ("c249010000000000000000", DecodeProblem.MALFORMED),  # bignum (a tag)
        ("5bffffffffffffffff00", DecodeProblem.MALFORMED),  # length claim past the end
        ("6261", DecodeProblem.MALFORMED),  # text shorter than its length
        ("8201", DecodeProblem.MALFORMED),  # array with a missing element
        ("1a0001", DecodeProblem.MALFORMED),  # argument cut short
        ("62c328", DecodeProblem.MALFORMED),  # text that is not UTF-8
        ("", DecodeProblem.MALFORMED),
    ],
)
def test_rejections(hex_input: str, problem: DecodeProblem) -> None:
    with pytest.raises(DecodeError) as caught:
        cbor.decode(bytes.fromhex(hex_input))
    assert caught.value.problem is problem


@pytest.mark.parametrize(
    "hex_input",
    ["1bffffffffffffffff", "3bffffffffffffffff", "a0", "80", "f4", "f5", "f6", "60", "40"],
)
def test_edges_accepted(hex_input: str) -> None:
    assert cbor.encode(cbor.decode(bytes.fromhex(hex_input))).hex() == hex_input


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
    keyed = cbor.encode({str(i): i for i in range(50)})  # a map entry is two items
    with pytest.raises(DecodeError) as raised:
        cbor.decode(keyed, max_items=100)
    assert raised.value.problem is DecodeProblem.OVER_LIMIT
    assert len(cbor.decode(keyed, max_items=101)) == 50


def empty_arrays(size: int) -> bytes:
    """A document of `size` bytes: one array of `size - 5` empty arrays."""
    count = size - 5
    return b"\x9a" + count.to_bytes(4, "big") + b"\x80" * count


@pytest.mark.parametrize(
    ("size", "max_bytes", "max_items"),
    [
        # a 16 MiB allowance: cbor2 alone would build 16 million lists (over 1 GB)
        (16 * 1024 * 1024, 16 * 1024 * 1024, limits.MAX_CBOR_ITEMS),
        (limits.MAX_CBOR_BYTES, limits.MAX_CBOR_BYTES, limits.MAX_CBOR_ITEMS),  # the defaults
    ],
)
def test_bomb_of_empty_arrays_refused_without_allocating(
    size: int, max_bytes: int, max_items: int
) -> None:
    data = empty_arrays(size)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError) as caught:
            cbor.decode(data, max_bytes=max_bytes, max_items=max_items)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    assert peak < 5 * 1024 * 1024


def test_nested_bomb_refused_by_the_item_count() -> None:
    # within the declared counts of each array, but too many in total
    inner = b"\x99\x01\x00" + b"\x80" * 256  # 256 empty arrays
    data = b"\x99\x01\x00" + inner * 256
    with pytest.raises(DecodeError) as caught:
        cbor.decode(data)
    assert caught.value.problem is DecodeProblem.OVER_LIMIT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "float"),
        (float("nan"), "float"),
        (float("inf"), "float"),
        ({1, 2}, "set"),
        (frozenset(), "set"),
        (2**64, "bignum"),
        (-(2**64) - 1, "bignum"),
        (cbor2.undefined, "undefined"),
        (datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), "date"),
        (decimal.Decimal("1.5"), "decimal"),
        (cbor2.CBORTag(1234, 0), "tag 1234"),
        ({1: "a"}, "map keys must be text"),
        ({b"k": 1}, "map keys must be text"),
        ({True: 1}, "map keys must be text"),
        ([{"a": [0.5]}], "float"),
        (object(), "cannot encode"),
    ],
)
def test_encode_refuses_what_the_decoder_refuses(value: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        cbor.encode(value)


def test_integer_range() -> None:
    assert cbor.decode(cbor.encode(2**64 - 1)) == 2**64 - 1
    assert cbor.decode(cbor.encode(-(2**64))) == -(2**64)
    with pytest.raises(DecodeError) as raised:
        cbor.decode(cbor2.dumps(2**64))  # cbor2 writes a bignum (tag 2): troth's never do
    assert raised.value.problem is DecodeProblem.MALFORMED


def test_header_checks() -> None:
    cbor.expect_header(["t", 1], "t", 1, "doc")
    with pytest.raises(DecodeError) as caught:
        cbor.expect_header(["u", 1], "t", 1, "doc")
    assert caught.value.problem is DecodeProblem.UNKNOWN_TYPE
    for version in (2, True, "1"):
        with pytest.raises(DecodeError) as caught:
            cbor.expect_header(["t", version], "t", 1, "doc")
        assert caught.value.problem is DecodeProblem.UNKNOWN_VERSION


# -- I-JSON (RFC 7493): the JSON loader ---------------------------------------------------------

JSON_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20).filter(
    lambda t: not any(0xFDD0 <= ord(c) <= 0xFDEF or ord(c) & 0xFFFE == 0xFFFE for c in t)
)
JSON_SCALARS = (
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | JSON_TEXT
    | st.booleans()
    | st.none()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(JSON_TEXT, children, max_size=5)
    ),
    max_leaves=30,
)


def load(text: str | bytes, max_bytes: int = 4096) -> Any:
    return load_json(text.encode() if isinstance(text, str) else text, max_bytes=max_bytes)


@given(JSON_VALUES)
def test_ijson_round_trip(value: Any) -> None:
    assert load(json.dumps(value), max_bytes=1 << 20) == value


@given(st.binary(max_size=200))
def test_ijson_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        load(data)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"issuer": "a", "issuer": "b"}', "duplicate member name 'issuer'"),  # §2.3
        ('[{"a": {"x": 1, "y": 2, "x": 3}}]', "duplicate member name 'x'"),  # nested
        ('"\\ud800"', "U+D800"),  # lone high surrogate (§2.1)
        ('"a\\udfffb"', "U+DFFF"),  # lone low surrogate
        ('{"\\ud83d": 1}', "U+D83D"),  # in a member name
        ('"\\ufdd0"', "U+FDD0"),  # noncharacter
        ('["\\uffff"]', "U+FFFF"),
        ("NaN", "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("1e400", "beyond an IEEE 754 double"),
        ("9007199254740992", "outside"),  # 2**53
        ("-9007199254740992", "outside"),
        ("1" * 5000, "outside"),  # refused before int() parses 5,000 digits
        ("[" * 33 + "]" * 33, "nested deeper than 32"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 32"),  # past the C recursion limit
        ('{"a": 1} x', "not JSON"),
        ("", "not JSON"),
    ],
)
def test_ijson_rejections(text: str, detail: str) -> None:
    with pytest.raises(DecodeError) as caught:
        load(text, max_bytes=1 << 20)
    assert detail in str(caught.value)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"\xef\xbb\xbf{}", "BOM"),
        (b'"\xed\xa0\x80"', "not UTF-8"),  # an encoded surrogate (CESU-8)
        (b'"\xff"', "not UTF-8"),
        (b'"\x00\x00\x00a"', "not JSON"),  # control characters in a string
        ('{"a": "é"}'.encode("utf-16"), "not UTF-8"),
    ],
)
def test_ijson_encoding_rejections(data: bytes, detail: str) -> None:
    with pytest.raises(DecodeError) as caught:
        load(data)
    assert detail in str(caught.value)


def test_ijson_accepts_the_edges() -> None:
    assert load("9007199254740991") == MAX_SAFE_INTEGER
    assert load("-9007199254740991") == -MAX_SAFE_INTEGER
    assert load('"\\ud83d\\ude00"') == "\U0001f600"  # a surrogate pair is one code point
    assert load("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)
    assert load("1.5e300") == 1.5e300


def test_ijson_size_cap() -> None:
    document = json.dumps({"a": "x" * 100}).encode()
    with pytest.raises(DecodeError) as caught:
        load_json(document, max_bytes=len(document) - 1)
    assert caught.value.problem is DecodeProblem.OVER_LIMIT
    assert load_json(document, max_bytes=len(document)) == {"a": "x" * 100}
