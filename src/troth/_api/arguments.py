"""Checking what the public API's callers pass, before anything beneath sees it.

Each check returns its argument, typed, or raises `ArgumentError` naming the call, the
parameter and what it takes (review 45a, API 1: an `int` identity failed with an
AttributeError about `.startswith` deep in the identifier parser, `Node.revoke(None)` with
one about `.authority`, a ttl of "60" with a TypeError about `<=`). Only types, and the
ranges the layers beneath do not check; values of the right type are theirs to judge (a
name's form, an attribute's, a ticket's). No value is shown in the error: a ticket or a chain
passed as the wrong type is still a secret."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, TypeVar

from troth._api.results import Credential, Identity
from troth.errors import ArgumentError
from troth.identity import Identifier

__all__ = [
    "check_chain",
    "check_credential",
    "check_identity",
    "check_mapping",
    "check_optional_text",
    "check_peer",
    "check_text",
    "check_texts",
    "check_whole",
]

T = TypeVar("T")


def _got(value: object) -> str:
    return "None" if value is None else type(value).__name__


def check_text(call: str, parameter: str, value: object) -> str:
    """`value`, a str."""
    if not isinstance(value, str):
        raise ArgumentError(call, parameter, "a str", _got(value))
    return value


def check_optional_text(call: str, parameter: str, value: object) -> str | None:
    """`value`, a str or None."""
    if value is not None and not isinstance(value, str):
        raise ArgumentError(call, parameter, "a str or None", _got(value))
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
    return value


def check_peer(call: str, parameter: str, value: T) -> T:
    """`value`, another identity: an `Identifier`, an `Identity`, identifier text or a name."""
    if not isinstance(value, Identifier | Identity | str):
        raise ArgumentError(
            call, parameter, "an Identifier, an Identity, identifier text or a name", _got(value)
        )
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
    """`value`, a sequence of str (not one str, whose letters would be taken one by one)."""
    if (
        isinstance(value, str | bytes)
        or not isinstance(value, Sequence)
        or not all(isinstance(item, str) for item in value)
    ):
        raise ArgumentError(call, parameter, "a sequence of str", _got(value))
    return value
