"""Review 51e, exports 7-9: the top-level names a new user constructs or calls directly
raised errors that are no `TrothError` (docs/python.md, "Errors": every error is one).

- exports 7: `troth.Identifier(b"x")` was a bare ValueError, `troth.Identifier.parse(None)` an
  AttributeError about `.startswith`, and `troth.Identifier(bytearray(32))` was made: an
  identifier that cannot be hashed (a TypeError wherever it keys a set, a `Verifier`'s trust
  among them). Each is now `MalformedText` (a DecodeError and a ValueError).
- exports 8: `troth.Attributes({"a.b": 5})` failed with "'int' object is not iterable",
  `{"a.b": b"read"}` with a TypeError about `len()` of an int, `{"a.b": {"read": False}}` was
  taken as the set {"read"}, and a name not of the form was a bare ValueError. Each is now an
  ArgumentError (a TypeError and a ValueError, as before), naming what it takes.
- exports 9: `Service.method` of a name the service already has was a bare ValueError, and
  `RunningNode.relay(5, at=7)` failed with an AttributeError about `.strip`: ArgumentErrors.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import troth


def _(value: object) -> Any:
    """`value`, of a type the call is not declared with (typed Any to pass it)."""
    return value


@pytest.mark.parametrize(
    "make",
    [
        lambda: troth.Identifier(b"x"),
        lambda: troth.Identifier(_("T" * 32)),
        lambda: troth.Identifier(_(bytearray(32))),
        lambda: troth.Identifier.parse(_(None)),
        lambda: troth.Identifier.parse(_(b"T" + b"0" * 64)),
    ],
)
def test_an_identifier_of_anything_but_its_digest_or_text_is_malformed_text(make: Any) -> None:
    with pytest.raises(troth.MalformedText):
        make()


def test_an_identifier_is_still_made_of_its_digest_and_its_text() -> None:
    made = troth.Identifier(bytes(range(32)))
    assert troth.Identifier.parse(str(made)) == made
    assert troth.Identifier.parse(made.did) == made
    assert not troth.Identifier.looks_like(_(None))


@pytest.mark.parametrize(
    "items",
    [
        {"a.b": 5},
        {"a.b": b"read"},
        {"a.b": {"read": False}},
        {"a.b": ["read", 5]},
        {5: "read"},
        {"bad": "read"},
        {"a.b": ""},
        {"a.b": []},
    ],
)
def test_attributes_of_anything_else_are_an_argument_error(items: Any) -> None:
    with pytest.raises(troth.ArgumentError) as caught:
        troth.Attributes(items)
    assert caught.value.parameter == "items"


def test_attributes_are_still_made_of_names_and_text() -> None:
    made = troth.Attributes({"a.b": "read", "a.c": ["x", "y"], "a.d": frozenset({"z"})})
    assert made.to_json() == {"a.b": "read", "a.c": ["x", "y"], "a.d": ["z"]}
    with pytest.raises(troth.ArgumentError, match="not key=value"):
        troth.Attributes.from_assignments(["a.b"])


def test_a_method_declared_twice_is_an_argument_error() -> None:
    desk = troth.Service("desk")
    desk.method("ask", allow=troth.AnyAuthenticated())(_ask)
    with pytest.raises(troth.ArgumentError, match="already has a method") as caught:
        desk.method("ask", allow=troth.AnyAuthenticated())
    assert caught.value.parameter == "name"


async def _ask(request: troth.Request) -> str:
    return "heard"


@pytest.mark.parametrize(("name", "at", "parameter"), [(5, "/tcp/a:1", "name"), ("x", 7, "at")])
def test_a_relay_of_another_type_is_an_argument_error(name: Any, at: Any, parameter: str) -> None:
    async def run() -> None:
        with troth.Node.open("agents") as agents:
            async with agents.serve() as running:
                await running.relay(name, at=at)

    with pytest.raises(troth.ArgumentError) as caught:
        asyncio.run(run())
    assert caught.value.parameter == parameter
