"""Review 53b: attacks on `cbor.encode_counted` (the service codec's check skipped when the
encoding walk counts the value within the decoder's limits) that failed: the code was right."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from troth.encoding import cbor
from troth.errors import DecodeError
from troth.node.services.protocol import encode_request


class _Level(enum.IntEnum):
    ONE = 1


def test_a_value_that_contains_itself_is_refused_not_counted_forever() -> None:
    """A list inside itself: the walk stops at the depth limit and says "not known"; the
    encoder refuses the cycle as before."""
    looped: list[Any] = [1]
    looped.append(looped)
    with pytest.raises(DecodeError):
        cbor.encode_counted(looped)
    with pytest.raises(DecodeError):
        encode_request(1, "echo", looped)


def test_text_that_is_not_utf8_is_refused_on_the_counted_path() -> None:
    """A lone surrogate in a value otherwise within the limits: `DecodeError`, as `encode`."""
    with pytest.raises(DecodeError):
        cbor.encode_counted(["a", "\ud800"])
    with pytest.raises(DecodeError):
        cbor.encode(["a", "\ud800"])


def test_an_int_subclass_is_not_taken_as_counted() -> None:
    """An IntEnum encodes as its integer, but the walk knows only exact types: "not known", so
    the caller scans; the bytes are `encode`'s."""
    data, within = cbor.encode_counted([_Level.ONE])
    assert not within
    assert data == cbor.encode([1])
