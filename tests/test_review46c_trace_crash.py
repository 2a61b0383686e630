"""Review 46c, two residuals of the trace log's crash consistency (review 45f): real `troth`
processes killed (TROTH_CRASH_AT) around each step, then the node's log reopened.

Redaction: a crash at any step leaves either the old state (the value still disclosed: the
redaction was never acknowledged) or none of the value's bytes anywhere in the log's files
(the database with its free pages, its WAL, a rollback journal) once the log is next opened.

Revocation: a redo after a crash between the trace record's commit and the command's answer
answers the same feed entry and does not record it a second time."""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.forked import troth_forked
from tests.support.traces import tool_call
from troth.clock import SystemClock
from troth.faults import CRASH_POINTS
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.traces import record_revocation, revoke_as_authority
from troth.trace import TraceRecorder, open_node_log

HEAD = "card-4471-0000-HEAD"  # in the row's cell
TAIL = "card-4471-0000-TAIL"  # past 6 KB of padding: on an overflow page
REDACT_POINTS = (
    "trace.redact.before-commit",
    "trace.redact.after-commit",
    "trace.redact.after-checkpoint",
)


troth = troth_forked


def logged() -> str:
    """Node `ops` whose log holds 20 records of agent `support`, the 10th's args carrying HEAD
    and TAIL (its id returned); the log closed cleanly (its WAL checkpointed)."""
    init_node("ops")
    clock = SystemClock()
    with open_node("ops") as node:
        node.identities.create(now=clock.now(), name="support")
        with open_node_log(node, clock=clock) as log:
            recorder = TraceRecorder(
                log, lambda now: node.identities.signer("support", now=now), clock=clock
            )
            found = ""
            for n in range(20):
                args = {"0": HEAD, "pad": "p" * 6000, "z": TAIL} if n == 9 else {"n": n}
                receipt = recorder.record(tool_call(args=args, result="ok"))
                found = receipt.record if n == 9 else found
            return found


def raw_files(home: Path) -> list[Path]:
    path = home / "nodes" / "ops" / "trace.db"
    return [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-journal", "-shm")]


def on_disk(home: Path) -> list[str]:
    """Which of HEAD and TAIL have bytes in the log's files (read raw, not through SQLite)."""
    data = b"".join(f.read_bytes() for f in raw_files(home) if f.exists())
    return [marker for marker in (HEAD, TAIL) if marker.encode() in data]


def test_the_points_are_declared() -> None:
    assert set(REDACT_POINTS) <= set(CRASH_POINTS)


@pytest.mark.parametrize("point", REDACT_POINTS)
def test_a_redaction_killed_at_any_step_leaves_the_old_state_or_no_bytes_once_reopened(
    troth_home: Path, point: str
) -> None:
    """Killed at each step of `troth trace redact`, then the node's log opened (and held
    open: a clean close would checkpoint the WAL and hide what the opening left): either the
    value is still disclosed (the redaction was not acknowledged), or neither of its markers
    is in any of the log's files. A redo then completes it; the log verifies.

    Was a strict xfail until the redaction marked itself in its commit and the log finished a
    marked redaction (a WAL checkpoint that truncates it) when opened: killed after the commit,
    the old page stayed in the WAL until the next clean close or redaction (review 45f)."""
    record = logged()
    assert on_disk(troth_home) == [HEAD, TAIL]
    redact = ("trace", "redact", record, "--field", "args", "--node", "ops")
    assert troth(*redact, crash=point).stdout == ""
    clock = SystemClock()
    with open_node("ops") as node, open_node_log(node, clock=clock) as log:
        disclosed = "args" in log.disclosures(record)
        left = on_disk(troth_home)
    if point == "trace.redact.before-commit":
        assert disclosed  # the old state: not acknowledged
    if not disclosed:
        assert left == []
    again = json.loads(troth(*redact, "--json").stdout)
    assert again["redacted"] is disclosed
    assert on_disk(troth_home) == []
    verified = json.loads(troth("trace", "verify", "--node", "ops", "--json").stdout)
    assert verified["disclosures_checked"] == 19 * 2 + 1


def acme(*names: str) -> dict[str, Identifier]:
    """Node `acme` hosting authority `acme`, and local identities `names` (to revoke)."""
    now = int(time.time())
    init_node("acme")
    with open_node("acme") as node:
        node.create_authority("acme", now=now)
        return {n: node.identities.create(now=now, name=n).identifier for n in names}


def revocation_records(home: Path) -> list[str]:
    with sqlite3.connect(home / "nodes" / "acme" / "trace.db") as conn:
        return [str(r[0]) for r in conn.execute("SELECT record_id FROM leaves ORDER BY idx")]


def test_a_revocation_redone_after_its_record_is_not_recorded_twice(troth_home: Path) -> None:
    """Killed after the trace record's commit (the answer never printed): the redo answers the
    same feed entry and the log keeps the one record of it; another revocation is recorded.

    Was a strict xfail until a revocation's record id came from its feed entry
    (`revocation_record_id`): the redo recorded the entry a second time (review 45f)."""
    acme("c", "d")
    revoke = ("revoke", "identity", "c", "--authority", "acme", "--json")
    assert troth(*revoke, crash="trace.append.after-commit").stdout == ""
    first = revocation_records(troth_home)
    assert len(first) == 1
    seq = json.loads(troth(*revoke).stdout)["seq"]
    assert revocation_records(troth_home) == first
    assert json.loads(troth(*revoke).stdout)["seq"] == seq
    assert revocation_records(troth_home) == first
    troth("revoke", "identity", "d", "--authority", "acme")
    assert len(revocation_records(troth_home)) == 2
    troth("trace", "verify", "--node", "acme")


def test_a_revocation_recorded_again_in_process_answers_the_held_record(troth_home: Path) -> None:
    """`record_revocation` of an entry the revoker's record holds (even with its values
    redacted) answers that record's receipt; another entry, or another revoker, gets its own."""
    who = acme("c")["c"]
    clock = SystemClock()
    with open_node("acme") as node:
        authority = node.authority()
        seq = revoke_as_authority(node, authority, who, reason="gone", clock=clock)
        me = str(authority.identifier)
        again = functools.partial(
            record_revocation, node, me, "identity", str(who), authority=authority.identifier
        )
        first = again(reason="gone", seq=seq, clock=clock)
        with open_node_log(node, clock=clock) as log:
            assert log.size() == 1
            assert log.redact(first.record, "args")
            assert log.redact(first.record, "result")
        assert again(reason="other words", seq=seq, clock=clock) == first
        other = again(reason="gone", seq=seq + 1, clock=clock)
        assert other.record != first.record
        with open_node_log(node, clock=clock) as log:
            assert log.size() == 2
