"""Checking what the public API's callers pass, before anything beneath sees it.

Each check returns its argument, typed, or raises `ArgumentError` naming the call, the
parameter and what it takes (review 45a, API 1: an `int` identity failed with an
AttributeError about `.startswith` deep in the identifier parser, `Node.revoke(None)` with
one about `.authority`, a ttl of "60" with a TypeError about `<=`). Types, the ranges the
layers beneath do not check, and the forms they check with a bare ValueError (a name's, a key
type's, an attribute's: review 49a, arguments 1); other values of the right type are theirs to
judge (a ticket's, a chain's). No value of the wrong type is shown in the error: a ticket or a
chain passed as one is still a secret; a name or a key type of the wrong form is shown, cut to
40 characters."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar

from troth import limits
from troth._api.results import Credential, Identity
from troth.clock import Clock
from troth.credentials import Attributes
from troth.crypto import KeyType
from troth.errors import ArgumentError, ConfigError
from troth.identity import Identifier
from troth.kinds import check_utf8, got
from troth.names import check_name

__all__ = [
    "check_anchors",
    "check_attributes",
    "check_chain",
    "check_clock",
    "check_credential",
    "check_file",
    "check_flag",
    "check_home",
    "check_identity",
    "check_key_type",
    "check_link_reason",
    "check_listen",
    "check_mapping",
    "check_name_text",
    "check_optional_text",
    "check_peer",
    "check_seconds",
    "check_text",
    "check_texts",
    "check_whole",
]

T = TypeVar("T")


_got = got


def check_text(call: str, parameter: str, value: object) -> str:
    """`value`, a str UTF-8 can encode: a lone surrogate failed beneath with whatever error the
    layer had, a purpose a CredentialError, a route a RoutingError, a method a DecodeError
    (review 59e, api 2; names were checked: review 54n, api 2)."""
    if not isinstance(value, str):
        raise ArgumentError(call, parameter, "a str", _got(value))
    return check_utf8(call, parameter, value)


def check_short_text(call: str, parameter: str, value: object, limit: str) -> str:
    """`value`, text of at most `limits.<limit>` characters, else an ArgumentError naming the
    limit, before anything is done (review 63j, api 4: the layers beneath refused it with their
    own errors, one of them "revoke takes [id, chain, reason]")."""
    text = check_text(call, parameter, value)
    most: int = getattr(limits, limit)
    if len(text) > most:
        said = f"{len(text)} characters"
        raise ArgumentError(call, parameter, f"at most {most} characters (limits.{limit})", said)
    return text


_MEMBER_REASON: Final = "MAX_MEMBER_REVOCATION_REASON_BYTES"


def check_link_reason(call: str, value: object, *, by: bytes, authority: Identifier) -> str:
    """`value`, the reason of a link revocation identity `by` (its digest) asks of `authority`:
    text of at most MAX_REVOCATION_REASON characters, and, unless `by` is the authority itself,
    of at most MAX_MEMBER_REVOCATION_REASON_BYTES of UTF-8, the bound the authority holds a
    member's (or its delegates') reason to; else an ArgumentError naming the limit, before
    anything is signed (review 70v, reasons 1: the member learnt it as the authority's
    `request invalid`)."""
    text = check_short_text(call, "reason", value, "MAX_REVOCATION_REASON")
    size = len(text.encode("utf-8"))
    most = limits.MAX_MEMBER_REVOCATION_REASON_BYTES
    if by != authority.digest and size > most:
        expected = f"at most {most} bytes of UTF-8 for a member (limits.{_MEMBER_REASON})"
        raise ArgumentError(call, "reason", expected, f"{size} bytes")
    return text


def check_optional_text(call: str, parameter: str, value: object) -> str | None:
    """`value`, a str UTF-8 can encode (`check_text`) or None."""
    if value is not None and not isinstance(value, str):
        raise ArgumentError(call, parameter, "a str or None", _got(value))
    return value if value is None else check_utf8(call, parameter, value)


def check_pin(call: str, parameter: str, value: object) -> str | None:
    """`value`, an authority pin (`IDENTIFIER:KEY`, troth.authority.client) or None: one of
    another form was the authority client's ConfigError, once the ticket was read (review 64n,
    api 8)."""
    from troth.authority.client import parse_authority_pin

    pin = check_optional_text(call, parameter, value)
    if pin is not None:
        try:
            parse_authority_pin(pin)
        except ConfigError:
            expected = "an authority pin: IDENTIFIER:KEY (hex), as `troth authority list` prints"
            raise ArgumentError(call, parameter, expected, repr(pin[:80])) from None
    return pin


def check_flag(call: str, parameter: str, value: object) -> bool:
    """`value`, a bool: a flag is never read by truthiness (review 51e, flags 4: `create="no"`
    created a node, `compromised="no"` appended a compromised rotation)."""
    if type(value) is not bool:
        raise ArgumentError(call, parameter, "a bool", _got(value))
    return value


def check_whole(
    call: str,
    parameter: str,
    value: object,
    *,
    low: int | None = None,
    high: int | None = None,
    unit: str = "",
) -> int:
    """`value`, an int (not a bool), within `low`..`high` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(call, parameter, f"a whole number{unit}", _got(value))
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{'' if low is None else low} to {'' if high is None else high}".strip()
        raise ArgumentError(call, parameter, f"a whole number{unit}, {bounds}", _number(value))
    return value


_SHOWN_BITS: Final = 64
"""Numbers shown in an ArgumentError at most this wide; a wider one is named by its width (its
digits could be more than `str` converts: a ValueError, not the ArgumentError; review 45k)."""


def _number(value: int) -> str:
    bits = value.bit_length()
    return (
        str(value)
        if bits <= _SHOWN_BITS
        else f"a {'negative ' if value < 0 else ''}number of {bits} bits"
    )


def check_identity(call: str, parameter: str, value: T) -> T:
    """`value`, a local identity reference: a name (or identifier text) or an `Identity`."""
    if not isinstance(value, str | Identity):
        raise ArgumentError(call, parameter, "an identity's name or an Identity", _got(value))
    if isinstance(value, str):  # looked up in the store: a lone surrogate (review 54n, api 2)
        check_utf8(call, parameter, value)
    return value


def check_peer(call: str, parameter: str, value: T, *, names: bool = True) -> T:
    """`value`, another identity: an `Identifier`, an `Identity`, identifier text or (`names`:
    where a node looks it up) a local name."""
    if not isinstance(value, Identifier | Identity | str):
        expected = (
            "an Identifier, an Identity, identifier text or a name"
            if names
            else "an Identifier, an Identity or identifier text"  # review 56c, docs 2
        )
        raise ArgumentError(call, parameter, expected, _got(value))
    if isinstance(value, str):  # a name is looked up in the store (review 54n, api 2)
        check_utf8(call, parameter, value)
    return value


def check_credential(call: str, parameter: str, value: object) -> Credential:
    """`value`, a `Credential` (what `enroll`, `delegate` and `credentials` return)."""
    if not isinstance(value, Credential):
        raise ArgumentError(call, parameter, "a Credential", _got(value))
    return value


def check_chain(call: str, parameter: str, value: object) -> Credential | bytes:
    """`value`, a `Credential` or a chain's bytes."""
    if not isinstance(value, Credential | bytes):
        raise ArgumentError(call, parameter, "a Credential or a chain's bytes", _got(value))
    return value


def check_mapping(call: str, parameter: str, value: T) -> T:
    """`value`, a mapping (attributes: each name to a str or an iterable of str)."""
    if not isinstance(value, Mapping):
        raise ArgumentError(call, parameter, "a mapping of names to values", _got(value))
    return value


def check_texts(call: str, parameter: str, value: object) -> Sequence[str]:
    """`value`, a sequence of str (not one str, whose letters would be taken one by one), each
    one UTF-8 can encode (`check_text`)."""
    if (
        isinstance(value, str | bytes)
        or not isinstance(value, Sequence)
        or not all(isinstance(item, str) for item in value)
    ):
        raise ArgumentError(call, parameter, "a sequence of str", _got(value))
    for item in value:
        check_utf8(call, parameter, item)
    return value


# -- review 49a, arguments 1-3: what review 45a left to the layers beneath ----------------------

_SHOWN_TEXT: Final = 40
"""Text shown in an ArgumentError at most this long (a name of 100,000 letters was echoed whole
by the ValueError beneath)."""


_SHOWN_REASON: Final = 200
"""The reason the layer beneath gave, shown at most this long."""


def _text(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_TEXT else value[:_SHOWN_TEXT] + "...")


def check_name_text(call: str, parameter: str, value: object, what: str) -> str:
    """`value`, a str of a name's form (troth.names): a node's, an identity's, a service's."""
    text = check_text(call, parameter, value)
    try:
        return check_name(text, what)
    except ValueError:
        raise ArgumentError(
            call,
            parameter,
            f"a {what} (1-{limits.MAX_NAME_LENGTH} characters a-z 0-9 . _ -, starting with a "
            "letter or digit)",
            _text(text),
        ) from None


def check_key_type(call: str, parameter: str, value: object) -> KeyType:
    """`value`, a key type's label (`ed25519`, `p256`)."""
    text = check_text(call, parameter, value)
    try:
        return KeyType.from_label(text)
    except ValueError:
        raise ArgumentError(call, parameter, "a key type, ed25519 or p256", _text(text)) from None


def check_home(call: str, parameter: str, value: object) -> Path | None:
    """`value`, a directory: a `Path`, a str or another `os.PathLike` of text (or None), one the
    system can name: not empty, no NUL, no lone surrogate but those of undecodable file-name
    bytes (review 54n, api 1: "" was the current directory, the others a ValueError or a
    UnicodeEncodeError from pathlib)."""
    return _check_path(call, parameter, value, "a directory (a Path or a str) or None")


def check_file(call: str, parameter: str, value: object) -> Path | None:
    """`value`, a file: a `Path`, a str or another `os.PathLike` of text (or None), one the
    system can name (as `check_home` takes a directory)."""
    return _check_path(call, parameter, value, "a file (a Path or a str) or None")


def _check_path(call: str, parameter: str, value: object, expected: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not isinstance(os.fspath(value), str):
        raise ArgumentError(call, parameter, expected, _got(value))
    if not os.fspath(value):  # not the current directory (review 54n, api 1)
        raise ArgumentError(call, parameter, expected, "an empty path")
    try:
        named = os.fsencode(value)
    except UnicodeEncodeError:
        raise ArgumentError(
            call, parameter, f"{expected}: text a file name can be", "a lone surrogate"
        ) from None
    if b"\0" in named:
        raise ArgumentError(call, parameter, f"{expected}: text a file name can be", "a NUL")
    return value if isinstance(value, Path) else Path(value)


def check_clock(call: str, parameter: str, value: object) -> Clock | None:
    """`value`, a `troth.clock.Clock` (anything with a `now()` method) or None; read through
    `CheckedClock`, so that a `now()` of anything but a whole number (review 54n, api 14), or
    of one that is no time from 1970 to `limits.LAST_CLOCK_READING` (review 59e, api 1), is an
    ArgumentError where it is read, not an error deep inside."""
    # checked: a `SystemClock` is read through `CheckedClock` too, as a subclass of it (review
    # 62h, api 3) and one whose now() the caller replaces on it, before or after (62l, api 5)
    if value is None or type(value) is CheckedClock:
        return value
    if not callable(getattr(value, "now", None)):
        raise ArgumentError(call, parameter, "a Clock (with a now() method) or None", _got(value))
    return CheckedClock(value, call, parameter)  # type: ignore[arg-type]  # checked: now()


class CheckedClock:
    """A caller's clock, each reading checked to be a whole number of seconds from 1970 to
    `limits.LAST_CLOCK_READING` (a test of type and range: the clock is read per call of the
    API, not in the layers' loops, which take `now`)."""

    __slots__ = ("_call", "_clock", "_parameter")

    def __init__(self, clock: Clock, call: str, parameter: str) -> None:
        self._clock, self._call, self._parameter = clock, call, parameter

    def now(self) -> int:
        now = self._clock.now()
        if type(now) is not int:
            expected = "a Clock whose now() is a whole number of seconds"
            raise ArgumentError(self._call, self._parameter, expected, f"now() of {_got(now)}")
        if not 0 <= now <= limits.LAST_CLOCK_READING:  # review 59e, api 1
            expected = (
                "a Clock whose now() is a time in Unix seconds, 1970 to 9999-12-31T23:59:59Z "
                f"(0 to {limits.LAST_CLOCK_READING})"
            )
            raise ArgumentError(self._call, self._parameter, expected, f"now() of {_number(now)}")
        return now


def check_seconds(call: str, parameter: str, value: object) -> float:
    """`value`, a number of seconds over 0 (an int or a finite float, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError(call, parameter, "a number of seconds", _got(value))
    said = _number(value) if isinstance(value, int) else repr(value)
    try:  # an int too large for a float: a bare OverflowError here (review 59k, api 2)
        seconds = float(value)
    except OverflowError:
        raise ArgumentError(call, parameter, "a number of seconds", said) from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ArgumentError(call, parameter, "a number of seconds over 0", said)
    return seconds


def check_attributes(call: str, parameter: str, value: object) -> Attributes:
    """`value`, attributes: an `Attributes`, or a mapping of names (`namespace.name`) each to a
    str or an iterable of 1-64 str. Values are read once: a collection (a list, a set) whole, as
    `Attributes` reads it, an iterator at most one past the bound, and refused past it (review
    59e, api 3: a list was cut to its first 65 values too, whose set dropped the others)."""
    if isinstance(value, Attributes):
        return value
    check_mapping(call, parameter, value)
    expected = "a mapping of attribute names to a str or an iterable of str"
    items: dict[str, str | tuple[str, ...]] = {}
    for key, given in value.items():  # type: ignore[attr-defined]  # checked: a Mapping
        if not isinstance(key, str):
            raise ArgumentError(call, parameter, expected, f"a key of type {_got(key)}")
        if isinstance(given, str):
            items[key] = given
            continue
        if isinstance(given, bytes | bytearray | Mapping) or not isinstance(given, Iterable):
            raise ArgumentError(call, parameter, expected, f"{key}: {_got(given)}")
        values = (
            tuple(given)
            if isinstance(given, Collection)
            else tuple(itertools.islice(given, limits.MAX_ATTRIBUTE_VALUES + 1))
        )
        wrong = [v for v in values if not isinstance(v, str)]
        if wrong:
            raise ArgumentError(
                call, parameter, expected, f"{key}: a value of type {_got(wrong[0])}"
            )
        if not isinstance(given, Collection) and len(values) > limits.MAX_ATTRIBUTE_VALUES:
            got = f"{key}: an iterator of more than {limits.MAX_ATTRIBUTE_VALUES} values"
            raise ArgumentError(call, parameter, expected, got)
        items[key] = values
    try:
        return Attributes(items)
    except ArgumentError as exc:  # a name not of the form, a value too long, a set too large
        said = exc.got  # it shows the name: cut, as `_text` cuts one
        raise ArgumentError(call, parameter, "valid attributes", said[:_SHOWN_REASON]) from None


def check_anchors(call: str, parameter: str, value: object) -> list[Identifier | str]:
    """`value`, identities to trust: an iterable (not one str) of `Identifier`s or their text."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ArgumentError(
            call, parameter, "an iterable of Identifiers or identifier text", _got(value)
        )
    anchors: list[Identifier | str] = []
    for item in value:
        if not isinstance(item, Identifier | str):
            raise ArgumentError(
                call,
                parameter,
                "an iterable of Identifiers or identifier text",
                f"an item of type {_got(item)}",
            )
        if isinstance(item, str):  # a MalformedText beneath (review 59k, api 1)
            check_utf8(call, parameter, item)
        anchors.append(item)
    return anchors


def check_listen(call: str, parameter: str, value: object) -> tuple[str, int] | None:
    """`value`, where to listen: a (host, port) pair, the port 0 (any) to 65535, or None."""
    if value is None:
        return None
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not isinstance(value[0], str)
        or isinstance(value[1], bool)
        or not isinstance(value[1], int)
    ):
        raise ArgumentError(call, parameter, "a (host, port) pair or None", _got(value))
    check_utf8(call, parameter, value[0])  # a ConfigError from the socket (review 59e, api 2)
    if not 0 <= value[1] <= _MAX_PORT:
        raise ArgumentError(call, parameter, f"a port 0 to {_MAX_PORT}", _number(value[1]))
    return value[0], value[1]


_MAX_PORT: Final = 65535
"""The largest TCP port."""
