"""Review 75m (numbers): attacks on 75h's fixes to trace disclosure and exact numbers that did
not work, kept as passing tests. Each docstring says what was tried.

Also tried, covered elsewhere: a gate whose recorder raises (as 1e16 made it before 75h) runs
nothing: the tool gate's `invoke` raises, the MCP gate answers its error, never forwarded
(tests/test_review51f_refuted.py, test_review54j_mcp.py, test_review64l_refuted.py); the
batched hot path (tests/test_review66m_trace.py, test_review67a_perf.py) signs ASCII strings,
which `signable_values` takes without `_exportable` or `load_json`: its counts are unchanged."""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.traces import NOW as SIGNED
from tests.support.traces import Held
from tests.test_review23c_trace import _gate, _recorded
from troth import limits
from troth.encoding.ijson import load_json
from troth.errors import DecodeError
from troth.gates import Outcome
from troth.gates.engine import PolicyDecision
from troth.gates.engine import ToolCall as EngineCall
from troth.gates.point import DecisionRecord
from troth.trace import verify_log
from troth.trace.adapters import decision_content
from troth.trace.disclosure import _exportable, disclosed, disclosure_value, is_canonical_value
from troth.trace.signing import check_content, signable_values

_NUMBERS = st.one_of(
    st.integers(-(2**54), 2**54),
    st.integers(-(2**70), 2**70).map(float),  # integral doubles past 2**53, some past 1e21
    st.floats(1e14, 1e22) | st.floats(-1e22, -1e14),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e16, -1e16, 2.0**53, 1e21, 1.2345678901234567e15, -0.0, 5e-324]),
)
_TEXTS = st.one_of(
    st.text(max_size=8),
    st.from_regex(r"-?[0-9]{14,22}(\.[0-9]{1,3})?", fullmatch=True),  # a card number, an id
    st.from_regex(r"[a ,:\[\]{}\"-]{0,3}-?[0-9]{15,17}[ ,:\]}]?", fullmatch=True),  # 75m 2
)
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXTS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXTS, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(_VALUES)
def test_the_shortcut_judges_every_value_as_the_full_check_does(value: Any) -> None:
    """Tried (75h traceverify2 2's 16-digit rule): a value `_exportable`'s shortcut (shallow
    ASCII, no run of 16 digits) takes as exportable that the full check (`is_canonical_value`,
    what signing runs) refuses: none; numbers nested in lists and objects, negative ones
    (`-1e16`: 17 digits after its sign), ints and integral doubles around 2**53 and 1e21,
    doubles with 16 digits before their point, strings of 16 digits and more, after a quote,
    a space, `[`, `,`, `:` or a sign (75m numbers 2's rule: a number follows `[`, `,` or `:`
    only, or starts the value). Whatever
    `disclosed` returns signs (`signable_values`: a gate's recorder never raises on it)."""
    try:
        encoded = disclosure_value(value)
    except ValueError:
        encoded = None
    if encoded is not None:
        assert _exportable(encoded) == is_canonical_value(encoded)
    signable_values({"args": disclosed(value)})


@pytest.mark.parametrize(
    ("value", "clear"),
    [
        (-1e16, False),  # `-10000000000000000`
        ({"a": [{"b": -9007199254740992.0}]}, False),  # nested: 2**53, negative
        (9007199254740991.0, True),  # 2**53 - 1: an integer I-JSON holds
        (1.2345678901234567e15, True),  # `1234567890123456.8`: 16 digits, a fraction
        (1e21, True),  # `1e+21`: RFC 8785's exponent form
        ({"card": "4111111111111111", "ns": "1790000000000000000"}, True),  # digits in text
    ],
)
def test_numbers_past_the_shortcut_are_disclosed_as_the_full_check_says(
    value: Any, clear: bool
) -> None:
    """Tried: the values the brief named against `disclosed`: those an export carries are
    disclosed in clear (a card number in a string too), the others by their hash and size."""
    assert (disclosed(value) == value) is clear
    signable_values({"args": disclosed(value)})


def test_a_gate_records_a_card_number_in_clear_and_a_huge_double_by_its_hash(
    tmp_path: Path,
) -> None:
    """Tried: the tool gate with a trace recorder, a 16-digit order id (allowed: in clear) and
    a refund of -1e16 (denied: its hash): both recorded, signed, the log verified."""
    gate, log, caller = _gate(tmp_path)
    assert gate.invoke(caller, "lookup_order", {"order_id": "4111111111111111"}).allowed
    assert _recorded(log)[1] == b'{"order_id":"4111111111111111"}'
    assert not gate.invoke(caller, "refund", {"order_id": "o1", "amount": -1e16}).allowed
    assert verify_log(log).size == 2
    log.close()


_MIB2 = limits.MAX_TRACE_LINE_BYTES - 64
_LONG = [
    b"1" * _MIB2,  # an integer: refused before int() parses it (no digit-limit ValueError)
    b"-" + b"9" * _MIB2,
    b"1." + b"1" * _MIB2,  # more digits than a double holds
    b"1e-" + b"9" * _MIB2,  # an exponent past Decimal's range
    b"1e" + b"9" * _MIB2,  # past a double
    b"9007199254740993." + b"0" * _MIB2 + b"1",  # a halfway case, decided by the last digit
]


@pytest.mark.parametrize("number", _LONG, ids=range(len(_LONG)))
def test_a_two_mib_number_is_a_decode_error(number: bytes) -> None:
    """Tried (ijson `exact_numbers`): a number of 2 MiB of digits in an export line: a
    ValueError from Python's int digit limit, a Decimal error, a parse whose cost grows faster
    than the text (quadratic). Each is a DecodeError, one parse of the text (linear: float()
    and Decimal read it once)."""
    with pytest.raises(DecodeError):
        load_json(b"[" + number + b"]", max_bytes=limits.MAX_TRACE_LINE_BYTES, exact_numbers=True)


def test_exact_numbers_hold_under_any_decimal_context() -> None:
    """Tried: an application's decimal context (traps off, 3 digits of precision, a small
    exponent range): `_exact_double` builds and compares `Decimal`s exactly whatever it is,
    so what it refuses and takes is unchanged."""
    context = decimal.Context(prec=3, Emax=10, Emin=-10, traps=[])
    with decimal.localcontext(context):
        for refused in (b"20.000000000000001", b"1e-400", b"1e-99999999999999999999"):
            with pytest.raises(DecodeError):
                load_json(refused, max_bytes=100, exact_numbers=True)
        taken = [load_json(t, max_bytes=100, exact_numbers=True) for t in (b"0.1", b"1e+20")]
    assert taken == [0.1, 1e20]


_ANY = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**80), 2**80),
        st.floats(),  # NaN and infinities too
        st.text(max_size=6),  # surrogates and noncharacters too
        st.sampled_from(["4111111111111111", "\ufdd0", "\ud800"]),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["sha256", "bytes", "not_json", "a"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_AGENT = Held().identifier


@settings(max_examples=150, deadline=None)
@given(_ANY, st.booleans(), st.text(max_size=40))
def test_a_gates_record_signs_whatever_the_arguments(args: Any, allowed: bool, tool: str) -> None:
    """Tried (the brief's "any other value that makes the recorder raise"): arguments of any
    value (ints past 2**53, NaN, infinities, lone surrogates, noncharacters, objects shaped
    like `disclosed`'s stand-ins, 16-digit strings) and any tool name, allowed or denied:
    `decision_content` always makes content that signing takes (`check_content`, what
    `sign_record` and the batcher refuse with), so no such call leaves the gate's recorder
    raising (which would deny it, unrecorded)."""
    decision = (
        PolicyDecision(True, Outcome.ALLOWED, "allowed")
        if allowed
        else PolicyDecision.deny(Outcome.ARGUMENTS, "denied")
    )
    record = DecisionRecord(SIGNED, None, EngineCall(tool or "t", args, None), decision)
    check_content(decision_content(record, _AGENT)[0])
