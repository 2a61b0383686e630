"""RFC 9162 Merkle trees (SHA-256): hashing, proofs and their verification (sans-IO).

    leaf hash  = SHA-256(0x00 || leaf input)                  (RFC 9162 §2.1.1)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n

A "perfect subtree" (level L, index i) is MTH(D[i*2^L : (i+1)*2^L]); every proof element is the
root of a range that starts at a multiple of its largest power of two, i.e. a right fold of
perfect subtrees, so proofs are built from a `perfect(level, index)` lookup that the caller
backs with storage or memory.

Verification (`verify_inclusion`, `verify_consistency`) follows RFC 9162 §2.1.3.2 and §2.1.4.2
and checks in the order transparency-dev/merkle does (its probes are in tests/vectors/merkle).
Two decisions (docs/traces.md, "Proof rules"):
- every hash (leaf, proof element, root) must be 32 bytes; transparency-dev does not check root
  lengths, so its probe `sizes-are-equal-one-and-proof-is-empty` (12-byte roots) is refused;
- a consistency proof from size 0 is refused, even 0 -> 0 (there is nothing to prove). A
  verifier anchored at an empty tree needs no proof to move on (`troth.trace.checkpoint`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Final

from troth import limits
from troth.errors import TraceError, TraceFailure

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MemoryTree",
    "PerfectLookup",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "prefix_root",
    "range_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"

PerfectLookup = Callable[[int, int], bytes]
"""`perfect(level, index)`: the root of leaves [index * 2^level, (index + 1) * 2^level)."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of one leaf input."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node."""
    return hashlib.sha256(_NODE + left + right).digest()


def _fail(detail: str) -> TraceError:
    return TraceError(TraceFailure.PROOF_INVALID, detail)


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly below `n` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hashes(what: str, *hashes: bytes) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise _fail(f"{what}: a hash is not {HASH_SIZE} bytes")


def _check_proof(proof: Sequence[bytes]) -> None:
    if len(proof) > limits.MAX_TRACE_PROOF_HASHES:
        raise _fail(f"more than {limits.MAX_TRACE_PROOF_HASHES} hashes")
    _check_hashes("proof", *proof)


# -- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ---------------------------------------------


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise TraceError(PROOF_INVALID) unless `proof` shows that the leaf hash `leaf` is leaf
    `index` of the tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2)."""
    _check_hashes("leaf", leaf)
    _check_proof(proof)
    _check_hashes("root", root)
    if not 0 <= index < size:
        raise _fail(f"index {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise _fail("proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail("proof too short")
    if r != root:
        raise _fail("root mismatch")


def prefix_root(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bytes:
    """The root of the tree of the first `index` + 1 leaves, from leaf `index`'s inclusion
    `proof` in the tree of `size` leaves whose root is `root` (verified first: TraceError
    PROOF_INVALID). The left siblings on a leaf's path are the perfect subtrees before it, the
    same in every tree that holds it, and for the last leaf of a prefix they are its whole
    path in the prefix's own tree (RFC 9162 §2.1.3.2): so one line of an export shows whether
    its larger tree grew from a kept one (review 63s, traces 1)."""
    verify_inclusion(index, size, leaf, proof, root)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
    return r


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise TraceError(PROOF_INVALID) unless `proof` shows that the tree of `size1` leaves with
    root `root1` is a prefix of the tree of `size2` leaves with root `root2` (§2.1.4.2)."""
    if size2 < size1:
        raise _fail(f"size {size2} is smaller than {size1}")
    if size1 == 0:
        raise _fail("consistency from the empty tree proves nothing")  # even 0 -> 0
    _check_hashes("root", root1, root2)
    _check_proof(proof)
    if size1 == size2:
        if proof:
            raise _fail("a proof between equal sizes must be empty")
        if root1 != root2:
            raise _fail("root mismatch")
        return
    if not proof:
        raise _fail("empty proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _fail("proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail("proof too short")
    if fr != root1 or sr != root2:
        raise _fail("root mismatch")


# -- building proofs (RFC 9162 §2.1.3.1, §2.1.4.1) -------------------------------------------


def range_hash(start: int, count: int, perfect: PerfectLookup) -> bytes:
    """MTH(D[start : start + count]) for a range that starts at a multiple of the largest power
    of two in `count` (every range RFC 9162's proofs name): the right fold of its perfect
    subtrees, largest first."""
    if count == 0:
        return EMPTY_ROOT
    parts: list[bytes] = []
    offset = start
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            parts.append(perfect(level, offset >> level))
            offset += 1 << level
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


def inclusion_proof(index: int, size: int, perfect: PerfectLookup) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of {size}")
    proof: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _largest_power_below(n)
        if m < k:
            proof.append(range_hash(start + k, n - k, perfect))
            n = k
        else:
            proof.append(range_hash(start, k, perfect))
            start, n, m = start + k, n - k, m - k
    proof.reverse()
    return proof


def consistency_proof(size1: int, size2: int, perfect: PerfectLookup) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1 (size1 > 0)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from {size1} to {size2}")
    proof: list[bytes] = []
    start, n, m, complete = 0, size2, size1, True
    while m != n:
        k = _largest_power_below(n)
        if m <= k:
            proof.append(range_hash(start + k, n - k, perfect))
            n = k
        else:
            proof.append(range_hash(start, k, perfect))
            start, n, m, complete = start + k, n - k, m - k, False
    if not complete:
        proof.append(range_hash(start, n, perfect))
    proof.reverse()
    return proof


# -- trees ------------------------------------------------------------------------------------


class Frontier:
    """The right edge of a growing tree: one perfect subtree per set bit of its size (a
    "compact range"). `append` returns the perfect subtrees it completes."""

    __slots__ = ("_nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count():
            raise ValueError("a frontier holds one hash per set bit of its size")
        self.size = size
        self._nodes = list(nodes)

    @classmethod
    def load(cls, size: int, perfect: PerfectLookup) -> Frontier:
        """The frontier of a stored tree of `size` leaves."""
        nodes, offset = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                nodes.append(perfect(level, offset >> level))
                offset += 1 << level
        return cls(size, nodes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the (level, index, hash) of every perfect subtree of level
        >= 1 that it completes."""
        nodes = self._nodes
        completed: list[tuple[int, int, bytes]] = []
        current, level, n = leaf, 0, self.size
        while n & 1:  # each trailing one bit of the old size is a subtree to merge with
            current = node_hash(nodes.pop(), current)
            level += 1
            n >>= 1
            completed.append((level, ((self.size + 1) >> level) - 1, current))
        nodes.append(current)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        nodes = self._nodes
        if not nodes:
            return EMPTY_ROOT
        result = nodes[-1]
        for node in reversed(nodes[:-1]):
            result = node_hash(node, result)
        return result

    def copy(self) -> Frontier:
        return Frontier(self.size, self._nodes)


class MemoryTree:
    """Every perfect subtree of a list of leaf hashes, in memory (2n hashes): for exports and
    verifiers that hold a whole log."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        levels = [list(leaves)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        self._levels = levels

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def perfect(self, level: int, index: int) -> bytes:
        return self._levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (all of them by default)."""
        return range_hash(0, self.size if size is None else size, self.perfect)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.perfect)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(size1, self.size if size2 is None else size2, self.perfect)
