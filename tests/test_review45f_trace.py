"""Review 45f, crash consistency of a node's trace log: `troth trace checkpoint` and `troth
trace redact` killed (TROTH_CRASH_AT) around their commit, then the log reopened.

A checkpoint is one commit (`trace.checkpoint.*`) and idempotent: the checkpoint of a size
already signed is the stored one. A redaction is a commit (the value deleted, the page
overwritten: secure_delete) then a WAL checkpoint that truncates the write-ahead log, which
still holds the old page (`trace.redact.*`): killed between the two, the value is gone from
what the log reads but its bytes are still in the files until the log is next opened, which
truncates the WAL first (review 46c: `tests/test_review46c_trace_crash.py`); `troth trace
redact` again says `nothing to redact`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from tests.support.cli import troth_process
from tests.support.traces import tool_call
from troth.clock import SystemClock
from troth.node import init_node, open_node
from troth.trace import TraceRecorder, open_node_log

MARKER = "card-4471-0000-MARKER"


def troth(
    *args: str, crash: str | None = None, code: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`troth *args --node ops` in a process of its own (tests.support.cli.troth_process)."""
    return troth_process(*args, "--node", "ops", crash=crash, code=code)


def logged(home: Path) -> str:
    """Node `ops` whose log holds one record of agent `support`, its args carrying MARKER."""
    init_node("ops")
    clock = SystemClock()
    with open_node("ops") as node:
        node.identities.create(now=clock.now(), name="support")
        with open_node_log(node, clock=clock) as log:
            recorder = TraceRecorder(
                log, lambda now: node.identities.signer("support", now=now), clock=clock
            )
            return recorder.record(tool_call(args={"card": MARKER}, result="ok")).record


def trace_db(home: Path) -> Path:
    return home / "nodes" / "ops" / "trace.db"


def on_disk(home: Path) -> bool:
    """Whether MARKER's bytes are in the log's files (read raw: opening the database with
    SQLite could checkpoint the WAL at its close)."""
    path = trace_db(home)
    files = [path, path.with_name(path.name + "-wal")]
    return any(f.exists() and MARKER.encode() in f.read_bytes() for f in files)


def checkpoints(home: Path) -> list[bytes]:
    with sqlite3.connect(trace_db(home)) as conn:
        return [bytes(r[0]) for r in conn.execute("SELECT note FROM checkpoints ORDER BY size")]


def test_a_checkpoint_killed_around_its_commit_is_stored_whole_or_not(troth_home: Path) -> None:
    """Before the commit: no checkpoint. After it (nothing printed): the checkpoint stored;
    running it again answers that very checkpoint, no second one."""
    logged(troth_home)
    assert troth("trace", "checkpoint", crash="trace.checkpoint.before-commit").stdout == ""
    assert checkpoints(troth_home) == []
    assert troth("trace", "checkpoint", crash="trace.checkpoint.after-commit").stdout == ""
    stored = checkpoints(troth_home)
    assert len(stored) == 1
    again = json.loads(troth("trace", "checkpoint", "--json").stdout)
    assert again["note"].encode() == stored[0]
    assert checkpoints(troth_home) == stored
    troth("trace", "verify")


def test_a_redaction_killed_before_its_wal_truncation_is_completed_by_the_redo(
    troth_home: Path,
) -> None:
    """Before the commit: the value still disclosed. After the commit, before the WAL's
    truncation: the log reads it as redacted; the redo (`nothing to redact`) leaves its bytes
    in neither the database nor its WAL, and the record still verifies."""
    record = logged(troth_home)
    redact = ("trace", "redact", record, "--field", "args")
    assert troth(*redact, crash="trace.redact.before-commit").stdout == ""
    assert troth("trace", "verify", "--json").stdout.count('"disclosures_checked": 2') == 1
    assert on_disk(troth_home)
    assert troth(*redact, crash="trace.redact.after-commit").stdout == ""
    assert on_disk(troth_home)  # the old page: the database file not yet checkpointed over
    again = json.loads(troth(*redact, "--json").stdout)
    assert again["redacted"] is False  # already deleted, as the log reads
    assert not on_disk(troth_home)
    assert json.loads(troth("trace", "verify", "--json").stdout)["disclosures_checked"] == 1
