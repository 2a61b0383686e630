"""Review 63s: traces as evidence, attacked as the party who must be convinced offline.

1. A forked export was not told from an honest one. A verifier keeps a checkpoint of N
   records of a log; the log's operator (its key) grows another continuation of the first
   N-1 records and hands this verifier a JSONL export of it (a split view: another verifier
   is shown the real one). `verify_export` answered `unanchored` (exit 0 from `troth trace
   verify --file`), as it answers an honest export of the log grown past the kept
   checkpoint: an export carries no consistency proof, so anything larger than the kept
   checkpoint was "nothing to compare with". Yet the export's line of record N-1 proves it:
   the left siblings of leaf N-1's inclusion proof in the larger tree are the perfect
   subtrees of the first N leaves (RFC 9162 §2.1.3.2: the path of the last leaf of a prefix
   is the prefix's own), so that line alone gives the root of the first N records, which
   must be the kept checkpoint's. A line at index N-1 now judges the export's (or a proof
   bundle's) larger checkpoint against the kept one: the kept root refused as
   INCONSISTENT, matched as VALID (an honest export of the grown log is anchored, not
   `unanchored`). Without that line (an `--agent` export that leaves it out) the answer
   stays `unanchored`. The line must carry log material that signs the kept note, as
   `verify_log` verifies a kept note by the log's: a stolen pre-rotation log key's
   checkpoint, handed with the log's history from before the rotation, is not taken as grown
   from a kept note its new key signed.
2. (Found in the fix of 1, before it was merged.) On a node, an `--agent` export grown past
   the node's accepted checkpoint, holding the kept size's last line but not the accepted
   size's, read VALID against the auditor's older kept note; `AcceptedCheckpoints.anchored`
   then found the export not comparable with the accepted checkpoint and refused the kept
   note as older (ROLLED_BACK, exit 1), the alarm of a rollback for an intact log. Such an
   export is now `unanchored`, as before 1: the node holds a checkpoint it cannot be
   compared with.
3. (Fixed in review 66h, the lead's decision.) A record dated well before a checkpoint
   that precedes it in the log verified `valid`. An honest log appends a record within
   300 s of its clock, which read at least the checkpoint's time when it signed it, so such
   a record was never appended: it was written into trace.db (no log key needed: records
   are signed by their agents, and the node's next checkpoint covers what the file holds).
   With an agent's pre-rotation key, dated before the rotation and chained on an agent that
   recorded nothing since, it passes every other check. Refusing it offline needs the log
   to refuse at append a record dated more than 300 s before its newest checkpoint, which
   a node whose clock was stepped back would then do for every record until its clock
   caught up (a checkpoint is never dated before an older one). Now both sides apply
   `troth.trace.backdating`: the log refuses such an append (BACKDATED: fix the clock), and
   `verify_log` refuses such a record after the checkpoint a verifier kept.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.traces import (
    NOW,
    Held,
    db,
    one_record_then_rotated,
    open_log,
    record_on_node,
    recorder,
    set_newest_history,
    tool_call,
)
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.checkpoint import AnchorStatus, parse_checkpoint, sign_checkpoint
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import resolve_key, sign_record
from troth.trace.verify import verify_log


def split_view(tmp_path: Path) -> tuple[bytes, str, str]:
    """A log of 3 records checkpointed (the kept note); the same log forked after its second
    record (another third and a fourth, signed by the same log key); the real log grown to
    5. Returns the kept note, the fork's export and the grown log's export."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    real = open_log(tmp_path / "real.db", clock, owner)
    agent_recorder = recorder(real, agent, clock)
    for _ in range(2):
        agent_recorder.record(tool_call())
    real.close()
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"real.db{suffix}").exists():
            shutil.copy(tmp_path / f"real.db{suffix}", tmp_path / f"fork.db{suffix}")
    real = open_log(tmp_path / "real.db", clock, owner)
    recorder(real, agent, clock).record(tool_call("real-3"))
    kept = real.checkpoint().note
    fork = open_log(tmp_path / "fork.db", clock, owner)
    forked = recorder(fork, agent, clock)
    forked.record(tool_call("forked-3"))
    forked.record(tool_call("forked-4"))
    fork_out = io.StringIO()
    export_jsonl(fork, fork_out)
    fork.close()
    grown = recorder(real, agent, clock)
    grown.record(tool_call("real-4"))
    grown.record(tool_call("real-5"))
    real_out = io.StringIO()
    export_jsonl(real, real_out)
    real.close()
    return kept, fork_out.getvalue(), real_out.getvalue()


def test_a_forked_export_is_refused_against_the_kept_checkpoint(tmp_path: Path) -> None:
    """Traces 1: the fork's export, larger than the kept checkpoint, is INCONSISTENT (it read
    `unanchored`); the honest grown log's export is VALID against the same kept note."""
    kept, forked, grown = split_view(tmp_path)
    with pytest.raises(TraceError) as caught:
        verify_export(forked.encode().splitlines(), anchor=kept)
    assert caught.value.reason is TraceFailure.INCONSISTENT
    report = verify_export(grown.encode().splitlines(), anchor=kept)
    assert report.status is AnchorStatus.VALID
    assert report.anchor is not None
    assert report.anchor.size == 3
    assert report.checkpoint is not None
    assert report.checkpoint.size == 5


def test_a_forked_bundle_of_the_prefix_last_record_is_refused(tmp_path: Path) -> None:
    """Traces 1: one proof bundle, the record at the kept size - 1, settles it as well."""
    kept, forked, grown = split_view(tmp_path)
    with pytest.raises(TraceError) as caught:
        verify_bundle(forked.splitlines()[2].encode(), anchor=kept)
    assert caught.value.reason is TraceFailure.INCONSISTENT
    report = verify_bundle(grown.splitlines()[2].encode(), anchor=kept)
    assert report.status is AnchorStatus.VALID


def test_an_export_without_the_prefix_last_line_stays_unanchored(tmp_path: Path) -> None:
    """Traces 1: lines that hold no proof of the kept size prove nothing either way."""
    kept, forked, grown = split_view(tmp_path)
    for text in (forked, grown):
        lines = text.encode().splitlines()
        report = verify_export(lines[:2] + lines[3:], anchor=kept)
        assert report.status is AnchorStatus.UNANCHORED


def test_a_stolen_old_log_key_does_not_grow_the_kept_checkpoint(tmp_path: Path) -> None:
    """Traces 1, as fixed: the line proving its larger checkpoint grew from the kept one must
    carry log material that signs the kept note, as `verify_log` verifies a kept note by the
    log's. The log rotated; the kept note is signed by its new key; a thief of the old key
    signs a checkpoint of the grown tree dated after the rotation and hands the line with the
    log's history from before it (in which the old key is current): unanchored, not valid."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    old = owner.signer(NOW)
    log = TraceLog.open(tmp_path / "log.db", clock=clock, signer=lambda now: owner.signer(now))
    for _ in range(2):
        recorder(log, agent, clock).record(tool_call())
    log.checkpoint()
    log.close()
    owner.rotate(NOW + 100)
    later = FixedClock(NOW + 200)
    log = TraceLog.open(tmp_path / "log.db", clock=later, signer=lambda now: owner.signer(now))
    grown = recorder(log, agent, later)
    grown.record(tool_call())
    kept = log.checkpoint().note
    grown.record(tool_call())
    grown.record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    line = json.loads(out.getvalue().splitlines()[2])
    assert verify_bundle(json.dumps(line).encode(), anchor=kept).status is AnchorStatus.VALID
    honest = parse_checkpoint(line["checkpoint"].encode())[0]
    forged = sign_checkpoint(
        old, resolve_key(old.identity, old.attestation), 5, honest.root, NOW + 300
    )
    line["checkpoint"] = forged.note.decode()
    line["log"] = {
        "history": base64.b64encode(old.identity.history).decode(),
        "attestations": [base64.b64encode(old.attestation).decode()],
    }
    report = verify_bundle(json.dumps(line).encode(), anchor=kept)
    assert report.status is AnchorStatus.UNANCHORED


def test_an_agents_export_past_the_accepted_checkpoint_is_no_rollback(
    troth_home: Path, tmp_path: Path
) -> None:
    """Traces 2 (of the fix of 1): an auditor's kept note of 2 records, the node's accepted
    checkpoint of 4 (the operator's verify), and an `--agent` export of the log grown to 6
    holding the auditor's line 1 (its growth from the kept note proved) and not line 3 (no
    proof against the accepted size). `AcceptedCheckpoints.anchored` found the kept note older
    than the accepted one, the export not comparable with that, and refused the kept note:
    `kept checkpoint older than one accepted before`, exit 1, the alarm of a rollback for an
    intact log (before traces 1 the export read `unanchored`). It reads `unanchored` again:
    the node holds a newer checkpoint the export cannot be compared with."""
    run("identity", "create", "support")
    run("identity", "create", "other")
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    auditor = tmp_path / "auditor.note"
    run("trace", "verify", "--checkpoint", str(auditor))  # kept: 2
    record_on_node(troth_home, 2, "other")
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "operator.note"))  # accepted: 4
    record_on_node(troth_home, 2)
    export = tmp_path / "support.jsonl"
    run("trace", "export", "--agent", "support", "--out", str(export))
    indices = [json.loads(line)["index"] for line in export.read_text().splitlines()]
    assert indices == [0, 1, 4, 5]
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(auditor))
    assert said.stdout.startswith("unanchored: 4 record(s) verified"), said.stdout


def test_a_record_backdated_before_an_earlier_checkpoint_is_refused(tmp_path: Path) -> None:
    """Traces 3 (fixed in review 66h): the agent rotated at NOW + 100 and recorded nothing
    since; the log signed a checkpoint of its one record at NOW + 1000, which a verifier kept.
    A thief of the agent's old key, with write access to trace.db (no log key needed: a record
    is signed by its agent, and the node's next checkpoint covers what the file holds), puts
    in a record dated NOW + 50, before the rotation, chained on the agent's head. An honest
    log appends a record within 300 s of its clock, and its clock read at least NOW + 1000
    when it signed the kept checkpoint: no honest record after that checkpoint is dated
    before NOW + 700. The log refuses it at append (its clock stepped back to NOW + 50), so
    the thief deletes the checkpoint rows first; `verify_log` against the kept note answered
    `valid`, it now refuses record 1 as BACKDATED."""
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "a.db", FixedClock(NOW), owner)
    old, _, after, head = one_record_then_rotated(log, agent, FixedClock(NOW))
    signing = TraceLog.open(
        tmp_path / "a.db", clock=FixedClock(NOW + 1000), signer=lambda now: owner.signer(now)
    )
    kept = signing.checkpoint().note
    signing.close()
    stolen = sign_record(old, tool_call("stolen"), seq=1, prev=head, time=NOW + 50)
    injected = TraceLog.open(tmp_path / "a.db", clock=FixedClock(NOW + 50))
    with pytest.raises(TraceError) as at_append:
        injected.append(stolen)
    assert at_append.value.reason is TraceFailure.BACKDATED
    raw = db(injected)
    raw.execute("DELETE FROM checkpoints")
    raw.close()
    injected.append(stolen)
    injected.close()
    log = TraceLog.open(
        tmp_path / "a.db", clock=FixedClock(NOW + 2000), signer=lambda now: owner.signer(now)
    )
    set_newest_history(log, agent, after)
    log.checkpoint()
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=kept)
    assert refused.value.reason is TraceFailure.BACKDATED
    assert refused.value.index == 1
    assert verify_log(log).status is AnchorStatus.UNANCHORED  # nothing kept: nothing to tell
