"""Review 60c (performance margin of `credential.verify` and `gates.decide.1`): the shortcuts
taken to cut Python work per decision and per verification, tried as attacks. Each must
answer exactly what the longer path answered.

- the tool arguments' JSON is written by one C encoder made once (`engine._json_text`), not a
  new `JSONEncoder.iterencode` per call: the same text, and a circular value still denied;
- `_str_keys` answers a flat object of exact scalars from the types gathered in C: anything
  else (a `str` subclass key, a dict subclass value) still takes the walk;
- `check_feed_age` and `_safe_integer` take exact ints in range at once: a bool, an int
  subclass, a value out of range still go the long way;
- `ChainVerifier` skips the comparison of a feed filed under its own authority object: one
  filed under another authority is still refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import T, make_world
from troth.credentials import ChainVerifier, TrustPolicy
from troth.credentials.revocation_held import check_feed_age
from troth.encoding.ijson import MAX_SAFE_INTEGER
from troth.errors import CredentialError, CredentialFailure, OutOfRange
from troth.gates import Outcome, ToolCall
from troth.gates.engine import _ARGS_ENCODER, _ENCODER, _json_text, _str_keys
from troth.gates.toolschema import _safe_integer


class Big(int):
    """An int whose own operators lie: JSON writes its value (int.__repr__)."""

    def __repr__(self) -> str:
        return "0"

    def __le__(self, other: object) -> bool:
        return True


class Key(str):
    """A str subclass key (review 50d, gates 2)."""


class Mapping(dict[Any, Any]):
    """A dict subclass value: its exact type is not dict."""


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"order_id": "o-1", "amount": 20},
        {"a": "caf\u00e9 \u2603 \U0001f600", "b": "nul\x00here", "c": '\\"q"'},
        {"n": None, "t": True, "f": 1.5, "big": 2**70, "neg": -(2**63)},
        {"nested": [1, {"x": [None, "y"]}], "tuple": (1, 2)},
        {"sub": Big(2**60), "lone": "\ud800"},
    ],
)
def test_the_arguments_text_is_the_stdlib_encoders(value: dict[str, Any]) -> None:
    assert _json_text(value) == _ENCODER.encode(value)


@pytest.mark.parametrize("value", [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}])
def test_what_the_encoder_refused_it_still_refuses(value: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        _ENCODER.encode(value)
    with pytest.raises((ValueError, TypeError)):
        _json_text(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, True),
        ({"a": "x", "b": 1, "c": None, "d": True, "e": 1.0}, True),
        ({Key("a"): "x"}, False),
        ({1: "x"}, False),
        ({"a": Mapping({1: "x"})}, False),
        ({"a": Mapping({"b": "x"})}, True),
        ({"a": [{"b": {2: "x"}}]}, False),
        ({"a": (Key("b"),)}, True),  # a str subclass value is text, not a key
    ],
)
def test_str_keys_shortcut_answers_as_the_walk(value: dict[Any, Any], expected: bool) -> None:
    assert _str_keys(value) is expected


def test_exact_ints_in_range_only_take_the_shortcut() -> None:
    assert check_feed_age(60) == 60
    with pytest.raises(TypeError):
        check_feed_age(True)
    with pytest.raises(OutOfRange):
        check_feed_age(0)
    assert _safe_integer(MAX_SAFE_INTEGER)
    assert _safe_integer(-MAX_SAFE_INTEGER)
    assert not _safe_integer(MAX_SAFE_INTEGER + 1)
    assert not _safe_integer(Big(MAX_SAFE_INTEGER + 1))  # judged by its value
    assert _safe_integer(True)
    assert _safe_integer("x")


@pytest.fixture(scope="module")
def world() -> Any:
    return make_world()


def test_circular_and_odd_arguments_are_still_denied(world: Any) -> None:
    point = world.point(world.store(world.bundle()))
    caller = world.credential(world.support_chain, world.support)
    circular: dict[str, Any] = {"order_id": "o-1"}
    circular["amount"] = circular
    for arguments in (
        circular,
        {"order_id": "o-1", "amount": 2**60},
        {"order_id": "o-1", "amount": 20, "x": Mapping({1: "y"})},
    ):
        decision = point.decide(caller, ToolCall("refund", arguments), now=T + 10)
        assert decision.outcome is Outcome.ARGUMENTS
    assert point.decide(caller, ToolCall("refund", {"order_id": "o-1", "amount": 20}), now=T + 10)


def test_a_feed_filed_under_another_authority_is_refused(world: Any) -> None:
    verifier = ChainVerifier(TrustPolicy(frozenset({world.authority.identifier})))
    feeds = {world.admin.identifier: world.feed, **world.feeds()}
    with pytest.raises(CredentialError) as caught:
        verifier.verify(
            world.support_chain, presenter=world.support.identifier, feeds=feeds, now=T + 10
        )
    assert caught.value.reason is CredentialFailure.FEED_INVALID
    # filed under its own authority (the same object and an equal one): verifies
    for key in (world.feed.authority, type(world.feed.authority)(world.feed.authority.digest)):
        verifier.verify(
            world.support_chain,
            presenter=world.support.identifier,
            feeds={key: world.feed},
            now=T + 10,
        )


def test_json_module_still_has_its_c_encoder() -> None:
    """The shortcut is taken only with the C encoder (else `_ENCODER.encode` answers)."""
    assert _ARGS_ENCODER is not None
