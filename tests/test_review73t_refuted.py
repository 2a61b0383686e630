"""Review 73t, outtest: attacks on 73p's outbox count-row upsert (planted5 1) and on 73f's test
infrastructure (start/stop in this process, PostgreSQL with fsync off) that did not work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.cli import run, start_here
from tests.support.traces import Held, tool_call
from tests.test_review72b_release import edit
from tests.test_review73a_planted3 import edited_node_db
from troth import faults
from troth.faults import CRASH_ENV
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox

# The outbox's tables as the first troth with an outbox made them (83f49170, the oldest CREATE
# of trace_outbox_agents in `git log -S trace_outbox_agents -- src`; every later version made
# it the same: `agent BLOB PRIMARY KEY`), before trace_outbox_sources/members/held/rotated.
_OLDEST_OUTBOX = (
    """CREATE TABLE trace_outbox (
        pos INTEGER PRIMARY KEY, agent BLOB NOT NULL, record TEXT NOT NULL UNIQUE,
        seq INTEGER NOT NULL, hash BLOB NOT NULL, time INTEGER NOT NULL, made INTEGER NOT NULL,
        envelope BLOB NOT NULL, disclosures BLOB, attestation BLOB NOT NULL, chain BLOB,
        size INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        stale INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX trace_outbox_agent ON trace_outbox (agent, pos)",
    """CREATE TABLE trace_outbox_refused (
        record TEXT PRIMARY KEY, agent BLOB NOT NULL, pos INTEGER NOT NULL,
        seq INTEGER NOT NULL, time INTEGER NOT NULL, made INTEGER NOT NULL,
        envelope BLOB NOT NULL, disclosures BLOB, attestation BLOB NOT NULL, chain BLOB,
        size INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
        refused_at INTEGER NOT NULL)""",
    """CREATE TABLE trace_outbox_agents (
        agent BLOB PRIMARY KEY, seq INTEGER, hash BLOB, time INTEGER,
        queued INTEGER NOT NULL DEFAULT 0, queued_bytes INTEGER NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0, refused_bytes INTEGER NOT NULL DEFAULT 0)""",
)


def test_an_outbox_the_oldest_troth_made_takes_records_after_the_upsert(tmp_path: Path) -> None:
    """73t refuted (a false StorageError looked for: the outbox refusing every record on a
    legitimately upgraded node): 73p's `INSERT ... ON CONFLICT (agent) DO NOTHING` needs a
    UNIQUE or PRIMARY KEY on exactly `agent`, or SQLite refuses the statement ("ON CONFLICT
    clause does not match any PRIMARY KEY or UNIQUE constraint"). Every version that made
    trace_outbox_agents made it `agent BLOB PRIMARY KEY` (git log -S of the table over src:
    one CREATE, never edited). A node.db holding the oldest outbox's tables, with rows the
    older troth counted (this agent's with no head, another's), takes records: the agent's
    existing row is counted into, a new agent's row is made."""
    path = edited_node_db(tmp_path, *_OLDEST_OUTBOX)
    agent, other = Held(now=NOW), Held(now=NOW)
    edit(
        path,
        ("INSERT INTO trace_outbox_agents (agent) VALUES (?)", (agent.identifier.digest,)),
        ("INSERT INTO trace_outbox_agents (agent, queued) VALUES (x'00', 0)", ()),
    )
    db = SqliteDatabase(path)
    outboxes = [
        TraceOutbox(db, held.identifier, held.signer, max_records=4) for held in (agent, other)
    ]
    try:
        for outbox in outboxes:
            outbox.add(tool_call(args={"n": 1}), now=NOW)
        counted = db.fetch_all("SELECT agent, queued FROM trace_outbox_agents ORDER BY agent")
        assert sorted(counted) == sorted(
            [(b"\x00", 0), (agent.identifier.digest, 1), (other.identifier.digest, 1)]
        )
        assert db.fetch_one("SELECT count(*) FROM trace_outbox") == (2,)
    finally:
        for outbox in outboxes:
            outbox.close()
        db.close()


class _Spawned(Exception):
    """What the stand-in for the node's spawn raises, with the environment it was given."""


def test_a_crash_point_given_to_start_here_arms_the_node_not_this_process(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """73t refuted (73f ci moved `troth node start` into the test's process): a crash point
    given to `start_here` (test_resilience_enrollment's Hub, test_review48s_refuted) was
    feared armed nowhere — troth.faults reads TROTH_CRASH_AT once, at import, and this process
    imported it long before — so the crash tests would pass with no crash. It is not read
    here: the command spawns the node with this process's environment as the command saw it
    (CliRunner sets it for the call), so the node's own interpreter imports troth.faults armed,
    and nothing of it is left here after (no crash point lies on the command's own path: none
    in troth.cli or troth.node.daemon). Real runs of the hub armed this way crash it
    (test_tcp_enrollment_survives_an_authority_crash_at fails when the spawn drops it)."""
    run("node", "create", "n")
    given: list[dict[str, str]] = []

    def spawn(command: list[str], **options: Any) -> None:
        given.append(options["env"])
        raise _Spawned

    monkeypatch.setattr(subprocess, "Popen", spawn)  # (troth.node.daemon's spawn)
    with pytest.raises(_Spawned):
        start_here("n", **{CRASH_ENV: "authority.enroll.after-commit"})
    assert given[0][CRASH_ENV] == "authority.enroll.after-commit"
    assert CRASH_ENV not in os.environ
    assert faults._ARMED is None
