"""The one JSON loader for everything troth reads as JSON (VCs, node.json, status.json):
I-JSON, RFC 7493, enforced rather than hoped for.

- the input is at most `max_bytes` bytes of UTF-8 (RFC 7493 §2.1; no BOM, RFC 8259 §8.1);
- no string (member name or value) holds a surrogate code point, paired or lone, or a
  noncharacter (§2.1): `"\\ud800"` is refused, `"\\ud83d\\ude00"` (a valid pair) is one
  code point and allowed;
- numbers: integers within [-(2**53)+1, 2**53-1], where an IEEE 754 double holds them exactly
  (§2.2), other numbers finite doubles (with `exact_numbers`, each the very double it reads
  as: a trace export line's); NaN / Infinity are refused (not JSON, RFC 8259 §6);
- no object has two members with the same name (§2.3);
- nesting at most `limits.MAX_JSON_DEPTH` levels.
Any failure raises `DecodeError`, never another exception. The top-level value may be of any
type (§4.1 only recommends an object): callers check the shape they expect.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, DecimalException
from typing import Any, Final, NoReturn

from troth import limits
from troth.errors import DecodeError, DecodeProblem

__all__ = ["MAX_SAFE_INTEGER", "load_json"]

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer an IEEE 754 double holds exactly (RFC 7493 §2.2)."""
_NONCHARACTERS: Final = "\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17)
)
_FORBIDDEN: Final = re.compile(f"[\ud800-\udfff{_NONCHARACTERS}]")


def load_json(
    data: bytes, *, max_bytes: int, what: str = "JSON document", exact_numbers: bool = False
) -> Any:
    """Parse one I-JSON document of at most `max_bytes` bytes, or raise `DecodeError`.
    `exact_numbers`: a number with a fraction or an exponent must be the double it reads as
    (`_exact_double`: what troth writes; a document whose numbers another reader could take
    for others than the ones checked, review 75e, traceverify 3)."""
    if len(data) > max_bytes:
        raise DecodeError(
            f"{what}: {len(data)} bytes is over the limit of {max_bytes}", DecodeProblem.OVER_LIMIT
        )
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{what}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_exact_double if exact_numbers else _double,
            parse_constant=_constant,
        )
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}", exc.problem) from None
    except RecursionError:
        raise DecodeError(
            f"{what}: nested deeper than {limits.MAX_JSON_DEPTH}", DecodeProblem.OVER_LIMIT
        ) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise DecodeError(f"{what}: not JSON ({exc})") from None
    _check_strings_and_depth(value, what)
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DecodeError(f"duplicate member name {name!r} (RFC 7493 §2.3)")
            seen.add(name)
    return result


def _integer(text: str) -> int:
    # 16 digits and a sign hold every safe integer; longer is refused before int() parses it
    value = int(text) if len(text) <= 17 else MAX_SAFE_INTEGER + 1
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise DecodeError(
            f"integer {text[:24]}{'...' if len(text) > 24 else ''} is outside "
            f"±(2**53-1) (RFC 7493 §2.2)"
        )
    return value


def _double(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DecodeError(f"number {text[:24]} is beyond an IEEE 754 double (RFC 7493 §2.2)")
    return value


def _exact_double(text: str) -> float:
    """`_double`, refusing a literal that is not the double it reads as: digits past a double's
    precision (`20.000000000000001`, read as 20), a nonzero number that underflows (`1e-400`,
    read as 0), an exponent past `Decimal`'s range (`1e-99999999999999999999`, never a
    double's shortest form). Any literal numerically equal to the shortest that reads back
    (what Python, JavaScript and RFC 8785 write: `0.1`, `1e+20`, `100.0`) passes (RFC 7493
    §2.2: no greater precision than a double's)."""
    value = _double(text)
    try:  # an exponent past Decimal's range raises (review 75h, traceverify2 1): refused
        exact = Decimal(text) == Decimal(repr(value))
    except DecimalException:
        exact = False
    if not exact:
        raise DecodeError(
            f"number {text[:24]}{'...' if len(text) > 24 else ''} is not the double"
            f" it reads as ({value!r}: RFC 7493 §2.2)"
        )
    return value


def _constant(name: str) -> NoReturn:
    raise DecodeError(f"{name} is not a JSON number (RFC 8259 §6)")


def _check_strings_and_depth(value: Any, what: str) -> None:
    """Refuse surrogates and noncharacters in any string (RFC 7493 §2.1), and deep nesting."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if type(item) is str:
            strings = [item]
        elif type(item) is dict or type(item) is list:
            if depth >= limits.MAX_JSON_DEPTH:
                raise DecodeError(
                    f"{what}: nested deeper than {limits.MAX_JSON_DEPTH}",
                    DecodeProblem.OVER_LIMIT,
                )
            strings = list(item) if type(item) is dict else []
            children = item.values() if type(item) is dict else item
            stack.extend((child, depth + 1) for child in children)
        else:
            continue
        for text in strings:
            if found := _FORBIDDEN.search(text):
                raise DecodeError(
                    f"{what}: string holds U+{ord(found.group()):04X}, a surrogate or "
                    "noncharacter (RFC 7493 §2.1)"
                )
