"""Review 75s (disclosed): attacks on 75m's `_in_full` and 75n's policy-id budget that did not
work, kept as passing tests."""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

import pytest

from tests.support.gates import T, make_world
from tests.test_review75s_disclosed import long_id_bundle
from troth import limits
from troth.crypto import sha256
from troth.errors import PolicyError
from troth.gates.bundles import VerifiedBundle
from troth.trace.disclosure import _in_full, disclosed

_TOKEN = "ab" * 16


def test_members_sort_by_utf16_with_huge_integers_in_place() -> None:
    """Tried: a huge integer's placeholder moving a member out of RFC 8785's order (UTF-16
    code units: U+1F600 before U+E000), or one integer landing in another's place, nested in
    lists and objects, negative. The placeholders are values only, members sort by their
    names, each integer is put back by its index."""
    value = {
        "\ue000": -(2**53),
        "\U0001f600": 2**53,
        "a": [2**60, "x", {"z": 2**54, "y": 1, "x": [-(2**64), 2**53 - 1]}],
    }
    assert (
        _in_full(value)
        == (
            '{"a":[1152921504606846976,"x",{"x":[-18446744073709551616,9007199254740991],'
            '"y":1,"z":18014398509481984}],'
            '"\U0001f600":9007199254740992,"\ue000":-9007199254740992}'
        ).encode()
    )


def test_the_token_inside_a_longer_string_is_left_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried (the token known, as no caller knows it: it is random per call): strings holding
    the token and an index inside longer text. Only a whole quoted placeholder is replaced;
    these are kept, the integer is written in its place."""
    monkeypatch.setattr(secrets, "token_hex", lambda size: _TOKEN)
    value = {"s": f"{_TOKEN}-0x", "t": f"x{_TOKEN}-0", "u": f'"{_TOKEN}-0 ', "n": 2**53}
    text = (
        f'{{"n":9007199254740992,"s":"{_TOKEN}-0x","t":"x{_TOKEN}-0","u":"\\"{_TOKEN}-0 "}}'
    ).encode()
    assert disclosed(value) == {"sha256": sha256(text).hex(), "bytes": len(text)}


def test_the_hashed_text_does_not_depend_on_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tried: two processes (two tokens) hashing one value apart, and a verifier re-encoding
    it another way. The text is the same whatever the token, and is what Python's json
    writes for names in ASCII, integers and plain strings (docs/formats.md)."""
    value: Any = {"amount": 2**53 + 1, "ids": [-(2**70), 3, "9007199254740993"], "k": None}
    tokens = iter(("cd" * 16, "ef" * 16))
    first = _in_full(value)
    monkeypatch.setattr(secrets, "token_hex", lambda size: next(tokens))
    assert _in_full(value) == _in_full(value) == first
    assert first == json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def test_an_integer_and_its_digits_in_text_hash_apart() -> None:
    """Tried: a collision between a huge integer and a string of its digits, or the token's
    placeholder text. The string stays quoted."""
    assert disclosed({"n": 2**53}) != disclosed({"n": "9007199254740992"})
    assert disclosed([2**53]) != disclosed([f"{_TOKEN}-0"])


def test_a_received_bundle_with_an_over_long_id_is_refused_by_the_store() -> None:
    """Tried (75n's doubt): a bundle whose `@id` is over MAX_POLICY_ID_TEXT reaching the gates
    unchecked, pushed to a store or built as verified. A store's `accept` verifies it (and
    compiles: refused), and a VerifiedBundle is made only by verifying one (`_verify`, which
    compiles the policies, for a received and a stored bundle alike)."""
    world = make_world()
    data = long_id_bundle(world, "q" * (limits.MAX_POLICY_ID_TEXT + 1))
    with pytest.raises(PolicyError):
        world.store(data, now=T + 5)
    with pytest.raises(TypeError, match="made by verify_bundle"):
        cast(Any, VerifiedBundle)(*([None] * 7), object())
