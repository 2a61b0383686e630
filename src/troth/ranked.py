"""Things grouped by key, each group oldest first, and the key holding the most found without
a scan (sans-IO): the open-channel cap's rankings (`troth.node.channel_cap`; review 60f,
listener 4) and the transport's frameless connections by source address
(`troth.transport.frameless`; review 60i, listener 2)."""

from __future__ import annotations

import collections
import heapq
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Ranked"]

E = TypeVar("E")  # (hashable: a channel, a connection)
K = TypeVar("K", bound=Any)  # a network, a source (str), an authority (bytes): ordered


class Ranked(Generic[K, E]):
    """Things (`E`) grouped by key, each group oldest first (`seq`: each one's order), and the
    key holding the most found without a scan (review 60f, listener 4: a scan of the groups
    for each newcomer, ~2 ms at 3,072). The keys of each size are kept in a heap by their
    oldest's order, entries left stale by a change skipped when met, the heap filtered when
    they outnumber the live ones. With `firsts`, the keys are also kept in one heap by their
    oldest's order, for `oldest_but` (review 74m, cap7 2)."""

    __slots__ = ("_firsts", "_heaps", "_seq", "_sizes", "_top", "groups")

    def __init__(self, seq: Callable[[E], int], firsts: bool = False) -> None:
        self.groups: dict[K, dict[E, None]] = {}
        """The things of each key, oldest first."""
        self._seq = seq
        self._sizes: collections.Counter[int] = collections.Counter()  # keys by group size
        self._top = 0  # the largest group's size
        self._heaps: dict[int, list[tuple[int, K]]] = {}  # by size: (oldest's seq, key)
        self._firsts: list[tuple[int, K]] | None = [] if firsts else None  # (its seq, key)

    def __len__(self) -> int:
        return len(self.groups)

    def add(self, key: K, end: E) -> None:
        """`end` (the newest) joins `key`'s group."""
        ends = self.groups.setdefault(key, {})
        ends[end] = None
        if len(ends) == 1:
            self._first(key, ends)
        self._resized(key, len(ends) - 1, len(ends))

    def remove(self, key: K, end: E) -> None:
        """`end` leaves `key`'s group (an emptied group is forgotten)."""
        ends = self.groups[key]
        first = self._firsts is not None and next(iter(ends)) == end
        del ends[end]
        if not ends:
            del self.groups[key]
        elif first:
            self._first(key, ends)
        self._resized(key, len(ends) + 1, len(ends))

    def most(self, mine: K | None) -> K:
        """The key holding the most: `mine` when it is among them, else the one whose oldest
        is the oldest (there must be one)."""
        top = self._top
        if mine is not None and len(self.groups.get(mine, ())) == top:
            return mine
        heap = self._heaps[top]
        while not self._live(heap[0], top):
            heapq.heappop(heap)
        return heap[0][1]

    def most_but(self, skip: K) -> K | None:
        """The key holding the most with `skip`'s group set aside (among equals, the one whose
        oldest is the oldest); None when `skip` is the only key (review 73r, cap3 1: the
        strangers' channel that gives way for a member behind a node, that node's own kept)."""
        skipped = len(self.groups.get(skip, ()))
        for size in sorted(self._sizes, reverse=True):
            if size == skipped and self._sizes[size] == 1:
                continue
            heap, aside = self._heaps[size], []
            while not self._live(heap[0], size) or heap[0][1] == skip:
                entry = heapq.heappop(heap)
                if self._live(entry, size):
                    aside.append(entry)
            key: K = heap[0][1]
            for entry in aside:
                heapq.heappush(heap, entry)
            return key
        return None

    def most_as(self, key: K, size: int, oldest: int) -> K | None:
        """The key holding the most were `key`'s group `size` things, the oldest's order
        `oldest` (0 things: set aside; `most_but`); None when there is none (review 74a, cap5:
        the ranking with a node's own channels set aside, without a scan)."""
        other = self.most_but(key)
        if not size:
            return other
        if other is None:
            return key
        ends = self.groups[other]
        return key if (-size, oldest) < (-len(ends), self._seq(next(iter(ends)))) else other

    def oldest_but(self, skip: K) -> int | None:
        """The order of the oldest thing with `skip`'s group set aside (None: none), from the
        heap of keys by their oldest (`firsts`; review 74m, cap7 2: a walk past `skip`'s, up
        to the per-source limit, for each authority tied at the cap, 5,120 with 20)."""
        heap = self._firsts
        if heap is None:
            raise TypeError("oldest_but: this Ranked keeps no heap of firsts")
        while heap and not self._first_live(heap[0]):
            heapq.heappop(heap)
        if not heap or heap[0][1] != skip:
            return heap[0][0] if heap else None
        top = heapq.heappop(heap)  # (`skip`'s only live entry: set aside, then put back)
        while heap and not self._first_live(heap[0]):
            heapq.heappop(heap)
        oldest = heap[0][0] if heap else None
        heapq.heappush(heap, top)
        return oldest

    def entries(self) -> int:
        """The heaps' entries, stale ones included (bounded: tests)."""
        firsts = len(self._firsts) if self._firsts is not None else 0
        return firsts + sum(len(heap) for heap in self._heaps.values())

    def _first(self, key: K, ends: dict[E, None]) -> None:
        """`key`'s oldest is now `ends`' first: kept in the heap of firsts, if one is kept
        (filtered of stale entries when they outnumber the live ones)."""
        heap = self._firsts
        if heap is None:
            return
        heapq.heappush(heap, (self._seq(next(iter(ends))), key))
        if len(heap) > 2 * len(self.groups) + 16:
            heap[:] = [entry for entry in heap if self._first_live(entry)]
            heapq.heapify(heap)

    def _first_live(self, entry: tuple[int, K]) -> bool:
        ends = self.groups.get(entry[1])
        return ends is not None and self._seq(next(iter(ends))) == entry[0]

    def _live(self, entry: tuple[int, K], size: int) -> bool:
        ends = self.groups.get(entry[1])
        return ends is not None and len(ends) == size and self._seq(next(iter(ends))) == entry[0]

    def _resized(self, key: K, before: int, after: int) -> None:
        sizes = self._sizes
        if before:
            sizes[before] -= 1
            if not sizes[before]:
                del sizes[before]
                self._heaps.pop(before, None)  # (all its entries stale)
        if after:
            sizes[after] += 1
            heap = self._heaps.setdefault(after, [])
            heapq.heappush(heap, (self._seq(next(iter(self.groups[key]))), key))
            if len(heap) > 2 * sizes[after] + 16:
                live = dict.fromkeys(e for e in heap if self._live(e, after))
                heap[:] = live
                heapq.heapify(heap)
        self._top = max(self._top, after)
        while self._top and self._top not in sizes:
            self._top -= 1
