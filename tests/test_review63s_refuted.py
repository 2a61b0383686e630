"""Review 63s: attacks on traces as evidence that did not work (each names the defence that
held; each test fails if that defence breaks).

- a log truncated after a checkpoint was given out: `verify_log` and an export's
  verification, against the kept note, say TRUNCATED;
- a log forked at the kept size (another root, signed by the log key): FORKED, for the log
  and for its export;
- a log forked and grown past the kept size: `verify_log` recomputes the kept size's root
  (INCONSISTENT);
- a proof bundle's checkpoint swapped for another genuine checkpoint of its log, or for
  another log's (the record replayed into another log's bundle): the inclusion proof fails;
- a record's row moved to another agent in the log's file: LEAF_MISMATCH;
- a disclosure added to a bundle for a field the record never committed, and a redaction
  that hides more than the report says: refused / the report names only what is disclosed;
- a stolen pre-rotation key's record dated after the rotation, appended to a log that did not
  know of the rotation yet: `verify_log` refuses it once the log holds the newer history.
"""

from __future__ import annotations

import io
import json
import shutil
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
from tests.test_review63s_traces import split_view
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import sign_record
from troth.trace.verify import verify_log

_F = TraceFailure


def _copy(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return out.getvalue().encode().splitlines()


def test_a_log_truncated_after_a_checkpoint_given_out(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "log.db", clock, owner)
    recorder(log, agent, clock).record(tool_call())
    log.checkpoint()
    log.close()
    _copy(tmp_path / "log.db", tmp_path / "backup.db")
    log = open_log(tmp_path / "log.db", clock, owner)
    recorder(log, agent, clock).record(tool_call())
    kept = log.checkpoint().note
    log.close()
    short = open_log(tmp_path / "backup.db", clock, owner)
    with pytest.raises(TraceError) as logged:
        verify_log(short, anchor=kept)
    assert logged.value.reason is _F.TRUNCATED
    with pytest.raises(TraceError) as exported:
        verify_export(_export(short), anchor=kept)
    assert exported.value.reason is _F.TRUNCATED


def test_a_fork_grown_past_the_kept_size_is_inconsistent(tmp_path: Path) -> None:
    kept, forked, _ = split_view(tmp_path)
    with TraceLog.open(tmp_path / "fork.db", clock=FixedClock(NOW)) as fork:
        assert fork.size() == 4
        with pytest.raises(TraceError) as grown:
            verify_log(fork, anchor=kept)  # the kept size's root recomputed from the leaves
        assert grown.value.reason is _F.INCONSISTENT
    bundle = json.loads(forked.splitlines()[2])
    bundle["checkpoint"] = kept.decode()  # the fork's record 2 against the kept checkpoint
    with pytest.raises(TraceError) as swapped:
        verify_bundle(json.dumps(bundle).encode(), anchor=kept)
    assert swapped.value.reason is _F.PROOF_INVALID


def test_a_fork_signed_at_the_kept_size_is_refused(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "a.db", clock, owner)
    recorder(log, agent, clock).record(tool_call())
    log.close()
    _copy(tmp_path / "a.db", tmp_path / "b.db")
    real, fork = (
        open_log(tmp_path / "a.db", clock, owner),
        open_log(tmp_path / "b.db", clock, owner),
    )
    recorder(real, agent, clock).record(tool_call("real"))
    recorder(fork, agent, clock).record(tool_call("forked"))
    kept = real.checkpoint().note
    fork.checkpoint()
    with pytest.raises(TraceError) as logged:
        verify_log(fork, anchor=kept)
    assert logged.value.reason is _F.FORKED
    with pytest.raises(TraceError) as exported:
        verify_export(_export(fork), anchor=kept)
    assert exported.value.reason is _F.FORKED


def test_a_bundle_against_another_checkpoint_is_refused(tmp_path: Path) -> None:
    kept, _, grown = split_view(tmp_path)
    line = json.loads(grown.splitlines()[1])
    line["checkpoint"] = kept.decode()  # a genuine checkpoint of the log, another size
    with pytest.raises(TraceError) as refused:
        verify_bundle(json.dumps(line).encode())
    assert refused.value.reason is _F.PROOF_INVALID
    other = open_log(tmp_path / "other.db", FixedClock(NOW))
    recorder(other, Held(), FixedClock(NOW)).record(tool_call())
    recorder(other, Held(), FixedClock(NOW)).record(tool_call())
    theirs = json.loads(_export(other)[1])
    line = json.loads(grown.splitlines()[1])
    line["checkpoint"], line["log"] = theirs["checkpoint"], theirs["log"]  # replayed there
    with pytest.raises(TraceError) as replayed:
        verify_bundle(json.dumps(line).encode())
    assert replayed.value.reason is _F.PROOF_INVALID


def test_a_record_moved_to_another_agent_in_the_file(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    first, second = Held(), Held()
    recorder(log, first, clock).record(tool_call())
    recorder(log, second, clock).record(tool_call())
    raw = db(log)
    columns = [row[1] for row in raw.execute("PRAGMA table_info(leaves)")]
    assert "agent" in columns
    raw.execute("UPDATE leaves SET agent = ? WHERE idx = 1", (first.identifier.digest,))
    raw.close()
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert refused.value.reason is _F.LEAF_MISMATCH
    assert refused.value.index == 1


def test_disclosures_cannot_say_more_or_less_than_they_show(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    receipt = recorder(log, Held(), clock).record(tool_call(args={"a": 1}, result="ok"))
    record_id = receipt.record
    log.redact(record_id, "result")
    bundle = json.loads(_export(log)[0])
    report = verify_bundle(json.dumps(bundle).encode())
    assert report.disclosed == ("args",)  # the redacted result is not said to be disclosed
    invented = dict(bundle["disclosures"]["args"])
    bundle["disclosures"]["reasoning"] = invented  # a field the record never committed
    with pytest.raises(TraceError) as refused:
        verify_bundle(json.dumps(bundle).encode())
    assert refused.value.reason is _F.DISCLOSURE_MISMATCH


def test_a_stolen_old_key_after_the_rotation_is_refused_offline(tmp_path: Path) -> None:
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "a.db", FixedClock(NOW), owner)
    old, _, after, head = one_record_then_rotated(log, agent, FixedClock(NOW))
    clock = FixedClock(NOW + 200)
    log = TraceLog.open(tmp_path / "a.db", clock=clock, signer=lambda now: owner.signer(now))
    stolen = sign_record(old, tool_call("stolen"), seq=1, prev=head, time=NOW + 200)
    log.append(stolen)  # this log had not seen the rotation yet
    set_newest_history(log, agent, after)  # it does now (the agent's next record brings it)
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert refused.value.reason is _F.KEY_RETIRED
    assert refused.value.index == 1
