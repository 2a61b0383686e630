"""Review 40b, refuted attempts (pinned): a partial export around a version 1 link settled by
the signer's own record after it (review 39b, trace 2) flips no verdict, whichever lines are
kept; the resumption's memory of waits stays bounded and going round survives records
replaced under its cursor.
"""

from __future__ import annotations

import bisect
import itertools
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_review34g_trace import _export, _insert
from tests.test_review36e_trace import _as_v1
from tests.test_review39a_resume import NOWHERE
from tests.test_review39b_trace import _unsettled_log
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.node.membership import (
    MAX_RESUME_BACKOFFS,
    RESUME_BACKOFF_MAX,
    RESUMED_PER_ROUND,
    Resumption,
)
from troth.node.runtime import MAINTENANCE_SECONDS
from troth.storage import PendingEnrollmentRecord
from troth.trace import verify_log
from troth.trace.export import verify_export
from troth.trace.record import Decision, Kind, Links
from troth.trace.signing import RecordContent, sign_record


def _honest_log(tmp_path: Path) -> list[bytes]:
    """A re-signed log shaped as review 39b's forged one, but honest: 0, D's step; 1, A's
    escalation asking C; 2, C's version 1 resolution naming the escalation's id alone; 3, C's
    own step under that id, after it; 4, D's later step. `verify_log` passes it."""
    clock, owner = FixedClock(NOW), Held()
    d, a, c = Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    recorder(log, d, clock).record(tool_call())
    asked = recorder(log, a, clock).escalate(c.identifier, question="refund 5000?")
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "nothing", "reasoning": "approved"},
        decision=Decision("approved"),
        links=Links(parent=asked.record, parent_agent=a.identifier),
    )
    resolved = _as_v1(c, sign_record(c.signer(NOW), content, seq=0, prev=None, time=NOW))
    step = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=asked.record)
    own = sign_record(c.signer(NOW), step, seq=1, prev=resolved.hash, time=NOW)
    later = sign_record(Held().signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    log.close()
    for index, record in ((2, resolved), (3, own), (4, later)):
        _insert(log, index, record)
    resigned = open_log(tmp_path / "trace.db", clock, owner)
    verify_log(resigned)
    lines = _export(resigned)
    resigned.close()
    return lines


def _subsets(count: int) -> list[tuple[int, ...]]:
    return [s for n in range(1, count + 1) for s in itertools.combinations(range(count), n)]


def test_no_partial_export_of_an_honest_log_turns_its_version_1_link_red(tmp_path: Path) -> None:
    """Every export of some of the honest log's lines (31 of them, in log order) verifies:
    the signer's own record after the link, kept or left out, with the escalation before it
    kept or left out, never makes `_settled` take the link for another record."""
    lines = _honest_log(tmp_path)
    for kept in _subsets(len(lines)):
        verify_export([lines[i] for i in kept])


def test_every_partial_export_showing_the_forgery_is_refused(tmp_path: Path) -> None:
    """Review 39b's forged log (0, D's step; 1, A's escalation asking C; 2, M's version 1
    resolution; 3, M's own step under the id): every export keeping the escalation and the
    resolution, and a line that settles the link (every line before it, or M's own after
    it), is refused LINK_INVALID at the resolution; one that keeps neither leaves the link
    unsettled (a record the export does not hold), never resolved to another record."""
    lines, forged = _unsettled_log(tmp_path)
    for kept in _subsets(len(lines)):
        settles = {1, 2} <= set(kept) and (0 in kept or 3 in kept)
        if settles:
            with pytest.raises(TraceError) as caught:
                verify_export([lines[i] for i in kept])
            assert caught.value.reason is TraceFailure.LINK_INVALID, kept
            assert caught.value.record == forged, kept
        else:
            verify_export([lines[i] for i in kept])


class _Records:
    """A wallet's pending records as `Resumption.choose` reads them (`every_pending`'s order
    and cursor over a list an attacker's tickets fill)."""

    def __init__(self, records: list[PendingEnrollmentRecord]) -> None:
        self.records = records

    @property
    def records(self) -> list[PendingEnrollmentRecord]:
        return self._records

    @records.setter
    def records(self, records: list[PendingEnrollmentRecord]) -> None:
        """Sorted once here, not at every read (10,000 records a round made the test slow)."""
        self._records = records
        self._ordered = sorted(records, key=_key)
        self._keys = [_key(p) for p in self._ordered]

    def interrupted_enrollments(
        self, limit: int, after: tuple[int, bytes, bytes, str] | None = None
    ) -> list[PendingEnrollmentRecord]:
        start = 0 if after is None else bisect.bisect_right(self._keys, after)
        return self._ordered[start : start + limit]


def _key(p: PendingEnrollmentRecord) -> tuple[int, bytes, bytes, str]:
    return (p.started_at, p.identifier, p.authority, p.ticket)


def _record(i: int, started_at: int, ticket: str = "t") -> PendingEnrollmentRecord:
    return PendingEnrollmentRecord(
        i.to_bytes(32, "big"), b"\x01" * 32, f"{ticket}{i}", NOWHERE, started_at
    )


def test_the_memory_of_waits_stays_bounded_when_every_record_keeps_failing() -> None:
    """Ten thousand pending records (tickets naming addresses no one answers at), every
    attempt failing, three days of rounds: the waits the node keeps stay within
    MAX_RESUME_BACKOFFS and the records attempted in the last hour (16 a round), and each
    round sends at most RESUMED_PER_ROUND."""
    clock = FixedClock(NOW)
    records = _Records([_record(i, NOW - 3600) for i in range(10_000)])
    state = Resumption()
    rounds_an_hour = RESUME_BACKOFF_MAX // MAINTENANCE_SECONDS
    for _ in range(3 * 24 * rounds_an_hour):
        clock.advance(MAINTENANCE_SECONDS)
        chosen = state.choose(records, clock.now())  # type: ignore[arg-type]
        assert len(chosen) <= RESUMED_PER_ROUND
        for pending in chosen:
            state.failed(pending, clock.now())
        assert len(state.waits) <= MAX_RESUME_BACKOFFS + RESUMED_PER_ROUND * (rounds_an_hour + 1)


def test_going_round_survives_records_replaced_and_deleted_under_the_cursor() -> None:
    """Each round the record the cursor stopped at is replaced (`troth enroll` with another
    ticket: a newer `started_at`) and another deleted: every record left is still chosen
    within a bounded number of rounds, none skipped for good."""
    clock = FixedClock(NOW)
    records = _Records([_record(i, NOW - 3600 + i) for i in range(300)])
    state = Resumption()
    seen: set[bytes] = set()
    for round_ in range(200):
        clock.advance(MAINTENANCE_SECONDS)
        for pending in state.choose(records, clock.now()):  # type: ignore[arg-type]
            seen.add(pending.identifier)
            state.failed(pending, clock.now())
        if state.cursor is not None:
            at = state.cursor
            kept = [p for p in records.records if _key(p) != at]
            replaced = [p for p in records.records if p not in kept]
            kept += [_record(int.from_bytes(p.identifier), clock.now(), "new") for p in replaced]
            if round_ % 2 and len(kept) > 1:
                kept.pop(0)  # the oldest deleted (completed by an operator)
            records.records = kept
    assert {p.identifier for p in records.records} <= seen
