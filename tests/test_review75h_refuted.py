"""Review 75h (traceverify2): attacks on 75e's offline trace verification fixes that did not
work, kept as passing tests. Each docstring says what was tried."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.traces import (
    NOW,
    Held,
    export_lines,
    open_log,
    re_signed,
    recorder,
    tool_call,
)
from troth.cli.trace_cmds import _verdict_text
from troth.clock import FixedClock
from troth.crypto import sha256
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, TraceError, TraceFailure
from troth.node.trace_checks import TraceVerdict
from troth.trace import Authority, Kind, RecordContent
from troth.trace.disclosure import disclosure_value, is_canonical_value
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import open_envelope, sign_record
from troth.trace.verify import verify_log

_F = TraceFailure


class _Interleaved:
    """A log of agent A's three records and B's two, taking turns (A0 B0 A1 B1 A2), closed:
    its file, its collector's key, its export's lines (parsed) and agent A's export."""

    def __init__(self, path: Path) -> None:
        clock = FixedClock(NOW)
        self.path, self.owner, self.a = path, Held(), Held()
        log = open_log(path, clock, self.owner)
        steps_a, steps_b = recorder(log, self.a, clock), recorder(log, Held(), clock)
        for number in range(5):
            (steps_b if number % 2 else steps_a).record(tool_call(f"call-{number}"))
        log.checkpoint()
        self.lines = export_lines(log)
        out = io.StringIO()
        export_jsonl(log, out, agent=self.a.identifier)
        self.of_a = [line.encode() for line in out.getvalue().splitlines()]
        log.close()


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory: pytest.TempPathFactory) -> _Interleaved:
    return _Interleaved(tmp_path_factory.mktemp("75h") / "log.db")


def _fault(lines: list[bytes]) -> TraceError:
    with pytest.raises(TraceError) as caught:
        verify_export(lines)
    return caught.value


def test_honest_exports_of_some_lines_verify(interleaved: _Interleaved) -> None:
    """Tried (75e traceverify 1's order check): refusing an honest export of some lines: one
    agent's records of a log where another's are between them (`trace export --agent`), that
    export with its middle record left out (a gap: seq 0 and 2 at indices 0 and 4), its
    lines in any order; every line of the log shuffled: all verify."""
    of_a = interleaved.of_a
    assert verify_export(of_a).records == 3
    for kept in itertools.permutations([of_a[0], of_a[2]]):
        assert verify_export(list(kept)).records == 2
    for order in itertools.permutations(of_a):
        assert verify_export(list(order)).agents == 1
    everything = [json.dumps(line).encode() for line in interleaved.lines]
    assert verify_export(everything[::-1]).records == 5


def test_an_export_names_the_fault_verify_log_names_for_any_order_of_an_agents_records(
    interleaved: _Interleaved, tmp_path: Path
) -> None:
    """Tried: an order of agent A's records (at indices 0, 2, 4, B's between) that the export's
    check (75e: consecutive seqs present, the later at the lower index) lets pass, or names at
    another record or for another reason than `verify_log` on the log holding them so: each of
    the five orders is refused by both, CHAIN_BROKEN at the same index (a rotation of three
    records too, where no two consecutive seqs are swapped next to each other)."""
    places = [0, 2, 4]
    for order in itertools.permutations(range(3)):
        if order == (0, 1, 2):
            continue
        copy = tmp_path / f"{''.join(map(str, order))}.db"
        shutil.copy(interleaved.path, copy)
        raw = sqlite3.connect(copy, isolation_level=None)
        for seq in range(3):  # A's seq `order[k]` to index places[k]
            raw.execute("UPDATE leaves SET idx = ? WHERE idx = ?", (-1 - seq, places[seq]))
        for k, seq in enumerate(order):
            raw.execute("UPDATE leaves SET idx = ? WHERE idx = ?", (places[k], -1 - seq))
        raw.close()
        log = open_log(copy, FixedClock(NOW), interleaved.owner)
        with pytest.raises(TraceError) as caught:
            verify_log(log)
        log.close()
        lines = list(interleaved.lines)
        for k, seq in enumerate(order):
            lines[places[k]] = interleaved.lines[places[seq]]
        fault = _fault(re_signed(lines, interleaved.owner, NOW + 1))
        assert (fault.reason, fault.index) == (caught.value.reason, caught.value.index)
        assert fault.reason is _F.CHAIN_BROKEN


def test_a_repeated_line_or_a_second_record_at_one_seq_in_a_swapped_export_is_refused(
    interleaved: _Interleaved,
) -> None:
    """Tried: fooling the order check with a line repeated (the swapped seq 1 twice: REPLAYED,
    at the line's index, named before the order it breaks there) or with a second record A
    signed at seq 1 (its chain forked) put before seq 0 in the re-signed tree: the fork at
    index 0 is refused there, where `verify_log` refuses such a log (`the agent's first record
    has seq 1`), before the genuine seq 1 at index 3 (`seq 1 twice`); put after every line,
    `seq 1 twice` at its index."""
    lines = interleaved.lines
    swapped = [lines[2], lines[1], lines[0], lines[3], lines[4]]  # A1 at index 0, A0 at 2
    signed = re_signed(swapped, interleaved.owner, NOW + 1)
    fault = _fault([*signed, signed[0]])
    assert (fault.reason, fault.index) == (_F.REPLAYED, 0)
    assert _fault(signed[1:] + signed[:1]).reason is _F.CHAIN_BROKEN  # any order of lines
    a0 = open_envelope(lines[0]["envelope"].encode())
    fork = sign_record(
        interleaved.a.signer(NOW),
        RecordContent(Kind.DECISION),
        seq=1,
        prev=sha256(a0[1]),
        time=NOW,
    )
    forked = {
        **lines[2],
        "envelope": fork.envelope.decode(),
        "record": json.loads(open_envelope(fork.envelope)[1]),
        "disclosures": {},
    }
    fault = _fault(re_signed([forked, *lines], interleaved.owner, NOW + 1))
    assert (fault.reason, fault.index) == (_F.CHAIN_BROKEN, 0)
    fault = _fault(re_signed([*lines, forked], interleaved.owner, NOW + 1))
    assert (fault.reason, fault.index) == (_F.CHAIN_BROKEN, 5)
    assert fault.detail == "seq 1 twice (also at index 2)"


def test_chains_kept_elsewhere_are_counted_alike_by_every_verifier(tmp_path: Path) -> None:
    """Tried (75e traceverify 2): a count of the records naming a chain kept elsewhere that
    differs between `verify_log`, `verify_export`, `verify_bundle` and `troth trace verify`'s
    text and --json (per chain, per line, a bool summed): each counts records, two of the
    agent's three here, one in an export of that line alone. `verified: true` stays: the
    chain is the record's own reference to a place no offline verifier reads, as records past
    the checkpoint and the lines an export left out are, each counted and said beside it
    (docs/traces.md, "Proof rules"); `--require-anchor` is about the anchor."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    nowhere = Authority(bytes(32), ((bytes(16), bytes(32)),), at="https://example.com/c")
    steps = recorder(log, Held(), clock)
    steps.record(RecordContent(Kind.DECISION, authority=nowhere))
    steps.record(tool_call())
    steps.record(RecordContent(Kind.DECISION, authority=nowhere))
    log.checkpoint()
    assert verify_log(log).chains_elsewhere == 2
    lines = [json.dumps(line).encode() for line in export_lines(log)]
    log.close()
    report = verify_export(lines)
    verdict = TraceVerdict(report, None, False, (), None, False, False)
    assert verdict.to_json()["chains_elsewhere"] == 2
    said = _verdict_text(verdict, verdict.to_json(), True)
    assert "; 2 record(s) name a delegation chain kept elsewhere" in said
    assert verify_export(lines[2:]).chains_elsewhere == 1
    bundles = [verify_bundle(line).to_json()["chains_elsewhere"] for line in lines]
    assert bundles == [1, 0, 1]


_FINITE = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_FINITE, st.lists(_FINITE, max_size=4)))
def test_every_number_troth_writes_reads_back_as_itself(value: float | list[float]) -> None:
    """Tried (75e traceverify 3's `exact_numbers`): a finite double troth writes that the
    export's verifier refuses. A disclosed value is written in its canonical form (RFC 8785:
    `5e-324`, `1e+21`, `-0.0` as `0`): whenever that is one an export carries
    (`is_canonical_value`, what signing requires; an integral double from 2**53 to 1e21 is an
    integer literal past I-JSON's, disclosed by its hash: 75h traceverify2 2), it reads back
    as the same double; a value Python writes (the readable parts, `json.dumps`: `1e+16`)
    always does."""
    canonical = disclosure_value(value)
    if is_canonical_value(canonical):
        assert load_json(canonical, max_bytes=1000, exact_numbers=True) == value
    python = json.dumps(value).encode()
    assert load_json(python, max_bytes=1000, exact_numbers=True) == value


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (b"-0", 0),  # an integer: no fraction, no exponent; 0, as RFC 8785 writes -0.0
        (b"-0.0", -0.0),
        (b"1E5", 100000.0),
        (b"1e5", 100000.0),
        (b"100000.0", 100000.0),
        (b"1e+21", 1e21),
        (b"5e-324", 5e-324),
        (b"+1", None),  # not JSON
        (b"01", None),
        (b".5", None),
        (b"1.", None),
        (b"Infinity", None),
        (b"0.10000000000000001", None),  # 17 digits (C's %.17g) of 0.1: another decimal
        (b"4.9406564584124654e-324", None),  # %.17g's 5e-324
        (b"9007199254740993.0", None),  # past 2**53: reads as ...992
    ],
)
def test_number_spellings_are_read_or_refused_as_the_double_they_are(
    text: bytes, read: float | None
) -> None:
    """Tried: a spelling of a number `exact_numbers` reads as another than it is, or refuses
    though it is exactly a double: the forms of one double (`1E5`, `1e5`, `100000.0`) are
    read; what is no JSON (`+1`, `01`, `.5`, `1.`, `Infinity`), digits past the double
    (`%.17g`'s forms, which no writer troth uses emits: RFC 8785, Python, JavaScript write the
    shortest) refused; `-0` is an integer, 0, as the disclosure's canonical form of -0.0 is."""
    value = b"[" + text + b"]"
    if read is None:
        with pytest.raises(DecodeError):
            load_json(value, max_bytes=100, exact_numbers=True)
    else:
        (found,) = load_json(value, max_bytes=100, exact_numbers=True)
        assert (found, type(found), str(found)) == (read, type(read), str(read))
