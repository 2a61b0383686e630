"""Review 48i, first bad record: `troth trace verify` names the first bad record and why
(issue #13), the one of the lowest log index among every fault of any kind.

`verify_export` checked each line as it read it, and only after the last line what lies
between the lines (an agent's chain between its records present, its keys' retirement by the
newest history the lines carry, the links): an earlier record whose chain was broken, whose key
had retired or whose link was bad was not reported when a later line failed alone (a bad
signature): the later one was, the right kind of fault, not the first bad record (review 48b).
`verify_log` judges a link to a record later in the log once the log is read: a bad forward
link before a record with a bad signature was reported as the bad signature.

1. An export: a chain broken at record 1, a bad signature at record 2.
2. An export: a record signed by a retired key (its line carrying the history from before the
   rotation) at record 1, a bad signature at record 2; and, with no other fault, the first
   record the retired key signed is named, not its latest.
3. An export: a resolution at record 1 by someone the escalation did not ask, a bad signature
   at record 2; the lines shuffled, the same.
4. A log: a resolution at record 0 of an escalation at record 1 that asked someone else (a
   link judged once the log is read), a bad signature at record 2.
5. An export: a line that is no bundle after a chain broken at the record before it.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.traces import (
    NOW,
    Held,
    db,
    one_record_then_rotated,
    open_log,
    recorder,
    set_newest_history,
    tool_call,
)
from tests.test_review34g_trace import _insert
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog, verify_log
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.merkle import leaf_hash
from troth.trace.record import Decision, Kind, Links
from troth.trace.signing import RecordContent, VerifiedRecord, sign_record

_ESCALATION = "0123456789abcdef0123456789abcdef"
_SIG = re.compile(rb'"sig":"([A-Za-z0-9+/]*={0,2})"')


def _bad_signature(envelope: bytes) -> bytes:
    """`envelope` with one byte of its signature flipped (the same length of base64)."""
    found = _SIG.search(envelope)
    assert found is not None
    signature = bytearray(base64.b64decode(found.group(1)))
    signature[0] ^= 1
    return envelope.replace(found.group(1), base64.b64encode(bytes(signature)))


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


def _badly_signed(line: bytes) -> bytes:
    """An export line whose envelope's signature is bad (it verifies no more alone)."""
    value = json.loads(line)
    value["envelope"] = _bad_signature(value["envelope"].encode()).decode()
    text = json.dumps(value).encode()
    with pytest.raises(TraceError) as alone:
        verify_bundle(text)
    assert alone.value.reason is TraceFailure.BAD_SIGNATURE
    return text


def _sign_badly_in_log(log: TraceLog, index: int) -> None:
    """Record `index` of the (closed) log's file: its signature bad, its leaf the new bytes'."""
    raw = db(log)
    (envelope,) = raw.execute("SELECT envelope FROM leaves WHERE idx = ?", (index,)).fetchone()
    bad = _bad_signature(bytes(envelope))
    raw.execute(
        "UPDATE leaves SET envelope = ?, leaf = ? WHERE idx = ?", (bad, leaf_hash(bad), index)
    )
    raw.close()


def _raises(reason: TraceFailure, index: int, *args: object, export: bool = True) -> TraceError:
    with pytest.raises(TraceError) as caught:
        if export:
            verify_export(*args)  # type: ignore[arg-type]
        else:
            verify_log(*args)  # type: ignore[arg-type]
    assert (caught.value.reason, caught.value.index) == (reason, index), caught.value
    return caught.value


def _broken_chain(tmp_path: Path) -> tuple[TraceLog, FixedClock, Held, VerifiedRecord]:
    """A log: the agent's seq 0 (record 0), its seq 1 naming another hash (record 1, written
    by the log's operator), another agent's seq 0 (record 2). The log is closed."""
    clock, owner, agent, other = FixedClock(NOW), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    recorder(log, agent, clock).record(tool_call())
    log.close()
    broken = sign_record(agent.signer(NOW), tool_call(), seq=1, prev=bytes(32), time=NOW)
    _insert(log, 1, broken)
    _insert(log, 2, sign_record(other.signer(NOW), tool_call(), seq=0, prev=None, time=NOW))
    return log, clock, owner, broken


def test_an_export_names_a_broken_chain_before_a_bad_signature(tmp_path: Path) -> None:
    """1: the chain broken at record 1 is named, not record 2's bad signature, whatever the
    order of the lines."""
    _closed, clock, owner, broken = _broken_chain(tmp_path)
    lines = _export(open_log(tmp_path / "trace.db", clock, owner))
    assert len(lines) == 3
    verify_bundle(lines[1])  # alone, record 1 verifies
    _raises(TraceFailure.CHAIN_BROKEN, 1, lines)  # (the export without a bad line)
    lines[2] = _badly_signed(lines[2])
    error = _raises(TraceFailure.CHAIN_BROKEN, 1, lines)
    assert error.record == broken.record.id
    _raises(TraceFailure.CHAIN_BROKEN, 1, lines[::-1])
    endless = itertools.chain(lines[:2], itertools.repeat(lines[2]))  # read until repeated
    _raises(TraceFailure.CHAIN_BROKEN, 1, endless)
    _raises(TraceFailure.REPLAYED, 0, itertools.repeat(lines[0]))


def _retired_key(tmp_path: Path, stolen: int) -> tuple[TraceLog, FixedClock, Held, bytes]:
    """Review 35c's log: the agent's seq 0 by its first key, a rotation at NOW + 100, then
    `stolen` records of the first key after it (seq 1.., records 1..), dated NOW + 150..,
    written by the log's operator, the log's newest history of the agent the rotated one; then
    another agent's record. The log is closed; the agent's history from before the rotation."""
    clock, owner, agent, other = FixedClock(NOW), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    old, before, after, prev = one_record_then_rotated(log, agent, clock)
    for n in range(stolen):
        content = tool_call(args={"amount": 5000 + n})
        forged = sign_record(old, content, seq=1 + n, prev=prev, time=NOW + 150 + n)
        _insert(log, 1 + n, forged)
        prev = forged.hash
    signed = sign_record(other.signer(NOW), tool_call(), seq=0, prev=None, time=NOW + 150)
    _insert(log, 1 + stolen, signed)
    set_newest_history(log, agent, after)
    clock.advance(200)
    return log, clock, owner, before


def _old_histories(lines: list[bytes], before: bytes, stolen: int) -> list[bytes]:
    """The export's lines of the stolen records carrying the history from before the rotation
    (where the key is current: each line verifies alone)."""
    values = [json.loads(line) for line in lines]
    for value in values[1 : 1 + stolen]:
        value["signer"]["history"] = base64.b64encode(before).decode()
    encoded = [json.dumps(value).encode() for value in values]
    for line in encoded:
        verify_bundle(line)
    return encoded


def test_an_export_names_a_retired_key_before_a_bad_signature(tmp_path: Path) -> None:
    """2: record 1, signed by a key retired before it (its line hiding the rotation), is
    named, not record 2's bad signature."""
    _closed, clock, owner, before = _retired_key(tmp_path, 1)
    lines = _old_histories(_export(open_log(tmp_path / "trace.db", clock, owner)), before, 1)
    _raises(TraceFailure.KEY_RETIRED, 1, lines)
    lines[2] = _badly_signed(lines[2])
    _raises(TraceFailure.KEY_RETIRED, 1, lines)
    _raises(TraceFailure.KEY_RETIRED, 1, lines[::-1])


def test_an_export_names_the_first_record_of_a_retired_key_not_its_latest(tmp_path: Path) -> None:
    """2: records 1 to 3 signed by a retired key: record 1 is the first bad one (the latest,
    record 3, was named)."""
    _closed, clock, owner, before = _retired_key(tmp_path, 3)
    lines = _old_histories(_export(open_log(tmp_path / "trace.db", clock, owner)), before, 3)
    error = _raises(TraceFailure.KEY_RETIRED, 1, lines)
    assert f"record at {NOW + 150}" in error.detail
    _raises(TraceFailure.KEY_RETIRED, 1, lines[::-1])


def _resolution(by: Held, escalation: str, agent: Held, time: int) -> VerifiedRecord:
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "nothing", "reasoning": "approved"},
        decision=Decision("approved"),
        links=Links(parent=escalation, parent_agent=agent.identifier),
    )
    return sign_record(by.signer(NOW), content, seq=0, prev=None, time=time)


def test_an_export_names_a_bad_link_before_a_bad_signature(tmp_path: Path) -> None:
    """3: review 34g's resolution by a third party (record 1) of an escalation to a human
    (record 0) is named, not record 2's bad signature, whatever the order of the lines."""
    clock, owner = FixedClock(NOW), Held()
    agent, human, other, third = Held(), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 5000?")
    log.close()
    forged = _resolution(other, asked.record, agent, NOW)
    _insert(log, 1, forged)
    _insert(log, 2, sign_record(third.signer(NOW), tool_call(), seq=0, prev=None, time=NOW))
    lines = _export(open_log(tmp_path / "trace.db", clock, owner))
    lines[2] = _badly_signed(lines[2])
    error = _raises(TraceFailure.LINK_INVALID, 1, lines)
    assert error.record == forged.record.id
    _raises(TraceFailure.LINK_INVALID, 1, [lines[2], lines[0], lines[1]])


def _forward_link(
    tmp_path: Path, resolver: str, *, gap: bool = False
) -> tuple[TraceLog, FixedClock, Held]:
    """A log: a resolution (record 0, by `resolver`: "human", asked, or "other") of the
    agent's escalation to a human (record 1, after it), another agent's record (record 2);
    with `gap`, that other record before the escalation (records 1 and 2 swapped). The log is
    closed."""
    clock, owner = FixedClock(NOW), Held()
    agent, human, other, third = Held(), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    log.close()
    _insert(log, 0, _resolution(human if resolver == "human" else other, _ESCALATION, agent, NOW))
    asked = RecordContent(
        Kind.ESCALATION,
        values={"inputs": "refund?"},
        escalation_to=human.identifier,
        id=_ESCALATION,
    )
    escalation = sign_record(agent.signer(NOW), asked, seq=0, prev=None, time=NOW)
    filler = sign_record(third.signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    _insert(log, 1, filler if gap else escalation)
    _insert(log, 2, escalation if gap else filler)
    return log, clock, owner


def test_a_log_names_a_bad_forward_link_before_a_bad_signature(tmp_path: Path) -> None:
    """4: the resolution at record 0 of the escalation at record 1 (which asked another) is
    named, not record 2's bad signature."""
    closed, clock, owner = _forward_link(tmp_path, "other")
    _raises(TraceFailure.LINK_INVALID, 0, open_log(closed.store.path, clock, owner), export=False)
    _sign_badly_in_log(closed, 2)
    _raises(TraceFailure.LINK_INVALID, 0, open_log(closed.store.path, clock, owner), export=False)


def test_a_log_reads_on_past_a_bad_record_to_judge_a_link_before_it(tmp_path: Path) -> None:
    """4: the escalation (record 2) is after the bad record (record 1): the log is read on
    past it, as the record stands, and past a row the log cannot read, to judge the link."""
    closed, clock, owner = _forward_link(tmp_path, "other", gap=True)
    _sign_badly_in_log(closed, 1)
    _raises(TraceFailure.LINK_INVALID, 0, open_log(closed.store.path, clock, owner), export=False)
    raw = db(closed)
    raw.execute("UPDATE leaves SET envelope = 7 WHERE idx = 1")  # not bytes: the log says so
    raw.close()
    log = open_log(closed.store.path, clock, owner)
    with pytest.raises(TraceError) as unread:
        next(iter(log.stored(1)))
    assert (unread.value.reason, unread.value.index) == (TraceFailure.MALFORMED, 1)
    _raises(TraceFailure.LINK_INVALID, 0, log, export=False)
    (tmp_path / "asked").mkdir()
    closed, clock, owner = _forward_link(tmp_path / "asked", "human", gap=True)
    _sign_badly_in_log(closed, 1)  # a good link: the bad record named
    _raises(TraceFailure.BAD_SIGNATURE, 1, open_log(closed.store.path, clock, owner), export=False)


def test_an_export_names_a_broken_chain_before_a_line_that_is_no_bundle(tmp_path: Path) -> None:
    """5: a line that is no bundle after the line of a broken chain's record: the record is
    named (the line names no record: the export ends there, the first fault before it is
    named, else the line; the lines after it are not read, an endless file of them ends)."""
    _closed, clock, owner, broken = _broken_chain(tmp_path)
    lines = _export(open_log(tmp_path / "trace.db", clock, owner))
    lines[2] = b"{not json"
    assert _raises(TraceFailure.CHAIN_BROKEN, 1, lines).record == broken.record.id
    with pytest.raises(TraceError) as caught:  # first, it is the first fault
        verify_export([lines[2], *lines[:2]])
    assert (caught.value.reason, caught.value.index) == (TraceFailure.MALFORMED, None)
    assert caught.value.detail.startswith("line 1:")
    with pytest.raises(TraceError) as endless:
        verify_export(itertools.chain(lines[:2], itertools.repeat(b"{not json")))
    assert (endless.value.reason, endless.value.index) == (TraceFailure.CHAIN_BROKEN, 1)


def test_an_export_names_a_broken_chain_before_a_line_it_cannot_read(tmp_path: Path) -> None:
    """5: the reader fails at a line (an OSError: a line over MAX_TRACE_LINE_BYTES, at the
    CLI) after the line of a broken chain's record: the record is named; with no fault before
    it, the reader's error."""
    _closed, clock, owner, broken = _broken_chain(tmp_path)
    lines = _export(open_log(tmp_path / "trace.db", clock, owner))

    def reader(good: int) -> Iterator[bytes]:
        yield from lines[:good]
        raise OSError("line 3 is longer than allowed")

    assert _raises(TraceFailure.CHAIN_BROKEN, 1, reader(2)).record == broken.record.id
    with pytest.raises(OSError, match="line 3"):
        verify_export(reader(1))
