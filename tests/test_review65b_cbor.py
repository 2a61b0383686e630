"""Review 65b of session 64's CBOR codec fixes: findings in `troth.encoding.cbor`.

cbor 1: `encode` had no bound on the data items it writes, only on their nesting. A value of a
few dozen objects sharing their sub-objects (`x = [x, x]` forty times: 41 lists, 2**40 paths)
is written by cbor2 once per path: the walk that checks the value (`_in_subset`, or the copy
`_copied` on the general path, or `_declared` for `encode_counted`) and cbor2's output grew
as 2**n (22 levels: 9.6 s and 8 MB; 40: never ends, the process's memory exhausted), and a
flat list of ten million integers was written whole, though no decoder reads more than
`MAX_CONTROL_ANSWER_ITEMS` (1,048,576) items. `encode` now refuses a value of more than
`limits.MAX_CBOR_ENCODE_ITEMS` data items (the most any decoder reads, counted as the decoder
counts them) with a DecodeError (`over a limit`), found by the walks as they go (each stops
at the budget), so a shared sub-object costs at most that many items' work.
"""

from __future__ import annotations

from typing import Any

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem


class _Items(tuple[Any, ...]):
    """A sequence of no exact list type (the encoder's general path)."""


def _shared(levels: int, kind: type[Any] = list) -> Any:
    value: Any = kind([])
    for _ in range(levels):
        value = kind([value, value])
    return value


@pytest.mark.parametrize("kind", [list, _Items])
def test_cbor1_a_value_sharing_its_sub_objects_is_refused_at_the_item_limit(
    kind: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 lists, each holding the one before twice: 2**21 data items. With the limit lowered
    (read at call time, to keep the test fast; before, this took ~2 s and 2 MB, and 40 levels
    never ended) it is refused; a value at the limit is still written."""
    monkeypatch.setattr(limits, "MAX_CBOR_ENCODE_ITEMS", 10_000)
    with pytest.raises(DecodeError, match="more than 10000 data items") as refused:
        cbor.encode(_shared(20, kind))
    assert refused.value.problem is DecodeProblem.OVER_LIMIT
    taken = cbor.encode(_shared(12, kind))  # 2**13 - 1 items
    assert cbor.decode(taken, max_items=10_000) == _shared(12)


def test_cbor1_forty_levels_of_shared_lists_are_refused_not_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2**41 - 1 data items from 41 lists: refused, after at most the limit's items of work
    (before: the process ran out of memory; at the real limit this takes ~3 s, so lowered)."""
    monkeypatch.setattr(limits, "MAX_CBOR_ENCODE_ITEMS", 10_000)
    with pytest.raises(DecodeError, match="data items") as refused:
        cbor.encode({"a": _shared(40)})
    assert refused.value.problem is DecodeProblem.OVER_LIMIT


def test_cbor1_a_flat_list_past_what_any_decoder_reads_is_refused() -> None:
    """One more integer than the most items any decoder reads (the document itself is one):
    refused at once, on the exact-type path and the general path alike."""
    assert limits.MAX_CBOR_ENCODE_ITEMS >= limits.MAX_CONTROL_ANSWER_ITEMS
    flat = [0] * limits.MAX_CBOR_ENCODE_ITEMS
    for value in (flat, _Items(flat), {"a": flat[:-1]}):
        with pytest.raises(DecodeError, match="data items"):
            cbor.encode(value)
    data = cbor.encode(flat[:-1])
    assert len(cbor.decode(data, max_bytes=1 << 24, max_items=limits.MAX_CONTROL_ANSWER_ITEMS)) == (
        limits.MAX_CBOR_ENCODE_ITEMS - 1
    )


def test_cbor1_encode_counted_stops_at_the_limit_on_shared_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`encode_counted` (service requests and answers) counted every path of a shared value
    before it looked at the total: now it stops at `max_items`, and `encode` refuses it."""
    monkeypatch.setattr(limits, "MAX_CBOR_ENCODE_ITEMS", 10_000)
    wide: Any = []
    for _ in range(10):  # within the depth the decoder reads: 16**10 paths
        wide = [wide] * 16
    with pytest.raises(DecodeError, match="data items"):
        cbor.encode_counted([1, wide])
