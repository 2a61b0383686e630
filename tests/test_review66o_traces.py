"""Review 66o, traces: the backdating rule of review 66h (`troth.trace.backdating`) attacked
from an export.

traces 1 (medium: a backdated record verified `valid` against the kept note) `verify_export`
  held a line past the kept checkpoint to the floor only when that line's own log material
  signed the kept note, while the export read `valid` once any line's did (the line of the
  kept size's last record). After the log's key was renewed (the export's lines carry the new
  key only), a thief who wrote a record dated before the kept checkpoint into trace.db (66h
  traces 1) added the retired log key's attestation (public: any older export carries it) to
  that one line and not to the backdated record's: the export verified `valid` against the
  kept note, the backdated record in it. Now, once the export is anchored to the kept note
  (`valid`), every line at or past its size is held to the floor, whatever log material the
  line itself carries (`_Export.check_between`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db
from tests.test_review66h_backdating import AGENTS, START, Agent
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.trace import TraceLog
from troth.trace.checkpoint import AnchorStatus
from troth.trace.export import export_jsonl, verify_export


def _exported(log: TraceLog) -> list[dict[str, object]]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _with_attestations(lines: list[dict[str, object]], extra: list[str], at: int) -> list[bytes]:
    """The export, line `at` carrying `extra` log key attestations beside its own."""
    shaped = []
    for value in lines:
        if value["index"] == at:
            log = dict(value["log"])  # type: ignore[call-overload]
            log["attestations"] = [*log["attestations"], *extra]
            value = {**value, "log": log}
        shaped.append(json.dumps(value).encode())
    return shaped


def _renewed_log_with_a_backdated_record(tmp: Path) -> tuple[TraceLog, bytes, list[str]]:
    """A log whose key was renewed after a kept note of 1 record, then a record dated more
    than the skew before that note written into its file (66h traces 1): the log, the kept
    note and the retired log key's attestation, as an older export carries it."""
    owner = Held()
    owner.signer(NOW)
    clock = FixedClock(START)
    log = TraceLog.open(tmp / "log.db", clock=clock, signer=lambda now: owner.signer(now))
    Agent(AGENTS[0]).append(log, START)
    kept = log.checkpoint().note
    retired = _exported(log)[0]["log"]["attestations"]  # type: ignore[index]
    clock.advance(100)
    owner.rotate(START + 50)
    raw = db(log)
    raw.execute("DELETE FROM checkpoints")
    raw.close()
    with TraceLog.open(log.store.path, clock=FixedClock(START - SKEW - 1)) as writer:
        Agent(AGENTS[1]).append(writer, START - SKEW - 1)
    log.checkpoint()
    return log, kept, list(retired)


def test_traces1_a_line_stripped_of_the_kept_key_is_held_to_the_floor(tmp_path: Path) -> None:
    log, kept, retired = _renewed_log_with_a_backdated_record(tmp_path)
    lines = _exported(log)
    log.close()
    # as exported (no line carries the retired key): not anchored, as before review 66h
    assert verify_export([json.dumps(v).encode() for v in lines], anchor=kept).status is (
        AnchorStatus.UNANCHORED
    )
    with pytest.raises(TraceError) as refused:  # anchored by line 0, record 1 backdated
        verify_export(_with_attestations(lines, retired, 0), anchor=kept)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 1)
    with pytest.raises(TraceError) as reordered:  # whatever the order of the lines
        verify_export(_with_attestations(lines, retired, 0)[::-1], anchor=kept)
    assert (reordered.value.reason, reordered.value.index) == (TraceFailure.BACKDATED, 1)
