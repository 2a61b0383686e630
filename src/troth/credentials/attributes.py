"""Credential attributes: namespaced keys -> a string or a set of strings.

Keys are `namespace.name[.more]` in lowercase ASCII, so an attribute can never shadow a built-in
name of a policy engine (Ockam's `identifier` collision, lessons.md). Keys under `troth.` are
reserved to the authority's admins. A value is a string or a non-empty set of strings; for
narrowing, a string counts as the set holding it.

CBOR: a map text -> text / [+ text], sets as arrays sorted by their UTF-8 bytes, no duplicates.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, Final

from troth import limits
from troth.errors import ArgumentError, DecodeError, DecodeProblem
from troth.kinds import got as _got

__all__ = ["RESERVED_PREFIX", "AttributeValue", "Attributes", "check_key"]

RESERVED_PREFIX: Final = "troth."
_KEY = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+")

AttributeValue = str | frozenset[str]


@functools.lru_cache(maxsize=4096)  # keys repeat across credentials; validation is on the hot path
def check_key(key: str) -> str:
    if len(key) > limits.MAX_ATTRIBUTE_TEXT or not _KEY.fullmatch(key):
        raise ValueError(
            f"invalid attribute name {key!r}: use namespace.name (lowercase letters, digits, _ -)"
        )
    return key


def _check_text(text: str, what: str) -> str:
    if not text or len(text) > limits.MAX_ATTRIBUTE_TEXT:
        raise ValueError(f"{what} must be 1-{limits.MAX_ATTRIBUTE_TEXT} characters")
    if not text.isascii():
        try:  # a credential carries UTF-8 text: a lone surrogate is none (review 53e, attributes 1)
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{what} is not valid Unicode text (a lone surrogate)") from None
    return text


_EXPECTED: Final = "a mapping of attribute names (namespace.name) to a str or an iterable of str"


def _checked(items: object) -> dict[str, AttributeValue]:
    """`Attributes.__init__`'s items, checked (ValueError saying what is wrong)."""
    if items is None:
        return {}
    if not isinstance(items, Mapping):
        raise ValueError(f"not a mapping but a {type(items).__name__}")
    checked: dict[str, AttributeValue] = {}
    for key, value in items.items():
        if not isinstance(key, str):
            raise ValueError(f"a name of type {type(key).__name__}")
        check_key(key)
        if isinstance(value, str):
            checked[key] = _check_text(value, f"value of {key}")
            continue
        if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
            raise ValueError(f"{key}: a value of type {type(value).__name__}")
        texts = (  # an iterator read at most one past the bound
            value
            if isinstance(value, Collection)
            else tuple(itertools.islice(value, limits.MAX_ATTRIBUTE_VALUES + 1))
        )
        if texts is not value and len(texts) > limits.MAX_ATTRIBUTE_VALUES:
            # an iterator past the bound is refused, never cut to it (review 59e, api 4), saying
            # so: its set may hold fewer (review 59j, attributes 1)
            raise ValueError(
                f"{key}: an iterator of more than {limits.MAX_ATTRIBUTE_VALUES} values (give "
                "a set, or a list)"
            )
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"{key}: a value of type {type(text).__name__}")
        values = frozenset(_check_text(v, f"value of {key}") for v in texts)
        if not values or len(values) > limits.MAX_ATTRIBUTE_VALUES:
            raise ValueError(f"{key}: a set holds 1-{limits.MAX_ATTRIBUTE_VALUES} values")
        checked[key] = values
    if len(checked) > limits.MAX_ATTRIBUTES:
        raise ValueError(f"more than {limits.MAX_ATTRIBUTES} attributes")
    return checked


def _as_set(value: AttributeValue) -> frozenset[str]:
    return frozenset((value,)) if isinstance(value, str) else value


def _not_attributes(call: str, parameter: str, value: object) -> ArgumentError:
    return ArgumentError(call, parameter, "an Attributes", _got(value))


class Attributes(Mapping[str, AttributeValue]):
    """An immutable, validated attribute map."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, AttributeValue | Iterable[str]] | None = None) -> None:
        """Attributes of `items`: each name (`namespace.name`) to a str or an iterable of 1-64
        str, each 1-256 characters of Unicode text (no lone surrogate: review 53e, attributes
        1); anything else is an ArgumentError (a TypeError and a ValueError: review 51e,
        exports 8, bare ones, and a mapping taken as its keys)."""
        try:
            self._items = _checked(items)
        except ValueError as exc:
            raise ArgumentError("Attributes", "items", _EXPECTED, str(exc)) from None

    @classmethod
    def from_assignments(cls, assignments: Iterable[str]) -> Attributes:
        """`key=value` strings; a key given more than once becomes a set (ArgumentError for a
        string that is not one, or anything but an iterable of str: review 54n, api 5)."""
        expected = "an iterable of key=value str"
        if isinstance(assignments, str | bytes) or not isinstance(assignments, Iterable):
            raise ArgumentError(
                "Attributes.from_assignments", "assignments", expected, _got(assignments)
            )
        collected: dict[str, list[str]] = {}
        for text in assignments:
            if not isinstance(text, str):
                got = f"an item {_got(text)}"
                raise ArgumentError("Attributes.from_assignments", "assignments", expected, got)
            key, sep, value = text.partition("=")
            if not sep:
                raise ArgumentError(
                    "Attributes", "items", "key=value", f"attribute {text!r} is not key=value"
                )
            collected.setdefault(key.strip(), []).append(value)
        return cls({k: v[0] if len(v) == 1 else frozenset(v) for k, v in collected.items()})

    # -- Mapping ------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> AttributeValue:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Attributes({self.to_json()!r})"

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Attributes):
            return self._items == other._items
        return NotImplemented

    # -- semantics ----------------------------------------------------------------------------

    def reserved_keys(self) -> list[str]:
        """The keys under `troth.` (reserved to the authority's admins), sorted."""
        return sorted(k for k in self._items if k.startswith(RESERVED_PREFIX))

    def first_excess_over(self, parent: Attributes) -> str | None:
        """The first key whose value `parent` does not cover (None when self ⊆ parent); a
        `parent` that is not an `Attributes` is an ArgumentError (review 54n, api 6: an
        AttributeError; checked by catching, not before: a verification calls it per link)."""
        try:
            parents = parent._items
        except AttributeError:
            raise _not_attributes("Attributes.first_excess_over", "parent", parent) from None
        for key, value in self._items.items():
            held = parents.get(key)
            if held is None or not _as_set(value) <= _as_set(held):
                return key
        return None

    def merged(self, other: Attributes) -> Attributes:
        """These attributes with `other`'s values taking precedence (an `Attributes`, else an
        ArgumentError: review 54n, api 6)."""
        if not isinstance(other, Attributes):
            raise _not_attributes("Attributes.merged", "other", other)
        return Attributes({**self._items, **other._items})

    def values_of(self, key: str) -> frozenset[str]:
        """The values of `key` as a set (empty when absent: any key not a name held); an
        unhashable `key` is an ArgumentError (review 54n, api 7: a TypeError; caught, not
        checked before: a decision reads attributes per request)."""
        try:
            value = self._items.get(key)
        except TypeError:
            raise ArgumentError("Attributes.values_of", "key", "a str", _got(key)) from None
        return frozenset() if value is None else _as_set(value)

    # -- encodings ----------------------------------------------------------------------------

    def to_cbor(self) -> dict[str, Any]:
        """The CBOR data of the attributes (sets as arrays sorted by their UTF-8 bytes)."""
        return {
            k: v if isinstance(v, str) else sorted(v, key=str.encode)
            for k, v in self._items.items()
        }

    @classmethod
    def from_cbor(cls, value: Any) -> Attributes:
        """Decode and validate (hot path: one pass, messages built only on failure)."""
        if type(value) is not dict:
            raise DecodeError("attributes: expected a map")
        if len(value) > limits.MAX_ATTRIBUTES:
            raise DecodeError("attributes: too many", DecodeProblem.OVER_LIMIT)
        items: dict[str, AttributeValue] = {}
        for key, raw in value.items():
            if type(key) is not str:
                raise DecodeError("attributes: keys must be text")
            try:
                check_key(key)
            except ValueError as exc:
                raise DecodeError(f"attributes: {exc}") from None
            if type(raw) is str:
                texts: list[str] = [raw]
            elif type(raw) is list:
                if not raw or len(raw) > limits.MAX_ATTRIBUTE_VALUES:
                    raise DecodeError(f"attribute {key}: 1-{limits.MAX_ATTRIBUTE_VALUES} values")
                texts = raw
            else:
                raise DecodeError(f"attribute {key}: expected a text string or an array")
            for text in texts:  # before any set is made of them (an array is unhashable)
                if type(text) is not str or not text or len(text) > limits.MAX_ATTRIBUTE_TEXT:
                    raise DecodeError(
                        f"attribute {key}: values must be text of 1-{limits.MAX_ATTRIBUTE_TEXT} "
                        "characters"
                    )
            if len(texts) > 1 and texts != sorted(set(texts), key=str.encode):
                raise DecodeError(
                    f"attribute {key}: set not sorted or has duplicates",
                    DecodeProblem.NON_CANONICAL,
                )
            items[key] = raw if type(raw) is str else frozenset(texts)
        attributes = cls.__new__(cls)  # validated above: skip __init__'s second pass
        attributes._items = items
        return attributes

    def to_json(self) -> dict[str, str | list[str]]:
        """The attributes as JSON data (sets as sorted lists)."""
        return {k: v if isinstance(v, str) else sorted(v) for k, v in sorted(self._items.items())}
