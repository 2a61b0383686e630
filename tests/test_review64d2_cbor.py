"""Review 64d2: a review of review 64b2's fix of `troth.encoding.cbor.encode` (its general path
encodes the copy `_copied` makes while it checks depth and cycles).

cbor 1: the copy read a map's keys, then its values, in two passes, and paired them by
position: a map whose order changed between the two reads (a dict another thread re-inserted
a key of, a mapping over a store read twice) was encoded with keys paired to another key's
values, silently, where cbor2 (and `encode` before 64b2) reads each map once by its items.
A signed body could then say something its author's value did not. Fixed: the copy reads
`items()` once, as cbor2 does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from troth.encoding.cbor import encode


class _Reordering(Mapping[str, int]):
    """A mapping whose order changes at each iteration (as a dict another thread deleted and
    re-inserted a key of between two reads); its items are always the same pairs."""

    def __init__(self) -> None:
        self.pairs = {"a": 1, "b": 2}
        self.reads = 0

    def __getitem__(self, key: str) -> int:
        return self.pairs[key]

    def __iter__(self) -> Iterator[str]:
        self.reads += 1
        keys = sorted(self.pairs)
        return iter(keys if self.reads % 2 else keys[::-1])

    def __len__(self) -> int:
        return len(self.pairs)


def test_a_map_reordered_between_reads_keeps_each_key_with_its_value() -> None:
    assert encode([_Reordering()]) == encode([{"a": 1, "b": 2}])
