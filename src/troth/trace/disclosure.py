"""Disclosures of a trace record (docs/formats.md, "Trace records"): a redactable value (tool
arguments and result, the inputs the agent received, the reasoning it stated) is never in the
signed payload, which holds a salted commitment to it (`commitment`); the value travels beside
the record as a `Disclosure` that can be deleted without touching the signed bytes or the log.
Disclosed values, which may hold anything, are encoded by `rfc8785` itself (strings through the
payload's string encoder). troth.trace.record re-exports every name here."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import rfc8785

from troth import limits
from troth.crypto import sha256
from troth.encoding.ijson import MAX_SAFE_INTEGER, load_json
from troth.errors import DecodeError, DecodeProblem
from troth.trace.record_text import _HEX32, _hex, _text

__all__ = [
    "REDACTABLE",
    "Disclosure",
    "commitment",
    "disclosed",
    "disclosure_value",
    "encode_disclosures",
    "exported_value",
    "is_canonical_value",
]

REDACTABLE: Final = ("args", "result", "inputs", "reasoning")
_DISCLOSURE_DOMAIN: Final = b"troth.trace.disclosure/1\x00"
_COMMITMENT_PREFIX: Final = {
    name: _DISCLOSURE_DOMAIN + name.encode() + b"\x00" for name in REDACTABLE
}


@dataclass(frozen=True, slots=True, init=False)
class Disclosure:
    """A redactable value and the salt of its commitment: kept beside the record, deletable."""

    salt: bytes
    value: bytes  # the value's RFC 8785 canonical JSON

    def __init__(self, salt: bytes, value: bytes) -> None:
        if len(salt) != 16:
            raise ValueError("a disclosure salt is 16 bytes")
        if len(value) > limits.MAX_TRACE_DISCLOSURE_BYTES:
            raise ValueError(f"a disclosed value is at most {limits.MAX_TRACE_DISCLOSURE_BYTES}")
        _set_salt(self, salt)  # frozen: through the slots (object.__setattr__ is slower)
        _set_value(self, value)

    def to_json(self) -> dict[str, Any]:
        """As an export carries it; DecodeError when the value is not I-JSON (a crafted log's
        stored disclosure: review 54d, json 1)."""
        return {"salt": self.salt.hex(), "value": exported_value(self.value)}

    @classmethod
    def from_json(cls, value: Any, what: str) -> Disclosure:
        """A disclosure as exported: {"salt": hex, "value": any JSON value}."""
        if type(value) is not dict or set(value) != {"salt", "value"}:
            raise DecodeError(f"{what}: expected {{salt, value}}")
        salt = _hex(value["salt"], f"{what} salt", _HEX32)
        try:
            return cls(salt, disclosure_value(value["value"]))
        except ValueError as exc:
            raise DecodeError(f"{what}: {exc}", DecodeProblem.OVER_LIMIT) from None


_set_salt = vars(Disclosure)["salt"].__set__  # the slot descriptors
_set_value = vars(Disclosure)["value"].__set__


def disclosure_value(value: Any) -> bytes:
    """The canonical JSON (RFC 8785, the `rfc8785` library) of a value to commit to. A string
    without surrogates takes the standard encoder (the same bytes: RFC 8785 §3.2.2.2 escapes
    exactly what it escapes; a surrogate fails its UTF-8 encoding). ValueError for what is no
    JSON value, a value nested past the encoder too."""
    if type(value) is str:
        try:
            return _text(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 refuses it
            pass
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValueError(f"not a JSON value: {exc}") from None
    except RecursionError:  # a bare RecursionError from signing (review 74p, records2 2)
        raise ValueError("not a JSON value: nested past the encoder") from None


_EXPORT_NESTING: Final = 3
"""How deep an export line holds a disclosure's value: {"disclosures": {name: {"value": ...}}}."""


def exported_value(value: bytes) -> Any:
    """The JSON value `value` as an export's verifier reads it back: I-JSON (`load_json`: no
    noncharacter, not too deep once nested in the line); DecodeError otherwise."""
    parsed = load_json(
        b"[" * _EXPORT_NESTING + value + b"]" * _EXPORT_NESTING,  # as deep as in a line
        max_bytes=limits.MAX_TRACE_LINE_BYTES,
        what="disclosed value",
    )
    for _ in range(_EXPORT_NESTING):
        if type(parsed) is not list or len(parsed) != 1:  # `1],[2`: not one value
            raise DecodeError("disclosed value: not one JSON value")
        parsed = parsed[0]
    return parsed


def is_canonical_value(value: bytes) -> bool:
    """Whether `value` is the canonical JSON (RFC 8785) of a JSON value an export line can
    carry: what `disclosure_value` makes, what an export's verifier reads back
    (`exported_value`) and recomputes. A disclosure in any other form would not open its
    commitment, or not load, in an export."""
    try:
        return disclosure_value(exported_value(value)) == value
    except (DecodeError, ValueError, RecursionError):  # not I-JSON, or not canonical
        return False


_SHALLOW: Final = 16
"""Openers (`[`, `{`) an ASCII disclosure may hold and be taken as exportable unparsed: it
nests no deeper than that, well within what an export line carries."""


_LONG_DIGITS: Final = re.compile(rb"(?:^|[\[,:])-?[0-9]{16}")
"""A number of 16 digits or more: possibly an integer past 2**53 - 1 (`9007199254740992` has
16), which RFC 8785 writes for a double of integral value below 1e21 (`1e16`:
`10000000000000000`) and no export's verifier reads (I-JSON): such a value takes the full check
(review 75h, traceverify2 2: taken as exportable, signing it raised). A number in canonical
JSON starts the value or follows `[`, `,` or `:` (no whitespace); 16 digits after anything
else are text (a card number: review 75m, numbers 2, they took the full check), and text
holding `:` before 16 digits takes it too."""


def _exportable(encoded: bytes) -> bool:
    """Whether a disclosure's canonical JSON is a value an export line carries
    (`is_canonical_value`: `sign_record` refuses a record holding any other), checked in full
    only past the cheap case of a shallow ASCII value of no long number (`_LONG_DIGITS`)."""
    if (
        encoded.isascii()
        and encoded.count(b"[") + encoded.count(b"{") <= _SHALLOW
        and _LONG_DIGITS.search(encoded) is None
    ):
        return True
    return is_canonical_value(encoded)


def disclosed(value: Any, limit: int = limits.MAX_TRACE_DISCLOSURE_BYTES) -> Any:
    """`value` as a value to disclose in a record that must be signed whatever the value (a
    caller's arguments, a model's output): itself when it is JSON within `limit` bytes that an
    export carries, else what it was (`{"not_json": type}`: not JSON, a lone surrogate, nested
    too deep to encode) or its hash and size (`{"sha256": hex, "bytes": n}`: over the limit,
    or nested too deep or holding a noncharacter; holding an integer past 2**53 - 1, the
    hash of its canonical JSON with that integer in full, `_in_full`: review 75m, numbers 1),
    which signing would refuse (review 23c: a gate's recorder; review 30c: the span
    processor). A value that is itself an object of
    either shape is disclosed by its hash and size too, so no value given reads as the hash
    of another (review 32b, trace 1)."""
    try:
        encoded = disclosure_value(value)
    except (ValueError, RecursionError):  # not JSON, or nested past the encoder
        whole = _in_full(value)  # JSON but for an integer past 2**53 - 1: by its hash
        if whole is None:
            return {"not_json": type(value).__name__}
        return {"sha256": sha256(whole).hex(), "bytes": len(whole)}
    if len(encoded) > limit or not _exportable(encoded) or _marker_shaped(value):
        return {"sha256": sha256(encoded).hex(), "bytes": len(encoded)}
    return value


def _in_full(value: Any) -> bytes | None:
    """The canonical JSON of `value` (RFC 8785) with each integer past ±(2**53 - 1), which
    RFC 8785 refuses, written in full (its decimal digits; JSON, not I-JSON: a caller's
    arguments the MCP gate decoded exactly, review 75m, numbers 1); None when `value` is no
    JSON otherwise too, or such an integer has no text (past Python's digit limit). Each such
    integer stands in the encoding as a quoted random token and its index (no value holds it
    but by chance of 2**-128), then replaced by its digits (members are sorted: by index)."""
    token = secrets.token_hex(16)
    digits: list[bytes] = []

    def whole(item: Any) -> Any:  # rfc8785's own tests of a value's type, in its order
        if item is None or isinstance(item, bool | str | float):
            return item
        if isinstance(item, int):
            number = int(item)
            if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
                return item
            digits.append(str(number).encode())  # ValueError past the digit limit
            return f"{token}-{len(digits) - 1}"
        if isinstance(item, list | tuple):
            return [whole(inner) for inner in item]
        if isinstance(item, dict):
            return {name: whole(inner) for name, inner in dict(item).items()}
        return item  # no JSON: rfc8785 refuses it below

    try:
        encoded = disclosure_value(whole(value))
    except (ValueError, RecursionError):
        return None
    placed = re.compile(b'"' + token.encode() + b'-([0-9]+)"')
    written, count = placed.subn(lambda found: _placed(digits, found), encoded)
    if not digits or count != len(digits):  # none, or the token held by chance
        return None
    return written


def _placed(digits: list[bytes], found: re.Match[bytes]) -> bytes:
    """The digits of the integer a placeholder names; the placeholder itself when a string
    held the token with an index past them (by chance: `_in_full` then counts one too many and
    falls back; review 75s, disclosed 2, it raised IndexError)."""
    index = int(found[1])
    return digits[index] if index < len(digits) else found[0]


_MARKERS: Final = (frozenset({"sha256", "bytes"}), frozenset({"not_json"}))
"""The keys of what `disclosed` puts in a value's place."""


def _marker_shaped(value: Any) -> bool:
    """Whether `value` is an object with the keys of one of `disclosed`'s stand-ins."""
    return isinstance(value, Mapping) and len(value) <= 2 and frozenset(value) in _MARKERS


def commitment(name: str, disclosure: Disclosure) -> bytes:
    """SHA-256("troth.trace.disclosure/1" 0x00 || field name || 0x00 || salt || value): the
    128-bit random salt keeps a value from a small domain (a decision, an amount) from being
    found by hashing every candidate."""
    prefix = _COMMITMENT_PREFIX.get(name) or _DISCLOSURE_DOMAIN + name.encode() + b"\x00"
    return sha256(prefix + disclosure.salt + disclosure.value)


_ascii_text: Final = json.encoder.encode_basestring_ascii  # a string as json.dumps writes it
_QUOTED: Final = {name: _ascii_text(name) for name in REDACTABLE}


def encode_disclosures(disclosures: Mapping[str, Disclosure]) -> bytes | None:
    """How the log keeps a record's disclosures: JSON {field: [salt hex, value]} (the value is
    the canonical JSON text that was committed to, as a string). Storage only: exports carry
    `Disclosure.to_json`."""
    if not disclosures:
        return None
    # json.dumps(that object, separators=(",", ":")) byte for byte (the tests check it),
    # written without building the object
    members = [
        f'{_QUOTED.get(name) or _ascii_text(name)}:["{d.salt.hex()}",'
        f"{_ascii_text(d.value.decode())}]"
        for name, d in disclosures.items()
    ]
    return ("{" + ",".join(members) + "}").encode()
