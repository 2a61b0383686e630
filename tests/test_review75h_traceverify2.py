"""Review 75h (traceverify2): 75e's offline trace verification fixes attacked (the order of an
export's agent's records, the chains it did not check, a line's numbers as the doubles they
spell). Each test failed on the code before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.traces import (
    NOW,
    Held,
    export_lines,
    one_line_export,
    open_log,
    recorder,
    tool_call,
)
from troth.clock import FixedClock
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, TraceError, TraceFailure
from troth.trace.disclosure import disclosed
from troth.trace.export import verify_export

_HUGE_EXPONENTS = (
    b"1e-99999999999999999999999",
    b"0e99999999999999999999",
    b"2.5E-9999999999999999999",
)


@pytest.mark.parametrize("number", _HUGE_EXPONENTS)
def test_a_number_with_an_exponent_past_decimals_range_is_refused_as_malformed(
    tmp_path: Path, number: bytes
) -> None:
    """75h traceverify2 1: `load_json(exact_numbers=True)` (75e, traceverify 3) compares a
    fraction's or exponent's literal with the double it reads as through `Decimal`, which
    raises `decimal.InvalidOperation` for an exponent past its range: an export line whose
    disclosed amount is spelled `1e-99999999999999999999999` (JSON, a double: 0) made
    `verify_export` (`troth trace verify --file`) raise that, not a TraceError naming the
    line: the whole export's verification crashed on one line ("Any failure raises
    DecodeError, never another exception", encoding/ijson)."""
    with pytest.raises(DecodeError):
        load_json(b'{"fee": ' + number + b"}", max_bytes=1000, exact_numbers=True)
    text = one_line_export(tmp_path / "log.db", args={"amount": 20, "fee": 0}).encode()
    assert b'"fee": 0' in text
    with pytest.raises(TraceError) as caught:
        verify_export([text.replace(b'"fee": 0', b'"fee": ' + number)])
    assert caught.value.reason is TraceFailure.MALFORMED
    assert "line 1: " in caught.value.detail


@pytest.mark.parametrize("number", [1e16, 2.0**53, 1e20, 123456789012345680000.0])
def test_a_float_the_canonical_form_writes_as_a_long_integer_is_disclosed_by_its_hash(
    tmp_path: Path, number: float
) -> None:
    """75h traceverify2 2: RFC 8785 writes a double of integral value at or past 2**53 and
    below 1e21 as an integer literal (`1e16` as `10000000000000000`), which no export's
    verifier reads (I-JSON: an integer past 2**53 - 1), so signing refuses a value holding
    one (`signable_values`). `disclosed` (a gate's recorder's and the span processor's
    arguments, results, inputs: "must be signed whatever the value") took such a value,
    shallow ASCII, as exportable unparsed (`_exportable`'s shortcut) and returned it itself:
    a tool call whose arguments hold the amount 1e16 made the recorder raise ValueError
    (`not a value an export can carry`), nothing recorded. Now disclosed by its hash and
    size, the record signed, its export verified."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    args = disclosed({"amount": number, "order": "o1"})
    assert set(args) == {"sha256", "bytes"}
    recorder(log, Held(), clock).record(tool_call(args=args))
    log.checkpoint()
    lines = [json.dumps(line).encode() for line in export_lines(log)]
    log.close()
    assert verify_export(lines).records == 1
    assert disclosed({"amount": 9007199254740991.0}) == {"amount": 9007199254740991.0}
