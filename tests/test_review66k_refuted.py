"""Review 66k (second review of the CBOR encoder's bounded writer, 65y, and its shared leaves,
65t): attacks that did not work.

- The bounded writer and the walks change no byte: for every value of the subset, `encode`
  (the fast path, and the general path given the same value in other types: tuples, str and
  int subclasses, read-only and reordered maps, bytearrays) and `encode_counted` write exactly
  what an independent RFC 8949 §4.2.1 encoder written here writes (keys sorted bytewise by
  their encodings), which is also cbor2's canonical (length-first, RFC 7049) output: with text
  keys the two orders agree, as docs/formats.md says, also across the header sizes (keys of
  23/24 and 255/256 UTF-8 bytes) and for non-ASCII keys of one length.
- Exactly at the item bound both ways: the most items the encoder writes (1,048,576) is what
  a control answer's reader takes, on both encoder paths; one more is refused by each side
  with `over a limit`.
- Past either bound, on every path (fast, general, `encode_counted`, a shared leaf's tag, map
  keys, a non-ASCII string, a shared bignum in a subclass), the error is troth's
  `DecodeError` with problem `over a limit`: never cbor2's, a MemoryError or a RecursionError.
- A peer cannot make the node copy a string past the bound: what a peer sends is decoded
  within `MAX_CBOR_BYTES`/`MAX_SERVICE_MESSAGE`, and a value decoded within a limit
  re-encodes to the same bytes (so within the same limit); shared only by the node's own
  code (an error's reasons), it is cut (test_review44a_malformed).
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem

_EDGES = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
INTS = st.sampled_from(_EDGES + [-1 - n for n in _EDGES]) | st.integers(
    min_value=-(2**64), max_value=2**64 - 1
)
KEYS = (
    st.text(max_size=6)
    | st.sampled_from(["a" * 23, "a" * 24, "b" * 255, "b" * 256, "é" * 12, "z" * 24, "ü" * 128])
    | st.text(alphabet="aé€😀", min_size=1, max_size=4)
)
SCALARS = INTS | st.binary(max_size=40) | KEYS | st.booleans() | st.none()
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=30,
)


def _head(major: int, n: int) -> bytes:
    """An initial byte and its shortest argument (RFC 8949 §3, §4.2.1)."""
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(n)


def _reference(value: Any) -> bytes:
    """RFC 8949 §4.2.1 core deterministic encoding of a subset value, written from the RFC."""
    if value is None or type(value) is bool:
        return {None: b"\xf6", False: b"\xf4", True: b"\xf5"}[value]
    if type(value) is int:
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if type(value) is bytes:
        return _head(2, len(value)) + value
    if type(value) is str:
        return _head(3, len(value.encode())) + value.encode()
    if type(value) is list:
        return _head(4, len(value)) + b"".join(map(_reference, value))
    entries = sorted((_reference(k), _reference(v)) for k, v in value.items())
    return _head(5, len(value)) + b"".join(k + v for k, v in entries)


class _Text(str):
    pass


class _Int(int):
    pass


def _odd(value: Any) -> Any:
    """`value` in other types the general path takes as the subset's (never the fast path)."""
    if type(value) is list:
        return tuple(map(_odd, value))
    if type(value) is dict:
        entries = [(_Text(k), _odd(v)) for k, v in reversed(value.items())]
        return MappingProxyType(OrderedDict(entries))
    if type(value) is str:
        return _Text(value)
    if type(value) is bytes:
        return bytearray(value)
    if type(value) is int:
        return _Int(value)
    return value


@settings(deadline=None, max_examples=150)
@given(VALUES)
def test_every_path_writes_the_rfc_8949_deterministic_encoding(value: Any) -> None:
    expected = _reference(value)
    assert cbor.encode(value) == expected
    assert cbor2.dumps(value, canonical=True) == expected  # §4.2.3 length-first: the same
    assert cbor.encode([_odd(value)]) == _head(4, 1) + expected
    assert cbor.encode_counted(value)[0] == expected
    assert cbor.decode(expected) == value


def test_keys_across_header_sizes_sort_bytewise() -> None:
    value = {"b" * 256: 0, "a" * 24: 1, "é" * 12: 2, "a" * 23: 3, "b" * 255: 4, "z": 5}
    data = cbor.encode(value)
    assert data == _reference(value) == cbor.encode(_odd(value))
    assert list(cbor.decode(data)) == ["z", "a" * 23, "a" * 24, "é" * 12, "b" * 255, "b" * 256]


class _Items(tuple[Any, ...]):
    pass


def test_the_item_bound_is_the_same_on_both_sides() -> None:
    most = limits.MAX_CBOR_ENCODE_ITEMS
    assert most == limits.MAX_CONTROL_ANSWER_ITEMS
    inner: list[Any] = [None] * 1024
    value: list[Any] = [inner] * 1023  # 1 + 1023 * 1025 == 2**20 items, shared
    data = cbor.encode(value)
    decoded = cbor.decode(data, max_bytes=limits.MAX_CONTROL_ANSWER, max_items=most)
    assert decoded == value
    value.append(None)
    with pytest.raises(DecodeError) as raised:
        cbor.encode(value)
    assert raised.value.problem is DecodeProblem.OVER_LIMIT
    one_more = bytes([0x9A]) + most.to_bytes(4, "big") + b"\xf6" * most
    with pytest.raises(DecodeError) as refused:
        cbor.decode(one_more, max_bytes=limits.MAX_CONTROL_ANSWER, max_items=most)
    assert refused.value.problem is DecodeProblem.OVER_LIMIT


def test_the_general_path_counts_items_as_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bound, exactly, on the walk over other types (a copy per path: slow at 2**20,
    so checked at a smaller limit, read by both walks at each call)."""
    monkeypatch.setattr(limits, "MAX_CBOR_ENCODE_ITEMS", 1 + 7 * 9)
    value: Any
    mapped = {str(n): None for n in range(31)}  # 63 items: one more entry is 65
    for value in ([[None] * 8] * 7, {"k": [None] * 2, "l": [[None] * 8] * 6, "m": [None]}):
        data = cbor.encode(value)
        assert cbor.encode(_odd(value)) == data
        assert cbor.decode(data, max_items=64) == value
    assert cbor.encode(_Items([None] * 63)) == cbor.encode([None] * 63)
    assert cbor.encode(MappingProxyType(mapped)) == cbor.encode(mapped)
    too_many = [
        [[None] * 8] * 7 + [None],
        _Items([_Items([None] * 8)] * 7 + [None]),
        _Items([None] * 64),
        MappingProxyType(mapped | {"31": None}),
    ]
    for value in too_many:
        with pytest.raises(DecodeError) as raised:
            cbor.encode(value)
        assert raised.value.problem is DecodeProblem.OVER_LIMIT


_MIB = b"x" * (1 << 20)
_NON_ASCII = "é" * (1 << 19)  # 1 MiB of UTF-8
_BIG = 1 << (8 << 20)  # a bignum of 1 MiB


@pytest.mark.parametrize(
    "value",
    [
        [_MIB] * 17,
        {"k": [_MIB] * 17},
        [{_NON_ASCII: 0}] * 17,
        {_Text("k"): _Items([bytearray(_MIB)] * 17)},
        [_Text(_NON_ASCII)] * 17,
        MappingProxyType({"a": [_MIB] * 8, "b": [_MIB] * 9}),
    ],
    ids=["list", "map", "keys", "general", "text-subclass", "mapping"],
)
def test_past_the_byte_bound_every_path_raises_over_a_limit(value: Any) -> None:
    with pytest.raises(DecodeError) as raised:
        cbor.encode(value)
    assert raised.value.problem is DecodeProblem.OVER_LIMIT
    with pytest.raises(DecodeError) as counted:
        cbor.encode_counted(value)
    assert counted.value.problem is DecodeProblem.OVER_LIMIT


@pytest.mark.parametrize(
    "value",
    [[_BIG] * 1000, [_Int(_BIG)] * 1000, [Decimal(10**4000)] * 10_000, _Items([_BIG] * 1000)],
    ids=["bignum", "int-subclass", "decimal", "general"],
)
def test_a_shared_leaf_out_of_the_subset_is_refused_by_its_tag(value: Any) -> None:
    with pytest.raises(DecodeError, match="tags are not allowed"):
        cbor.encode(value)


@settings(deadline=None, max_examples=60)
@given(VALUES)
def test_what_a_peer_sends_re_encodes_to_its_own_bytes(value: Any) -> None:
    data = cbor.encode(value)
    assert cbor.encode(cbor.decode(data)) == data
