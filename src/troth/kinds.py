"""The smallest checks of what a public call is given, shared by every layer that takes
arguments from a Python user: `troth._api` (what a call is given, what an `Identity` or a
`Credential` is made of, by the API or by hand) and the libraries beneath (troth.gates). Each
refuses with an ArgumentError naming the call and the parameter (review 54n)."""

from __future__ import annotations

from typing import TypeVar

from troth.errors import ArgumentError

__all__ = ["check_kind", "check_utf8", "got"]

T = TypeVar("T")


def got(value: object) -> str:
    """What an ArgumentError says it was given: the type's name, never the value (a ticket or
    a chain of the wrong type is still a secret)."""
    return "None" if value is None else type(value).__name__


def check_kind(call: str, parameter: str, value: object, kind: type[T], expected: str) -> T:
    """`value`, an instance of `kind` (for `int`, not a bool: a bool is an int in Python)."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ArgumentError(call, parameter, expected, got(value))
    return value


def check_utf8(call: str, parameter: str, text: str) -> str:
    """`text`, Unicode text UTF-8 can encode: no lone surrogate, which a store, a path or a
    wire format would refuse with a UnicodeEncodeError deep inside (review 54n, api 1-2)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ArgumentError(call, parameter, "text (no lone surrogate)", "a str") from None
    return text
