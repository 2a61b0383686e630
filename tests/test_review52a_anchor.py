"""Review 52a: the checkpoint a verifier keeps.

Anchor 1: `troth trace verify --checkpoint FILE` swapped for an older genuine note of the log,
the log rolled back to match, read `valid`; the node now keeps the newest checkpoint its
verifiers accepted of each log (node.db, `troth.trace.accepted`) and refuses a kept one older
than it (`kept checkpoint older than one accepted before`).
Anchor 2: the log's checkpoints missing against a kept one: `valid ... (the log has no
checkpoint yet)`, or TRUNCATED with every record present.
Anchor 3: `verify_checkpoint` judged the time of the first log-key signature that verifies
only: a retired key's line before the current key's refused the note.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from tests.support.backups import copy_db, restore_db
from tests.support.cli import run, run_json
from tests.support.traces import (
    NOW,
    Held,
    node_trace_db,
    open_log,
    record_on_node,
    recorder,
    tool_call,
)
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.crypto.private import generate_private_key
from troth.errors import TraceError, TraceFailure
from troth.storage.sqlite import SqliteDatabase
from troth.trace import verify_log
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.checkpoint import (
    Checkpoint,
    format_note,
    note_key_id,
    parse_checkpoint,
    parse_note,
    verify_checkpoint,
)
from troth.trace.signing import KeyEpoch

_F = TraceFailure


def test_a_kept_checkpoint_swapped_for_an_older_one_is_refused(
    troth_home: Path, tmp_path: Path
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    run("trace", "checkpoint")
    older = tmp_path / "older.note"
    run("trace", "verify", "--checkpoint", str(older))  # kept: the checkpoint of 3
    backup = tmp_path / "trace-backup.db"
    copy_db(node_trace_db(troth_home), backup)
    record_on_node(troth_home, 3)
    run("trace", "checkpoint")
    kept = tmp_path / "kept.note"
    run("trace", "verify", "--checkpoint", str(kept))  # kept: the checkpoint of 6
    restore_db(node_trace_db(troth_home), backup)  # the log rolled back to 3 records
    kept.write_bytes(older.read_bytes())  # the swap
    said = run("trace", "verify", "--checkpoint", str(kept), code=1)
    assert "kept checkpoint older than one accepted before" in said.stdout + said.stderr
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--out", str(export))
    said = run("trace", "verify", "--file", str(export), "--checkpoint", str(kept), code=1)
    assert "kept checkpoint older than one accepted before" in said.stdout + said.stderr
    assert kept.read_bytes() == older.read_bytes()  # a refusal writes nothing


def test_the_kept_file_never_goes_back(troth_home: Path, tmp_path: Path) -> None:
    """The log's newest smaller than the kept one (its checkpoints rolled back, every record
    there): the kept file keeps the newer note, not the log's older one."""
    run("identity", "create", "support")
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    record_on_node(troth_home, 2)
    run("trace", "checkpoint")
    kept = tmp_path / "kept.note"
    run("trace", "verify", "--checkpoint", str(kept))
    newest = kept.read_bytes()
    with sqlite3.connect(node_trace_db(troth_home)) as conn:
        conn.execute("DELETE FROM checkpoints WHERE size = 4")
    report = run_json("trace", "verify", "--checkpoint", str(kept))
    assert report["status"] == "valid"
    assert kept.read_bytes() == newest
    said = run("trace", "verify", "--checkpoint", str(kept)).stdout
    assert "the log's newest checkpoint is of 2 record(s), smaller than the kept one" in said
    assert "later checkpoints are missing, not its records" in said
    with sqlite3.connect(node_trace_db(troth_home)) as conn:
        conn.execute("DELETE FROM checkpoints")
    said = run("trace", "verify", "--checkpoint", str(kept)).stdout
    assert said.startswith("valid: 4 record(s) verified"), said
    assert "(the log holds no checkpoint, not even the kept one" in said
    assert "no checkpoint yet" not in said
    assert kept.read_bytes() == newest
    run("trace", "verify", "--checkpoint", str(kept))  # and is still accepted


def _grown(tmp_path: Path) -> tuple[Path, bytes, Held]:
    clock, owner = FixedClock(NOW), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    rec = recorder(log, Held(), clock)
    for _ in range(3):
        rec.record(tool_call())
    log.checkpoint()
    for _ in range(2):
        rec.record(tool_call())
    kept = log.checkpoint().note
    log.close()
    return tmp_path / "trace.db", kept, owner


def _newer_and_smaller(tmp_path: Path) -> tuple[Checkpoint, Checkpoint]:
    """A grown log's newest checkpoint, verified, and its first, smaller one."""
    path, kept, owner = _grown(tmp_path)
    log = open_log(path, FixedClock(NOW), owner)
    newer = verify_log(log, anchor=kept).checkpoint
    smaller = verify_log(log, anchor=log.checkpoints()[0]).anchor
    log.close()
    assert newer is not None
    assert smaller is not None
    return newer, smaller


def test_a_log_without_checkpoints_is_said_so(tmp_path: Path) -> None:
    path, kept, owner = _grown(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM checkpoints")
    log = open_log(path, FixedClock(NOW), owner)
    report = verify_log(log, anchor=kept)
    assert report.checkpoint is None
    assert report.lacks_kept
    assert report.tail == 0  # the kept one covers all 5
    assert report.to_json()["lacks_kept_checkpoint"] is True
    log.close()


def test_a_log_whose_newest_checkpoint_is_smaller_than_the_kept_one_is_not_truncated(
    tmp_path: Path,
) -> None:
    path, kept, owner = _grown(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM checkpoints WHERE size = 5")
    log = open_log(path, FixedClock(NOW), owner)
    report = verify_log(log, anchor=kept)  # every record there: not TRUNCATED
    assert report.checkpoint is not None
    assert report.checkpoint.size == 3
    assert report.lacks_kept
    assert report.tail == 0
    log.close()


def _epoch(key: object, *, retired_at: int | None, current: bool) -> KeyEpoch:
    return KeyEpoch(
        identifier=None,  # type: ignore[arg-type]
        keyid="k",
        key=key,  # type: ignore[arg-type]
        change=0,
        is_current=current,
        attested_from=NOW - 1000,
        expires_at=NOW + 10_000,
        primary_valid_from=NOW - 1000,
        primary_valid_until=NOW + 10_000,
        retired_at=retired_at,
    )


def test_a_retired_key_line_before_the_current_one_does_not_refuse(tmp_path: Path) -> None:
    owner = Held()
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock, owner)
    note = log.checkpoint().note
    checkpoint, _ = parse_checkpoint(note)
    old, new = generate_private_key(KeyType.ED25519), generate_private_key(KeyType.ED25519)
    origin = checkpoint.origin
    body, _signatures = parse_note(note)
    lines = [
        (origin, note_key_id(origin, k.public_key), k.sign(checkpoint.body)) for k in (old, new)
    ]
    forged = format_note(body, lines)
    epochs = {
        b"old": _epoch(old.public_key, retired_at=NOW - 10, current=False),
        b"new": _epoch(new.public_key, retired_at=None, current=True),
    }
    attestations = {"old": b"old", "new": b"new"}
    got = verify_checkpoint(
        forged, owner.identity, attestations, resolve=lambda _identity, att: epochs[att]
    )
    assert got.verified
    assert got.size == checkpoint.size
    only_old = format_note(body, lines[:1])
    with pytest.raises(TraceError) as caught:  # retired after retirement: refused as before
        verify_checkpoint(
            only_old, owner.identity, attestations, resolve=lambda _identity, att: epochs[att]
        )
    assert caught.value.reason is _F.CHECKPOINT_INVALID
    log.close()


def test_the_accepted_row_only_moves_forward(tmp_path: Path) -> None:
    """Two verifiers racing: the slower one's older checkpoint neither lowers the row nor is
    written to the kept file; a kept note older than the row, or forking from it, is refused."""
    newer, smaller = _newer_and_smaller(tmp_path)
    assert smaller.size < newer.size
    db = SqliteDatabase(tmp_path / "node.db")
    accepted = AcceptedCheckpoints(db)
    written: list[bytes] = []
    assert accepted.keep(None, newer, written.append) == newer
    with pytest.raises(TraceError) as caught:
        accepted.keep(smaller, smaller, written.append)
    assert caught.value.reason is _F.ROLLED_BACK
    assert "kept checkpoint older than one accepted before" in str(caught.value)
    assert accepted.keep(None, smaller, written.append).note == newer.note  # not lowered
    assert written == [newer.note, newer.note]  # nor the file
    with pytest.raises(TraceError) as caught:
        accepted.check(dataclasses.replace(newer, root=bytes(32)))
    assert caught.value.reason is _F.ROLLED_BACK
    db.close()
