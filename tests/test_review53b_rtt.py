"""Review 53b, service.rtt: a service request or answer is not scanned again after encoding.

`cbor.encode_counted` counts, in the walk that finds a value made of the subset's exact types,
the data items its containers declare and how deep non-empty containers nest, as `_scan`
counts them from the headers. When it says the encoding is within the limits, `decode` with
those limits must take it (so `check_limits` may be skipped); when it is not sure it says so,
never wrongly "within". The bytes are always `encode`'s.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, RemoteError
from troth.node.services.protocol import encode_request


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth < 7 else 3)
    if kind == 0:
        return rng.randrange(-300, 70_000)
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
    if kind == 2:
        return "".join(rng.choice("a\x80\u00e9\u00bf") for _ in range(rng.randrange(3)))
    if kind == 3:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 4:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    if kind == 5:
        return rng.choice([True, False, None])
    keys = {rng.choice("abcdef") * rng.randrange(1, 3) for _ in range(rng.randrange(4))}
    return {key: _value(rng, depth + 1) for key in keys}


def test_within_means_decode_takes_it_and_not_within_is_left_to_the_scan() -> None:
    """For random values and small limits: "within" only when `decode` accepts the bytes
    under those limits; every value `decode` accepts and made of exact types is "within"
    (the walk counts as the scan does, not merely less often); the bytes are `encode`'s."""
    rng = random.Random(53)
    within_count = refused = 0
    for _ in range(3000):
        value = _value(rng, 0)
        data = cbor.encode(value)
        depth, items = rng.randrange(1, 8), rng.randrange(1, len(data) + 3)
        encoded, within = cbor.encode_counted(value, max_depth=depth, max_items=items)
        assert encoded == data
        try:
            cbor.decode(data, max_depth=depth, max_items=items)
        except DecodeError:
            refused += 1
            assert not within
            with pytest.raises(DecodeError):
                cbor.check_limits(data, max_depth=depth, max_items=items)
        else:
            within_count += 1
            assert within  # exact built-in types only: the walk decides as the scan
    assert refused > 100
    assert within_count > 100


def test_the_depth_and_item_bounds_are_the_scans() -> None:
    """At the limits: `max_depth - 1` nested non-empty arrays are within, one more is not;
    `max_items` items are within, one more is not; empty containers add no depth."""
    deep: Any = [0]
    for _ in range(limits.MAX_CBOR_DEPTH - 2):
        deep = [deep]
    assert cbor.encode_counted(deep)[1]
    cbor.decode(cbor.encode(deep))
    too_deep = [deep]
    assert not cbor.encode_counted(too_deep)[1]
    with pytest.raises(DecodeError):
        cbor.check_limits(cbor.encode(too_deep))
    empty_inside: Any = []
    for _ in range(limits.MAX_CBOR_DEPTH - 1):
        empty_inside = [empty_inside]
    assert cbor.encode_counted(empty_inside)[1]
    cbor.decode(cbor.encode(empty_inside))

    full = [0] * (limits.MAX_CBOR_ITEMS - 1)  # the document is one item more
    assert cbor.encode_counted(full)[1]
    cbor.decode(cbor.encode(full))
    over = [0] * limits.MAX_CBOR_ITEMS
    assert not cbor.encode_counted(over)[1]
    with pytest.raises(DecodeError):
        cbor.check_limits(cbor.encode(over))
    mapped = {f"k{i}": 0 for i in range(limits.MAX_CBOR_ITEMS // 2)}  # a map: two per entry
    assert not cbor.encode_counted(mapped)[1]


def test_other_types_are_not_known_within_and_still_refused_as_encode_refuses() -> None:
    """A bytearray, a subclass, a non-text key: not known (the caller scans); what `encode`
    refuses (a float, an integer out of range) is refused the same."""

    class Text(str):
        pass

    for value in ([bytearray(b"x")], [Text("a")], ["a", (b"x", bytearray(b"y"))]):
        data, within = cbor.encode_counted(value)
        assert not within
        assert data == cbor.encode(value)
    for refused in ([1.5], [1 << 64], {1: 2}):
        with pytest.raises(DecodeError):
            cbor.encode_counted(refused)


def test_a_request_too_deep_or_too_large_is_still_refused_by_its_sender() -> None:
    """`encode_request` keeps review 51e's check (DecodeError for arguments the other side's
    decoder would refuse) and the size limit first (RemoteError)."""
    deep: Any = 0
    for _ in range(limits.MAX_CBOR_DEPTH):
        deep = [deep]
    with pytest.raises(DecodeError, match="cannot encode value"):
        encode_request(1, "echo", deep)
    with pytest.raises(RemoteError):
        encode_request(1, "echo", b"x" * limits.MAX_SERVICE_MESSAGE)
    wide = [0] * limits.MAX_CBOR_ITEMS
    with pytest.raises(DecodeError, match="cannot encode value"):
        encode_request(1, "echo", wide)
