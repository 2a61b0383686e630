"""Deterministic CBOR (RFC 8949) over cbor2, and the one strict decoder every format uses.

Encoding is cbor2's canonical mode: shortest-form integers and lengths, definite lengths only,
map keys in length-first order (RFC 8949 §4.2.3, the RFC 7049 canonical order).

Decoding accepts exactly the documents that encoding produces, so each value has one byte form
and a signed body can never be re-encoded into something else:
- integers (|n| < 2**64), byte strings, text strings, arrays, maps keyed by integers or text,
  booleans and null; no tags, floats, undefined or simple values;
- no indefinite lengths, no duplicate map keys, no trailing bytes, no non-shortest forms;
- at most `limits.MAX_CBOR_BYTES` bytes, `MAX_CBOR_DEPTH` levels and `MAX_CBOR_ITEMS` items.
Any failure raises `DecodeError`, never another exception.
"""

from __future__ import annotations

import itertools
from typing import Any, NoReturn

import cbor2

from troth import limits
from troth.errors import DecodeError, DecodeProblem

__all__ = [
    "decode",
    "encode",
    "expect_array",
    "expect_bytes",
    "expect_header",
    "expect_int",
    "expect_text",
]

_INT_BOUND = 1 << 64
_SCALAR_TYPES = frozenset({bytes, str, bool, type(None)})


def encode(value: Any) -> bytes:
    """Encode `value` deterministically. Raises `DecodeError` for values troth cannot encode."""
    try:
        return cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise DecodeError(f"cannot encode value: {exc}") from exc


def _reject_tag(decoder: object, tag: object) -> NoReturn:
    raise DecodeError("CBOR tags are not allowed")


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
    if not data:
        raise DecodeError("empty document")
    try:
        value = cbor2.loads(
            data,
            tag_hook=_reject_tag,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=max_depth,
        )
    except DecodeError:
        raise
    except Exception as exc:  # cbor2 raises several types (and RecursionError); one error out
        problem = DecodeProblem.OVER_LIMIT if "depth" in str(exc) else DecodeProblem.MALFORMED
        raise DecodeError(f"malformed CBOR: {exc}", problem) from exc
    text_keyed_maps = _check_items(value, max_depth, max_items)
    # Maps whose text keys are already in canonical order re-encode the same either way, and
    # cbor2's non-canonical mode skips the sort (half the cost); anything else takes the sort.
    canonical = cbor2.dumps(value, canonical=not text_keyed_maps)
    if canonical != data:
        if data.startswith(canonical):
            raise DecodeError(
                f"{len(data) - len(canonical)} trailing bytes after the document",
                DecodeProblem.TRAILING_BYTES,
            )
        raise DecodeError("not in canonical form", DecodeProblem.NON_CANONICAL)
    return value


def _in_canonical_order(keys: list[Any]) -> bool:
    """Whether text keys are in RFC 8949 §4.2.3 (length-first) order: for text keys, sorting by
    (UTF-8 length, UTF-8 bytes) equals sorting by their encodings."""
    encoded = [k.encode() for k in keys]
    return all((len(a), a) < (len(b), b) for a, b in itertools.pairwise(encoded))


def _check_items(value: Any, max_depth: int, max_items: int) -> bool:
    """Walk the decoded value: allowed types only, integer range, depth and item count.

    Hot path (every signed document is decoded through here): dispatch on exact types, and
    only containers go on the stack. Returns whether every map has only text keys, already in
    canonical order (so re-encoding needs no sort)."""
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return True
    if kind is int:
        if not -_INT_BOUND <= value < _INT_BOUND:
            raise DecodeError("integer out of range")
        return True
    if kind is not list and kind is not dict:
        raise DecodeError(f"CBOR type not allowed here: {kind.__name__}")
    items = 1
    ordered = True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if type(container) is dict:
            keys = list(container)
            for key in keys:
                if type(key) is not str:
                    if type(key) is not int:
                        raise DecodeError("map keys must be integers or text")
                    ordered = False
            if ordered and not _in_canonical_order(keys):
                ordered = False
            elements = [*keys, *container.values()]
        else:
            elements = container
        if not elements:
            continue
        if depth >= max_depth:
            raise DecodeError(f"nested deeper than {max_depth}", DecodeProblem.OVER_LIMIT)
        items += len(elements)
        if items > max_items:
            raise DecodeError(f"more than {max_items} data items", DecodeProblem.OVER_LIMIT)
        for element in elements:
            kind = type(element)
            if kind in _SCALAR_TYPES:
                continue
            if kind is int:
                if not -_INT_BOUND <= element < _INT_BOUND:
                    raise DecodeError("integer out of range")
            elif kind is list or kind is dict:
                stack.append((element, depth + 1))
            else:
                raise DecodeError(f"CBOR type not allowed here: {kind.__name__}")
    return ordered


# -- typed field access for format decoders ---------------------------------------------------
# cbor2 yields exact built-in types, so exact `type(...) is` checks suffice (and are faster than
# isinstance on this hot path); they also refuse bool where an integer is expected.


def expect_array(value: Any, what: str, length: int | None = None) -> list[Any]:
    if type(value) is not list:
        raise DecodeError(f"{what}: expected an array")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what}: expected {length} elements, got {len(value)}")
    return value


def expect_bytes(value: Any, what: str, length: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(f"{what}: expected a byte string")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(value)}")
    return value


def expect_int(value: Any, what: str, minimum: int = 0) -> int:
    if type(value) is not int:
        raise DecodeError(f"{what}: expected an integer")
    if value < minimum:
        raise DecodeError(f"{what}: {value} is below {minimum}")
    return value


def expect_text(value: Any, what: str) -> str:
    if type(value) is not str:
        raise DecodeError(f"{what}: expected a text string")
    return value


def expect_header(value: list[Any], type_tag: str, version: int, what: str) -> None:
    """Check the [type tag, version, ...] header every troth document starts with."""
    if not value or value[0] != type_tag:
        raise DecodeError(f"{what}: type tag is not {type_tag!r}", DecodeProblem.UNKNOWN_TYPE)
    if len(value) < 2 or isinstance(value[1], bool) or value[1] != version:
        raise DecodeError(f"{what}: unknown version", DecodeProblem.UNKNOWN_VERSION)
