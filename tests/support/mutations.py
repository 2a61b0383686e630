"""Mutations of valid encodings for fuzzing decoders (tests/test_decoders_mutated_*.py): byte-level
edits, and for CBOR and JSON a drawn value put at a drawn place (also inside nested CBOR byte
strings and JSON text strings), encoded again; `typed`, the rule every decoder is held to."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from troth.crypto import KeyType
from troth.crypto.private import load_private_key
from troth.encoding import cbor
from troth.errors import DecodeError, TrothError

MUTATIONS = ("flip", "replace", "truncate", "extend", "delete", "duplicate", "insert")


@st.composite
def byte_mutation(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with one to three byte-level mutations applied."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(MUTATIONS))
        size = len(data)
        at = draw(st.integers(0, max(size - 1, 0)))
        if op == "flip" and size:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "replace" and size:
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=16))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op in ("delete", "duplicate") and size:
            end = draw(st.integers(at, min(size, at + 64)))
            if op == "delete":
                del data[at:end]
            else:
                data[at:at] = data[at:end]
    return bytes(data)


CBOR_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    st.sampled_from([0, 1, 2, -1, 255, 256, 2**31, 2**32, 2**63 - 1, 2**64 - 1, -(2**64)]),
    st.binary(max_size=40),
    st.text(max_size=20),
    st.sampled_from(["troth.credential", "troth.identity.history", "", "\x00"]),
)
CBOR_VALUES = st.recursive(
    CBOR_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _nested(value: bytes) -> Any:
    """`value` decoded when it is itself a canonical CBOR array (a signed body), else None."""
    if not value or value[0] >> 5 != 4:
        return None
    try:
        return cbor.decode(value)
    except DecodeError:
        return None


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded CBOR value (a path of list indices and map keys; the marker
    "cbor" steps into a byte string holding nested CBOR)."""
    out = [path]
    if isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, bytes):
        inner = _nested(value)
        if inner is not None:
            out += _paths(inner, (*path, "cbor"))
    return out


def _substitute(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    step, rest = path[0], path[1:]
    if step == "cbor" and isinstance(value, bytes):
        return cbor.encode(_substitute(cbor.decode(value), rest, new))
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[step] = _substitute(copy[step], rest, new)
    return copy


@st.composite
def cbor_mutation(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` decoded, one place (maybe inside a nested body) replaced by a drawn value
    (or, for a list, an item dropped or appended), and encoded again canonically."""
    decoded = cbor.decode(original)
    path = draw(st.sampled_from(_paths(decoded)))
    new = draw(CBOR_VALUES)
    # a list also grows or shrinks, or a value is wrapped (nesting deeper)
    shape = draw(st.sampled_from(("replace", "append", "drop", "wrap")))
    current: Any = decoded
    for step in path:
        current = cbor.decode(current) if step == "cbor" else current[step]
    if shape == "append" and isinstance(current, list):
        new = [*current, new]
    elif shape == "drop" and isinstance(current, list) and current:
        new = current[:-1]
    elif shape == "wrap":
        new = [current]
    return cbor.encode(_substitute(decoded, path, new))


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**53, 2**63, 10**400, 1.5, 1e308, -0.0]),
    st.text(max_size=20),
    st.sampled_from(["", "did:troth:", "troth.trace.proof", "\u0000", "\ud800x"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _json_nested(value: str) -> Any:
    """`value` parsed when it is itself a JSON object (an envelope in a bundle), else None."""
    if not value.startswith("{"):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _json_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, list):
        for i, item in enumerate(value):
            out += _json_paths(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            out += _json_paths(item, (*path, key))
    elif isinstance(value, str) and _json_nested(value) is not None:
        out += _json_paths(_json_nested(value), (*path, "json"))
    return out


def _json_substitute(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    step, rest = path[0], path[1:]
    if step == "json" and isinstance(value, str):
        return json.dumps(_json_substitute(json.loads(value), rest, new), separators=(",", ":"))
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[step] = _json_substitute(copy[step], rest, new)
    return copy


@st.composite
def json_mutation(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` parsed, one place replaced by a drawn JSON value (or a key dropped, a list
    item dropped or appended, a value wrapped in a list), and written again."""
    decoded = json.loads(original)
    path = draw(st.sampled_from(_json_paths(decoded)))
    new = draw(JSON_VALUES)
    shape = draw(st.sampled_from(("replace", "append", "drop", "wrap")))
    current: Any = decoded
    for step in path:
        current = json.loads(current) if step == "json" else current[step]
    if shape == "append" and isinstance(current, list):
        new = [*current, new]
    elif shape == "drop" and isinstance(current, list | dict) and current:
        new = current[:-1] if isinstance(current, list) else dict(list(current.items())[:-1])
    elif shape == "wrap":
        new = [current]
    text = json.dumps(_json_substitute(decoded, path, new), ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


def mutated(
    original: bytes, *, is_cbor: bool = False, is_json: bool = False
) -> st.SearchStrategy[bytes]:
    if is_cbor:
        return st.one_of(byte_mutation(original), cbor_mutation(original))
    if is_json:
        return st.one_of(byte_mutation(original), json_mutation(original))
    return byte_mutation(original)


def as_text(data: bytes) -> str:
    """Mutated bytes as the str a JSON value or header carries (every code point 0-255)."""
    return data.decode("latin-1")


# pieces of Cedar (and JSON) a hostile signer repeats: nesting, operator chains, big numbers,
# extension calls, patterns, escapes (docs/policy.md; limits MAX_CEDAR_NESTING, _OPERATORS)
SNIPPETS = (
    *("(", "[", "{a:", "!", "-", "if true then ", "&& true ", "+ 1 ", ".a", " has a", " is A"),
    *('"\\u{110000}"', '"\\', "9223372036854775808", "-9223372036854775808", "0x1"),
    *('decimal("1.00000")', 'ip("::1/129")', ' like "****"', ".contains(", "__cedar::", "\x00"),
    *('{"type":', '{"type":"array","items":', "1e999", '"\\ud800"', "[[[[[[[["),
)


@st.composite
def resigned_text(draw: st.DrawFn, body: list[Any], at: tuple[Any, ...]) -> bytes:
    """`body` with the text at path `at` mutated (as code points 0-255, or a snippet repeated
    and inserted), encoded again."""
    current: Any = body
    for step in at:
        current = current[step]
    if draw(st.booleans()):
        text = as_text(draw(mutated(current.encode())))
    else:
        where = draw(st.integers(0, len(current)))
        piece = draw(st.sampled_from(SNIPPETS)) * draw(st.sampled_from([1, 2, 65, 300, 2049]))
        text = current[:where] + piece + current[where:]
    return cbor.encode(_substitute(body, at, text))


def typed(
    call: Callable[[bytes], object],
    data: bytes,
    *,
    valid_if: Callable[[Any], bool] | None = None,
    documented: tuple[type[Exception], ...] = (),
) -> object:
    """Run `call`: it answers or raises a TrothError (or an exception its docstring names, for
    parsers of local text). When it answers, `valid_if(answer)` must hold: the mutation left
    the input semantically valid (the same meaning, in canonical form)."""
    try:
        result = call(data)
    except TrothError:
        return None
    except documented:
        return None
    if valid_if is not None:
        assert valid_if(result), f"accepted as valid: {data.hex()}"
    return result


def canonical(data: bytes) -> bool:
    """Signed CBOR verifies only in canonical form (docs/formats.md, "Encoding")."""
    return cbor.encode(cbor.decode(data)) == data


@st.composite
def jwt_mutation(draw: st.DrawFn, token: str, ed25519_key: str) -> bytes:
    """`token` with its header or claims JSON mutated (base64url again), and maybe signed
    again with the fixed key `ed25519_key` (hex), so the claims are read: they are after it."""
    parts = token.split(".")
    at = draw(st.integers(0, 1))
    text = base64.urlsafe_b64decode(parts[at] + "=" * (-len(parts[at]) % 4))
    parts[at] = base64.urlsafe_b64encode(draw(json_mutation(text))).rstrip(b"=").decode()
    if draw(st.booleans()):
        key = load_private_key(KeyType.ED25519, bytes.fromhex(ed25519_key))
        signature = key.sign(".".join(parts[:2]).encode())
        parts[2] = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    return ".".join(parts).encode()
