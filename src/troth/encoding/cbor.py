"""Deterministic CBOR (RFC 8949) over cbor2, and the one strict decoder every format uses.

troth's documents use a subset of CBOR: integers (-2**64 <= n < 2**64), byte strings, text
strings, arrays, maps keyed by text strings, and the simple values false, true and null; no
tags, floats, undefined or other simple values, no indefinite lengths.

Encoding is RFC 8949 §4.2.1 core deterministic encoding: shortest-form arguments, definite
lengths, map keys sorted bytewise by their encoded form. With text keys only this is the same
byte order as §4.2.3 length-first (an encoded text key begins with its length), which is what
cbor2's canonical mode writes. `encode` refuses any value outside the subset (its output would
not decode), nested past `limits.MAX_CBOR_ENCODE_DEPTH`, of more than
`limits.MAX_CBOR_ENCODE_ITEMS` data items or whose encoding is longer than
`limits.MAX_CBOR_ENCODE_BYTES` (what no decoder reads), raising `DecodeError`.

Decoding accepts exactly the documents that encoding produces, so each value has one byte form
and a signed body can never be re-encoded into something else. Before cbor2 materialises
anything, `_scan` walks the initial bytes and arguments only (a validator of the header
structure, not a second decoder) and refuses, in one bounded pass over the bytes:
- more than `max_items` data items (counted from the declared lengths, so a 16 MiB array of
  empty arrays is refused at its first header), nesting deeper than `max_depth`;
- indefinite lengths, tags, floats, simple values other than false/true/null, reserved
  additional-information values;
- arguments not in shortest form, map keys that are not text, or not in strictly increasing
  bytewise order (so also no duplicates), lengths past the end, and trailing bytes.
What the scan accepts is then canonical by construction; cbor2 only checks UTF-8. At most
`limits.MAX_CBOR_BYTES` bytes unless the caller sets another limit. Any failure raises
`DecodeError`, never another exception.

Small documents (at most `_FAST_BYTES`, and no more bytes than `max_items`) take a fast path
that accepts exactly what the scan accepts (`_decode_small`): cbor2's C decoder materialises
them with every tag refused before its content is read, indefinite lengths and duplicate keys
refused; then one walk over the value refuses any type outside the subset, non-text or
out-of-order map keys and nesting past `max_depth`, and adds up the size of the value's
canonical encoding. Without tags, each item's bytes are at least its canonical encoding (a
longer argument, or a dropped duplicate), so the sizes are equal only if the document is that
encoding: shortest form everywhere, no trailing bytes. Items cannot exceed `max_items` (each
takes at least one byte), and the value is bounded by the document's size. Whatever the fast
path does not accept goes through the scan, so every refusal raises the scan's own error.
The fast path is on only if the installed cbor2 is seen at import to refuse the tags it knows.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any, Final, NoReturn

import cbor2

from troth import limits
from troth.errors import DecodeError, DecodeProblem

__all__ = [
    "check_limits",
    "decode",
    "encode",
    "encode_checked",
    "encode_counted",
    "expect_array",
    "expect_bytes",
    "expect_header",
    "expect_int",
    "expect_text",
]

_SHORTEST: Final = (24, 1 << 8, 1 << 16, 1 << 32)  # smallest argument for info 24, 25, 26, 27
_FALSE_TRUE_NULL: Final = frozenset({0xF4, 0xF5, 0xF6})
_TAG_NAMES: Final = {
    0: "a date/time (tag 0)",
    1: "a date/time (tag 1)",
    2: "an integer of 2**64 or more (bignum, tag 2)",
    3: "an integer below -2**64 (bignum, tag 3)",
    4: "a decimal (tag 4)",
    258: "a set (tag 258)",
}
_MAJOR7_NAMES: Final = {
    0xF7: "undefined",
    0xF9: "a float",
    0xFA: "a float",
    0xFB: "a float",
}


def encode(value: Any) -> bytes:
    """Encode `value` deterministically (RFC 8949 §4.2.1). Raises `DecodeError` for a value
    the decoder would refuse: floats, sets, integers outside [-2**64, 2**64), undefined, dates,
    decimals or anything else cbor2 writes as a tag, and non-text map keys.

    A value made only of the subset's exact built-in types (`_in_subset`, a walk over the
    Python value) is encoded straight away: its encoding is in the subset by construction.
    Anything else (subclasses, bytearray, floats, sets, ...) is encoded and its bytes scanned
    as the decoder scans them, so exactly what the decoder would refuse is refused. Either walk
    stops past `limits.MAX_CBOR_ENCODE_ITEMS` data items, which is refused: a value sharing its
    sub-objects is written once per path (review 65b, cbor 1). cbor2 writes into a `_Bounded`
    writer, which stops it past `limits.MAX_CBOR_ENCODE_BYTES` bytes: a string shared by many
    paths is written once for each too (review 65q, cbor 1)."""
    try:
        if _in_subset(value, 0, limits.MAX_CBOR_ENCODE_ITEMS - 1) >= 0:
            return _dumps(value)
    except RecursionError:
        pass  # too deep for the walk: the general path below decides
    except (cbor2.CBOREncodeError, ValueError) as exc:  # a text string that is not UTF-8
        raise DecodeError(f"cannot encode value: {exc}") from exc
    try:
        data = _dumps(_copied(value))
    except (cbor2.CBOREncodeError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"cannot encode value: {exc}") from exc
    try:
        _scan(data, sys.maxsize, sys.maxsize)
    except DecodeError as exc:
        raise DecodeError(f"cannot encode value: {exc}") from None
    return data


def _copied(value: Any) -> Any:
    """A copy of `value` whose containers (a sequence, set or mapping, of any type cbor2
    writes as an array or a map) are new exact lists and dicts, read once each, for cbor2 to
    encode instead of `value`; DecodeError when they nest more than
    `limits.MAX_CBOR_ENCODE_DEPTH` deep (or are cyclic), found with a stack of this walk's
    own. cbor2's C encoder recurses on the C stack with no limit: a value too deep crashed
    the process (a segfault, where `encode` promises a DecodeError: review 64n, api 3). It
    must encode what was walked, not `value` again: a subclass whose second iteration yields
    another, deeper value crashed it past a check that only walked (review 64b2, cbor 1); so
    did a tag's content, never walked (a tag is refused without it), and a sequence of no
    list type (a deque: never walked). A map is read once, by its items (its keys and its
    values read apart paired a key with another's value when the map's order changed
    between the two: review 64d2, cbor 1). Map keys are text: a `str` subclass is taken as
    its text. DecodeError past `limits.MAX_CBOR_ENCODE_ITEMS` data items, counted as the
    copy grows: a sub-object reached by many paths is copied once for each (review 65b,
    cbor 1). A container is read up to one item past what is left of the limit, never whole
    first: a range of 10**12, a sequence whose `__len__` lies or which never ends raised
    MemoryError or ate the memory (review 66k, cbor 1). Its strings are not counted: the
    `_Bounded` writer bounds what cbor2 writes of them, by the bytes it writes, whatever a
    subclass's `__len__` says (review 65q, cbor 1)."""
    deepest = limits.MAX_CBOR_ENCODE_DEPTH
    most = limits.MAX_CBOR_ENCODE_ITEMS
    budget = most - 1  # the value itself is one item
    leaves: dict[int, Any] = {}
    root: list[Any] = [value]
    pending: list[tuple[list[Any] | dict[str, Any], Any, int]] = [(root, 0, 0)]
    while pending:
        into, slot, depth = pending.pop()
        item = into[slot]
        if isinstance(item, str | bytes | bytearray):
            continue
        if type(item) in _LEAF_TYPES or (type(item) is int and _MIN_INT <= item < _INT_BOUND):
            continue
        if isinstance(item, cbor2.CBORTag):  # refused for its number, its content unread
            into[slot] = cbor2.CBORTag(item.tag, None)
            continue
        copy: list[Any] | dict[str, Any]
        if isinstance(item, Mapping):
            # one read, as cbor2 reads a map (review 64d2, cbor 1), of no more than the budget
            pairs = list(islice(item.items(), budget // 2 + 1))
            copy = {}
            for key, each in pairs:
                if not isinstance(key, str):
                    raise DecodeError("cannot encode value: map keys must be text strings")
                copy[str.__str__(key)] = each
            if len(copy) != len(pairs):
                raise DecodeError("cannot encode value: duplicate map key")
            into[slot] = copy
        elif isinstance(item, set | frozenset):
            copy = list(islice(item, budget + 1))
            into[slot] = cbor2.CBORTag(258, copy)
        elif isinstance(item, Sequence) and not isinstance(item, str | bytes | bytearray):
            copy = list(islice(item, budget + 1))  # cbor2 writes any sequence as an array
            into[slot] = copy
        else:
            into[slot] = _leaf(item, leaves)
            continue
        if depth >= deepest:
            raise DecodeError(f"cannot encode value: nested deeper than {deepest} (or cyclic)")
        budget -= 2 * len(copy) if type(copy) is dict else len(copy)
        if budget < 0:
            raise DecodeError(
                f"cannot encode value: more than {most} data items", DecodeProblem.OVER_LIMIT
            )
        slots = list(copy) if type(copy) is dict else range(len(copy))
        pending.extend((copy, each, depth + 1) for each in slots)
    return root[0]


def _leaf(item: Any, leaves: dict[int, Any]) -> Any:
    """What `_copied` has cbor2 write for `item`, a leaf of no type of the subset (but a
    string or a tag): an integer out of the subset's range or anything cbor2 writes as a tag
    (a decimal, a fraction, a regular expression...) as that tag with no content, which the
    scan refuses by its number before its content, as it refused `item`; a float or a simple
    value as it is (at most 9 bytes). cbor2 wrote such a leaf, of any length, once per path to
    it, past `MAX_CBOR_ENCODE_BYTES` (review 65t, cbor 1); each is encoded here once
    (`leaves`, by id: `item` is held by the value being walked), refused (DecodeError) when
    its encoding alone is longer than `MAX_CBOR_ENCODE_BYTES`."""
    if isinstance(item, int) and not isinstance(item, bool):
        if int.bit_length(item) > 65 or not _MIN_INT <= int.__int__(item) < _INT_BOUND:
            return cbor2.CBORTag(3 if int.__lt__(item, 0) else 2, None)
        return item
    if type(item) is float:
        return item
    known = leaves.get(id(item))
    if known is None:
        try:
            data = _dumps(item)
        except (cbor2.CBOREncodeError, ValueError, TypeError, RecursionError):
            data = b""  # not encodable: cbor2 refuses it again, as before
        tagged = data and data[0] >> 5 == 6
        known = (cbor2.CBORTag(_tag_number(data), None),) if tagged else (item,)
        leaves[id(item)] = known
    return known[0]


def _tag_number(data: bytes) -> int:
    """The number of the tag at the start of `data` (a CBOR data item of major type 6)."""
    info = data[0] & 0x1F
    return info if info < 24 else int.from_bytes(data[1 : 1 + (1 << (info - 24))], "big")


class _Bounded(list[bytes]):
    """A file cbor2 writes an encoding into (the list of the chunks written) that refuses,
    with `DecodeError`, to hold more than `room` bytes (`limits.MAX_CBOR_ENCODE_BYTES`):
    cbor2 writes its output in chunks of some KiB (and each string longer than that as
    itself), so what is held stays within the limit plus a chunk, whatever the value repeats
    (measured: review 65y). The bound is on the encoding's bytes, the most any decoder reads
    (a control answer's), whatever its leaves: strings shared by many paths (review 65q,
    cbor 1), bignums, decimals (review 65t, cbor 1). A list, its `room` set by its maker: the
    cheapest writer for a small document, which cbor2 writes at once."""

    __slots__ = ("room",)
    room: int

    writable: Final = True.__bool__  # what cbor2 asks first, answered in C (hot path)

    def write(self, chunk: bytes) -> int:
        self.room -= len(chunk)
        if self.room < 0:
            most = limits.MAX_CBOR_ENCODE_BYTES
            raise DecodeError(
                f"cannot encode value: encoding longer than {most} bytes",
                DecodeProblem.OVER_LIMIT,
            )
        self.append(chunk)
        return len(chunk)


def _dumps(value: Any) -> bytes:
    """`cbor2.dumps(value, canonical=True)` into a `_Bounded` writer: DecodeError past
    `limits.MAX_CBOR_ENCODE_BYTES` bytes, before they are held."""
    out = _Bounded()
    out.room = limits.MAX_CBOR_ENCODE_BYTES
    cbor2.dump(value, out, canonical=True)  # type: ignore[arg-type]  # a file: write
    return out[0] if len(out) == 1 else b"".join(out)


def check_limits(
    data: bytes,
    *,
    max_depth: int = limits.MAX_CBOR_DEPTH,
    max_items: int = limits.MAX_CBOR_ITEMS,
) -> None:
    """Raise `DecodeError` when `decode` would refuse `data` (what `encode` made) for its depth
    or its number of items: a sender's check that what it sends the other side accepts
    (review 51e, calls 6). Scanned only when it could be refused: every item takes a byte,
    and every array or map opens with a byte of 0x80-0xBF (fewer such bytes than
    `max_depth`: fewer nested containers than the scan refuses)."""
    if len(data) <= max_items and len(data.translate(None, _NOT_CONTAINER)) < max_depth:
        return
    _scan(data, max_depth, max_items)


_NOT_CONTAINER: Final = bytes(b for b in range(256) if not 0x80 <= b <= 0xBF)
"""Every byte but those an array's or a map's header starts with (major types 4 and 5)."""


def encode_counted(
    value: Any,
    *,
    max_depth: int = limits.MAX_CBOR_DEPTH,
    max_items: int = limits.MAX_CBOR_ITEMS,
) -> tuple[bytes, bool]:
    """`encode(value)`, and whether `decode` with these limits is known to take it: True when
    `value` is made only of the subset's exact types (as `_in_subset` finds) and the walk that
    finds so counts its data items and nesting as the scan counts them from the headers, within
    the limits; then the encoding needs no `check_limits` (no second pass over what was just
    encoded: review 53b). False means "not known", never "refused": the caller runs
    `check_limits` on the bytes, which decides and names the reason."""
    try:
        declared = _declared(value, 0, max_depth - 1, max_items)
    except RecursionError:
        declared = -1
    if declared < 0 or declared >= max_items:  # the document itself is one item more
        return encode(value), False
    try:
        return _dumps(value), True
    except (cbor2.CBOREncodeError, ValueError) as exc:  # a text string that is not UTF-8
        raise DecodeError(f"cannot encode value: {exc}") from exc


def _declared(value: Any, enclosing: int, deepest: int, most: int) -> int:
    """The data items the headers of `value`'s containers declare (an array its length, a map
    twice its length), as `_scan` adds them up, or some number of at least `most` (counted
    that far only: a value sharing its sub-objects has as many as paths, review 65b, cbor 1);
    -1 when `value` is not made only of the subset's exact types (`_in_subset`'s test) or holds
    a non-empty container inside `deepest` others (what the scan refuses as nested too deep)."""
    kind = type(value)
    if kind in _LEAF_TYPES:
        return 0
    if kind is int:
        return 0 if _MIN_INT <= value < _INT_BOUND else -1
    if kind is list or kind is tuple:
        items = value
        total = len(value)
    elif kind is dict:
        for key in value:
            if type(key) is not str:
                return -1
        items = value.values()
        total = 2 * len(value)
    else:
        return -1
    if not total:
        return 0
    if enclosing >= deepest:
        return -1
    if total >= most:
        return total
    inner = enclosing + 1
    for item in items:
        kind = type(item)
        if kind is int:
            if _MIN_INT <= item < _INT_BOUND:
                continue
            return -1
        if kind in _LEAF_TYPES:
            continue
        inside = _declared(item, inner, deepest, most)
        if inside < 0:
            return -1
        total += inside
        if total >= most:
            return total
    return total


def encode_checked(value: list[Any]) -> bytes:
    """Encode `value` (as `encode` would) when its caller has checked that it is built only of
    the subset's exact types, as `_in_subset` would find by walking it: for troth's typed
    encoders of hot formats, whose few fields are checked cheaper than the walk. Never for
    anything else: `encode` is the encoder of values from elsewhere."""
    try:
        return cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, ValueError) as exc:  # a text string that is not UTF-8
        raise DecodeError(f"cannot encode value: {exc}") from exc


_MIN_INT: Final = -(1 << 64)
_INT_BOUND: Final = 1 << 64
_LEAF_TYPES: Final = frozenset({str, bytes, bool, type(None)})
"""The exact types `_in_subset` takes as they are (an int needs its range checked)."""


def _in_subset(value: Any, depth: int, budget: int) -> int:
    """What is left of `budget` (data items) once `value`'s are counted, when `value` is built
    only of exact `str`, `bytes`, `int` in [-2**64, 2**64), `bool`, None, `list`/`tuple` and
    `dict` with `str` keys: cbor2 encodes each of these as the subset does (text, byte string,
    shortest integer, false/true/null, definite array, definite map sorted by its encoded
    keys), so the result needs no scan. -1 means "not certain" (the caller scans), never
    "refused": so is a container `depth` levels in at `MAX_CBOR_ENCODE_DEPTH` (`_copied`
    refuses it; with a raised recursion limit this walk went on and cbor2's C encoder crashed
    the process: review 64v, api 1), and items past `budget` (the walk stops there: a value
    sharing its sub-objects has as many as paths, review 65b, cbor 1). Strings are not
    counted: the `_Bounded` writer bounds the bytes written (review 65q, cbor 1; counting
    them here cost the hot path a quarter more bytecodes, review 65y). Hot path: exact type
    checks, one level inlined."""
    kind = type(value)
    if kind in _LEAF_TYPES:
        return budget
    if kind is int:
        return budget if _MIN_INT <= value < _INT_BOUND else -1
    if depth >= limits.MAX_CBOR_ENCODE_DEPTH:
        return -1
    if kind is list or kind is tuple:
        items = value
        budget -= len(value)
    elif kind is dict:
        for key in value:
            if type(key) is not str:
                return -1
        items = value.values()
        budget -= 2 * len(value)
    else:
        return -1
    if budget < 0:
        return -1
    for item in items:
        kind = type(item)
        if kind is int:
            if _MIN_INT <= item < _INT_BOUND:
                continue
            return -1
        if kind not in _LEAF_TYPES:
            budget = _in_subset(item, depth + 1, budget)
            if budget < 0:
                return -1
    return budget


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = limits.MAX_CBOR_BYTES,
    max_depth: int = limits.MAX_CBOR_DEPTH,
    max_items: int = limits.MAX_CBOR_ITEMS,
) -> Any:
    """Decode one canonical CBOR document within the given limits, or raise `DecodeError`."""
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(
            f"document of {len(data)} bytes is over the limit of {max_bytes}",
            DecodeProblem.OVER_LIMIT,
        )
    if _FAST_PATH and len(data) <= _FAST_BYTES and len(data) <= max_items:
        value = _decode_small(data, max_depth)
        if value is not _NOT_DECIDED:
            return value
    _scan(data, max_depth, max_items)
    try:
        return cbor2.loads(data, allow_indefinite=False, allow_duplicate_keys=False)
    except Exception as exc:  # after the scan only bad UTF-8 remains; one error type out
        raise DecodeError(f"malformed CBOR: {exc}") from exc


_FAST_BYTES: Final = 16 * 1024
"""Documents up to this size take the fast path (`_decode_small`); the rest only the scan."""
_NOT_DECIDED: Final = object()
_B8: Final = 1 << 8
_B16: Final = 1 << 16
_B32: Final = 1 << 32


def _refuse_tag(*_: object) -> NoReturn:
    """cbor2's decoder for every tag on the fast path: refuse before reading its content."""
    raise ValueError("tag")


class _EveryTag(dict[int, Any]):
    """A `semantic_decoders` mapping that names `_refuse_tag` for every tag number, so none of
    cbor2's own tag decoders (dates, bignums, shared and string references, sets...) runs."""

    def __missing__(self, tag: int) -> Any:
        return _refuse_tag


_EVERY_TAG: Final = _EveryTag()


def _tags_refused() -> bool:
    """Whether this cbor2 asks `_EVERY_TAG` even for the tags it decodes itself (a bignum, a
    string-reference namespace, a shared value, self-described CBOR); if not, an older or
    newer cbor2 would resolve them, and the fast path stays off (every document is scanned)."""
    return all(
        _refused(bytes.fromhex(probe)) for probe in ("c24101", "d9010080", "d81c80", "d9d9f700")
    )


def _refused(probe: bytes) -> bool:
    """Whether cbor2 refuses `probe` (a tagged document) with every tag refused."""
    try:
        cbor2.loads(probe, semantic_decoders=_EVERY_TAG, tag_hook=_refuse_tag)
    except Exception:  # refused, as it must be
        return True
    return False


_FAST_PATH: Final = _tags_refused()


class _NotCanonical(Exception):
    """Raised by `_canonical_size` for a value the fast path cannot accept."""


def _decode_small(data: bytes, max_depth: int) -> Any:
    """The fast path of `decode` (see the module docstring): the value of `data` when the scan
    would accept it, else `_NOT_DECIDED` (the caller scans, which raises the reason)."""
    try:
        value = cbor2.loads(
            data,
            semantic_decoders=_EVERY_TAG,
            tag_hook=_refuse_tag,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        )
        size = _canonical_size(value, 0, max_depth - 1)
    except Exception:  # cbor2's refusals, _NotCanonical, RecursionError: the scan names why
        return _NOT_DECIDED
    return value if size == len(data) else _NOT_DECIDED


def _canonical_size(value: Any, enclosing: int, deepest: int) -> int:
    """The size of `value`'s canonical encoding, walking it as the scan walks the bytes:
    `_NotCanonical` for a type outside the subset, a map key that is not text or not above
    the previous one, or a non-empty container inside `deepest` others. Hot path: the scalars
    of arrays handled inline, each header's size (1, 2, 3, 5 or 9 bytes) written out."""
    kind = type(value)
    if kind is list or kind is dict:
        count = len(value)
        if not count:
            return 1
        if enclosing >= deepest:
            raise _NotCanonical
        total = 1 if count < 24 else 2 if count < _B8 else 3 if count < _B16 else 5
        inner = enclosing + 1
        if kind is dict:
            previous_size, previous = -1, ""
            for key, item in value.items():
                if type(key) is not str:
                    raise _NotCanonical
                # RFC 8949 §4.2.1 order of encoded text keys: by UTF-8 length (the header),
                # then bytewise, which for UTF-8 is code point order (str comparison)
                n = len(key) if key.isascii() else len(key.encode())
                if n < previous_size or (n == previous_size and key <= previous):
                    raise _NotCanonical
                previous_size, previous = n, key
                total += n + (1 if n < 24 else 2 if n < _B8 else 3 if n < _B16 else 5)
                total += _canonical_size(item, inner, deepest)
            return total
        for item in value:
            kind = type(item)
            if kind is bytes:
                n = len(item)
                total += n + (1 if n < 24 else 2 if n < _B8 else 3 if n < _B16 else 5)
            elif kind is int:
                n = item if item >= 0 else ~item
                total += 1 if n < 24 else 2 if n < _B8 else 3 if n < _B16 else 5 if n < _B32 else 9
            elif kind is str:
                n = len(item) if item.isascii() else len(item.encode())
                total += n + (1 if n < 24 else 2 if n < _B8 else 3 if n < _B16 else 5)
            else:
                total += _canonical_size(item, inner, deepest)
        return total
    if kind is bytes:
        n = len(value)
        return n + (1 if n < 24 else 2 if n < _B8 else 3 if n < _B16 else 5)
    if kind is int:
        n = value if value >= 0 else ~value
        return 1 if n < 24 else 2 if n < _B8 else 3 if n < _B16 else 5 if n < _B32 else 9
    if kind is str:
        n = len(value) if value.isascii() else len(value.encode())
        return n + (1 if n < 24 else 2 if n < _B8 else 3 if n < _B16 else 5)
    if kind is bool or value is None:
        return 1
    raise _NotCanonical


def _scan(data: bytes, max_depth: int, max_items: int) -> None:
    """Validate the header structure of one document (see the module docstring).

    Hot path (every signed document passes here): one loop over the data items, locals only.
    `remaining` counts the items left in the innermost open container (the document itself is
    one item); in a map, an odd `remaining` after taking an item means the item is a key."""
    end = len(data)
    if not end:
        raise DecodeError("empty document")
    pos = 0
    declared = 1
    remaining = 1
    in_map = False
    previous_key = b""
    stack: list[tuple[int, bool, bytes]] = []
    depth = 0  # open containers (len(stack), kept as a local)
    deepest = max_depth - 1  # open containers allowed around a non-empty one
    while True:
        if not remaining:
            if not stack:
                break
            remaining, in_map, previous_key = stack.pop()
            depth -= 1
            continue
        if pos >= end:
            raise DecodeError(f"document ends inside a data item (at byte {pos})")
        initial = data[pos]
        start = pos
        pos += 1
        major = initial >> 5
        info = initial & 0x1F
        if info < 24:
            argument = info
        elif info < 28:
            if major >= 6:
                raise _not_allowed(data, start)
            size = 1 << (info - 24)
            if pos + size > end:
                raise DecodeError(f"document ends inside a data item (at byte {start})")
            argument = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            if argument < _SHORTEST[info - 24]:
                raise DecodeError(
                    f"argument not in shortest form (at byte {start})", DecodeProblem.NON_CANONICAL
                )
        elif info == 31:
            raise DecodeError(f"indefinite lengths are not allowed (at byte {start})")
        else:
            raise DecodeError(f"reserved additional information {info} (at byte {start})")
        remaining -= 1
        if major == 3:
            if argument > end - pos:
                raise DecodeError(f"text string runs past the end (at byte {start})")
            pos += argument
            if in_map and remaining & 1:
                key = data[start:pos]
                if key <= previous_key:
                    if key == previous_key:
                        raise DecodeError(f"duplicate map key (at byte {start})")
                    raise DecodeError(
                        f"map keys not in canonical order (at byte {start})",
                        DecodeProblem.NON_CANONICAL,
                    )
                previous_key = key
            continue
        if in_map and remaining & 1:
            raise DecodeError(f"map keys must be text strings (at byte {start})")
        if major < 2:  # unsigned and negative integers: always within [-2**64, 2**64)
            continue
        if major == 2:
            if argument > end - pos:
                raise DecodeError(f"byte string runs past the end (at byte {start})")
            pos += argument
            continue
        if major < 6:  # array (4) or map (5)
            if argument:
                if major == 5:
                    argument *= 2
                declared += argument
                if declared > max_items:
                    raise DecodeError(f"more than {max_items} data items", DecodeProblem.OVER_LIMIT)
                if depth >= deepest:
                    raise DecodeError(f"nested deeper than {max_depth}", DecodeProblem.OVER_LIMIT)
                stack.append((remaining, in_map, previous_key))
                depth += 1
                remaining = argument
                in_map = major == 5
                previous_key = b""
            continue
        if initial not in _FALSE_TRUE_NULL:
            raise _not_allowed(data, start)
    if pos != end:
        raise DecodeError(
            f"{end - pos} trailing bytes after the document", DecodeProblem.TRAILING_BYTES
        )


def _not_allowed(data: bytes, start: int) -> DecodeError:
    """The error for a tag, float or simple value at `start` (cold path: names what it is)."""
    initial = data[start]
    if initial >> 5 == 6:
        info = initial & 0x1F
        if info < 24:
            tag = info
        else:
            size = 1 << (info - 24)
            tag = int.from_bytes(data[start + 1 : start + 1 + size], "big")
        what = _TAG_NAMES.get(tag, f"tag {tag}")
        return DecodeError(f"CBOR tags are not allowed: {what} (at byte {start})")
    what = _MAJOR7_NAMES.get(initial, "a simple value")
    return DecodeError(f"floats and simple values are not allowed: {what} (at byte {start})")


# -- typed field access for format decoders ---------------------------------------------------
# cbor2 yields exact built-in types, so exact `type(...) is` checks suffice (and are faster than
# isinstance on this hot path); they also refuse bool where an integer is expected.


def expect_array(value: Any, what: str, length: int | None = None) -> list[Any]:
    """`value` as an array (of exactly `length` elements when given), else `DecodeError`."""
    if type(value) is not list:
        raise DecodeError(f"{what}: expected an array")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what}: expected {length} elements, got {len(value)}")
    return value


def expect_bytes(value: Any, what: str, length: int | None = None) -> bytes:
    """`value` as a byte string (of exactly `length` bytes when given), else `DecodeError`."""
    if type(value) is not bytes:
        raise DecodeError(f"{what}: expected a byte string")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(value)}")
    return value


def expect_int(value: Any, what: str, minimum: int = 0) -> int:
    """`value` as an integer (not a bool) of at least `minimum`, else `DecodeError`."""
    if type(value) is not int:
        raise DecodeError(f"{what}: expected an integer")
    if value < minimum:
        raise DecodeError(f"{what}: {value} is below {minimum}")
    return value


def expect_text(value: Any, what: str) -> str:
    """`value` as a text string, else `DecodeError`."""
    if type(value) is not str:
        raise DecodeError(f"{what}: expected a text string")
    return value


def expect_header(value: list[Any], type_tag: str, version: int, what: str) -> None:
    """Check the [type tag, version, ...] header every troth document starts with."""
    if not value or value[0] != type_tag:
        raise DecodeError(f"{what}: type tag is not {type_tag!r}", DecodeProblem.UNKNOWN_TYPE)
    if len(value) < 2 or isinstance(value[1], bool) or value[1] != version:
        raise DecodeError(f"{what}: unknown version", DecodeProblem.UNKNOWN_VERSION)
