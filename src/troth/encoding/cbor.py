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
_SCALARS = (bytes, str, bool, type(None))


def encode(value: Any) -> bytes:
    """Encode `value` deterministically. Raises `DecodeError` for values troth cannot encode."""
    try:
        return cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise DecodeError(f"cannot encode value: {exc}") from exc


def _reject_tag(decoder: object, tag: object) -> NoReturn:
    raise DecodeError("CBOR tags are not allowed")


def decode(
    data: bytes,
    *,
    max_bytes: int = limits.MAX_CBOR_BYTES,
    max_depth: int = limits.MAX_CBOR_DEPTH,
    max_items: int = limits.MAX_CBOR_ITEMS,
) -> Any:
    """Decode one canonical CBOR document within the given limits, or raise `DecodeError`."""
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
    _check_items(value, max_depth, max_items)
    canonical = cbor2.dumps(value, canonical=True)
    if canonical != data:
        if data.startswith(canonical):
            raise DecodeError(
                f"{len(data) - len(canonical)} trailing bytes after the document",
                DecodeProblem.TRAILING_BYTES,
            )
        raise DecodeError("not in canonical form", DecodeProblem.NON_CANONICAL)
    return value


def _check_items(value: Any, max_depth: int, max_items: int) -> None:
    """Walk the decoded value: allowed types only, integer range, depth and item count."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    items = 0
    while stack:
        item, depth = stack.pop()
        items += 1
        if items > max_items:
            raise DecodeError(f"more than {max_items} data items", DecodeProblem.OVER_LIMIT)
        if depth > max_depth:
            raise DecodeError(f"nested deeper than {max_depth}", DecodeProblem.OVER_LIMIT)
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, int):
            if not -_INT_BOUND <= item < _INT_BOUND:
                raise DecodeError("integer out of range")
        elif isinstance(item, list):
            stack.extend((element, depth + 1) for element in item)
        elif isinstance(item, dict):
            for key, element in item.items():
                if not isinstance(key, int | str) or isinstance(key, bool):
                    raise DecodeError("map keys must be integers or text")
                stack.append((key, depth + 1))
                stack.append((element, depth + 1))
        else:
            raise DecodeError(f"CBOR type not allowed here: {type(item).__name__}")


# -- typed field access for format decoders ---------------------------------------------------


def expect_array(value: Any, what: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"{what}: expected an array")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what}: expected {length} elements, got {len(value)}")
    return value


def expect_bytes(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, bytes):
        raise DecodeError(f"{what}: expected a byte string")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(value)}")
    return value


def expect_int(value: Any, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError(f"{what}: expected an integer")
    if value < minimum:
        raise DecodeError(f"{what}: {value} is below {minimum}")
    return value


def expect_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"{what}: expected a text string")
    return value


def expect_header(value: list[Any], type_tag: str, version: int, what: str) -> None:
    """Check the [type tag, version, ...] header every troth document starts with."""
    if not value or value[0] != type_tag:
        raise DecodeError(f"{what}: type tag is not {type_tag!r}", DecodeProblem.UNKNOWN_TYPE)
    if len(value) < 2 or isinstance(value[1], bool) or value[1] != version:
        raise DecodeError(f"{what}: unknown version", DecodeProblem.UNKNOWN_VERSION)
