"""Review 75m (numbers): 75h's fixes to trace disclosure and exact numbers, attacked.

numbers 1: `disclosed()` (a gate's recorder: the caller's arguments) took a value holding an
integer past ±(2**53 - 1) (JSON, which the MCP gate decodes exactly, and a Cedar long) as no
JSON at all: the record's `args` was `{"not_json": "dict"}`, nothing tying the denial to what
the caller sent, where docs/protocols.md promises the hash and size of arguments an export
could not carry, and the same amount as the double 1e16 got them (75h, traceverify2 2). Now
its hash and size too, of its canonical JSON with such an integer written in full.

numbers 2: 75h's rule sent every value holding a run of 16 digits to the full check
(`is_canonical_value`: parsing it back and encoding it again), strings too: arguments holding a
card number, a nanosecond timestamp or a long numeric id in text (4-5 times the cost of the
shortcut: ~20 us for a small object, ~18 ms for 200 KB of text, on every gate's record). Only a
number can be an integer past 2**53 - 1, and a number in canonical JSON starts the value, or
follows `[`, `,` or `:`: a run of 16 digits after a quote, a letter or a space is text. Now
only such a run takes the full check (still a superset: text holding `:` and 16 digits does).
Each test failed on the code before its fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_review23c_trace import _gate, _recorded
from troth.crypto import sha256
from troth.gates import Outcome
from troth.trace import Kind, disclosure, verify_log
from troth.trace.disclosure import _in_full, disclosed, disclosure_value


def _hashed(text: bytes) -> dict[str, Any]:
    return {"sha256": sha256(text).hex(), "bytes": len(text)}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"order_id": "o1", "amount": 2**53}, b'{"amount":9007199254740992,"order_id":"o1"}'),
        ({"n": [1, -(2**60), 1.5]}, b'{"n":[1,-1152921504606846976,1.5]}'),
        (2**64 + 1, b"18446744073709551617"),
        (
            {"b": 2**53, "a": [-(2**54), 2**55]},
            b'{"a":[-18014398509481984,36028797018963968],"b":9007199254740992}',
        ),  # each in its place, the members sorted
        (
            {"b": {"a": 10**20}, "a": "\u00e9"},
            '{"a":"\u00e9","b":{"a":100000000000000000000}}'.encode(),
        ),
    ],
)
def test_an_integer_past_2_53_is_disclosed_by_its_hash_and_size(value: Any, text: bytes) -> None:
    """75m numbers 1: a value holding an integer past ±(2**53 - 1) is disclosed by the hash and
    size of its canonical JSON (RFC 8785, that integer written in full), not as no JSON."""
    assert disclosed(value) == _hashed(text)


def test_a_denied_call_holding_a_huge_integer_keeps_the_hash_of_what_was_sent(
    tmp_path: Path,
) -> None:
    """75m numbers 1: the tool gate denies a refund of 2**53 (outside I-JSON's integers); its
    signed denial holds the hash of the arguments sent (it held `{"not_json": "dict"}`)."""
    gate, log, caller = _gate(tmp_path)
    result = gate.invoke(caller, "refund", {"order_id": "o1", "amount": 2**53})
    assert (result.allowed, result.decision.outcome) == (False, Outcome.ARGUMENTS)
    record, args = _recorded(log)
    assert record.kind is Kind.DENIAL
    sent = b'{"amount":9007199254740992,"order_id":"o1"}'
    assert args == disclosure_value(_hashed(sent))
    assert verify_log(log).size == 1
    log.close()


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"n": 10**5000}, "dict"),  # past Python's int-to-text limit: no text to hash
        ({"n": float("nan"), "m": 2**53}, "dict"),  # NaN: no JSON
        ({1: 2**53}, "dict"),  # a key that is no string
        ([2**53, {"\ud800": 1}], "list"),  # a lone surrogate
    ],
)
def test_a_huge_integer_beside_what_is_no_json_stays_no_json(value: Any, named: str) -> None:
    """75m numbers 1 (its bounds): what is no JSON beside an integer past 2**53 is still
    `{"not_json": type}`; an integer with no text Python writes too."""
    assert disclosed(value) == {"not_json": named}


@pytest.mark.parametrize(
    "value",
    [
        {"order_id": "o1", "card": "4111111111111111"},
        {"at": "1790000000000000000 ns", "note": "id 12345678901234567890"},
        ["x" * 1000 + "9007199254740993"],
    ],
)
def test_sixteen_digits_in_text_take_the_shortcut(
    monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    """75m numbers 2: a value whose only run of 16 digits is inside a string is disclosed in
    clear without the full check (it parsed and encoded the value again)."""
    checked: list[bytes] = []

    def counted(encoded: bytes) -> bool:
        checked.append(encoded)
        return True

    monkeypatch.setattr(disclosure, "is_canonical_value", counted)
    assert disclosed(value) == value
    assert checked == []


_HUGE = st.recursive(
    st.integers(-(2**80), 2**80)
    | st.text(max_size=4)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(_HUGE)
def test_the_hashed_text_reads_back_as_the_value(value: Any) -> None:
    """75m numbers 1: the text hashed for a value holding integers past 2**53 reads back
    (Python's reader: integers exact) as that very value, each integer in its place."""
    text = _in_full(value)
    if text is None:  # no integer past 2**53 - 1: RFC 8785 writes it
        disclosure_value(value)
    else:
        assert _same(json.loads(text), value)
        assert disclosed(value) == _hashed(text)


def _same(read: Any, value: Any) -> bool:
    """`read` is `value`, each float compared as a double: RFC 8785 writes a whole float as
    its shortest digits (3.91608956790153e16 as `39160895679015300`), which Python reads back
    as an int of another value than the double's exact one (fresh-clone CI, hypothesis)."""
    if isinstance(value, float):
        return isinstance(read, (int, float)) and float(read) == value
    if isinstance(value, dict):
        return (
            isinstance(read, dict)
            and read.keys() == value.keys()
            and all(_same(read[key], item) for key, item in value.items())
        )
    if isinstance(value, list):
        return (
            isinstance(read, list)
            and len(read) == len(value)
            and all(_same(r, v) for r, v in zip(read, value, strict=True))
        )
    return type(read) is type(value) and read == value
