"""Review 46e: a disclosed value must not outlive its record's delivery (or discard, or
redaction) in the node's trace outbox (node.db: docs/storage.md, "Trace outbox";
docs/traces.md, "Redaction").

A record made for a trace service waits in the node's outbox, envelope and disclosures, until
the service's receipt says it is in the log; the row is then deleted. The value's bytes must
not stay behind in node.db's free space or its write-ahead log, where `troth trace redact` (on
the log that holds the record) never reaches them. Each test reads every file of the node's
directory raw (not through SQLite) for two markers: one in the row's cell, one past 6 KB of
padding (an overflow page)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.cli import run, run_json, troth_process
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    Service,
    service,
)
from troth.faults import CRASH_POINTS
from troth.identity import Identifier
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.trace import verify_log
from troth.trace.outbox import TraceOutbox, redact_outbox
from troth.trace.outbox_store import OutboxStore
from troth.trace.record import Kind, ToolCall
from troth.trace.signing import RecordContent

HEAD = "card-5517-0000-HEAD"  # in the row's cell
TAIL = "card-5517-0000-TAIL"  # past 6 KB of padding: on an overflow page
SMALL = "card-5517-0000-SMALL"  # a small record's value, in its cell
POINTS = ("trace.outbox-redact.before-commit", "trace.outbox-redact.after-commit")


def content(*markers: str, pad: int = 0) -> RecordContent:
    args: dict[str, object] = {"0": markers[0]}
    if pad:
        args["pad"] = "p" * pad
    if len(markers) > 1:
        args["z"] = markers[1]
    return RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("refund"), values={"args": args})


def left_in(directory: Path, *markers: str) -> dict[str, list[str]]:
    """Which markers have bytes in which files of `directory` (read raw)."""
    found: dict[str, list[str]] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            hits = [m for m in markers if m.encode() in data]
            if hits:
                found[path.name] = hits
    return found


def default_off(db: SqliteDatabase) -> None:
    """This thread's connection as a SQLite built without SQLITE_SECURE_DELETE opens it (the
    Debian build here turns it on by default; python.org's and most others do not)."""
    db.connection().execute("PRAGMA secure_delete = OFF")


def test_a_delivered_then_redacted_value_leaves_no_bytes_in_the_node_directory(
    tmp_path: Path,
    service: Service,  # noqa: F811
) -> None:
    """The node records two records (one large: its tail on an overflow page), the trace
    service (the log beside it, trace.db) appends them and the outbox rows are deleted; the
    operator redacts the values in the log. The node keeps running (its node.db open: no
    clean close checkpoints and deletes the WAL): no marker is in any file of the directory.

    Was a strict xfail: the delivered rows' pages stayed in node.db's WAL (and, on a SQLite
    built without SQLITE_SECURE_DELETE, in the database's free space) for good."""
    party = service.world.support
    db = SqliteDatabase(tmp_path / "node.db")
    default_off(db)
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    big = outbox.add(content(HEAD, TAIL, pad=6000), now=NOW).record
    small = outbox.add(content(SMALL), now=NOW).record
    assert left_in(tmp_path, HEAD, TAIL, SMALL)["node.db-wal"] == [HEAD, TAIL, SMALL]
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    assert batch is not None
    outbox.answered(service.submit(batch.submission, party), now=NOW)
    assert outbox.pending() == 0
    for record in (big, small):
        assert service.log.redact(record, "args")
    try:
        assert left_in(tmp_path, HEAD, TAIL, SMALL) == {}
    finally:
        outbox.close()
        db.close()


def test_a_discarded_record_leaves_no_bytes_while_the_node_runs(troth_home: Path) -> None:
    """A record the service refused is set aside; the operator discards it
    (`troth trace outbox --discard`) while the node runs (node.db held open): no marker is in
    any file of the node's directory.

    Was a strict xfail: the row's pages stayed in node.db's WAL until the node closed."""
    run("node", "create", "agent")
    now = int(time.time())
    with open_node("agent", home=troth_home) as node:  # the node, running
        default_off(node.db)
        identities = node.identities
        agent = Identifier(identities.find("agent").identifier)
        outbox = TraceOutbox(node.db, agent, lambda now: identities.signer("agent", now=now))
        refused = outbox.add(content(HEAD, TAIL, pad=6000), now=now).record
        (row,) = outbox.store.first(agent.digest, 1)
        with outbox.store.transaction():
            outbox.store.set_aside(
                agent.digest, row.pos, row.hash, reason="refused", detail="", now=now
            )
        assert run_json("trace", "outbox", "--node", "agent", "--discard", refused)[
            "discarded"
        ] == [refused]
        try:
            assert left_in(node.path, HEAD, TAIL) == {}
        finally:
            outbox.close()


def test_a_value_redacted_while_queued_is_delivered_without_it(
    tmp_path: Path,
    service: Service,  # noqa: F811
) -> None:
    """`redact_outbox` (what `troth trace redact` runs on the node's outbox) deletes a queued
    record's value: the outbox's counters follow the row, no marker is left in the directory,
    and the record is delivered without the value (the log keeps its commitment and
    verifies)."""
    party = service.world.support
    db = SqliteDatabase(tmp_path / "node.db")
    default_off(db)
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    try:
        record = outbox.add(content(HEAD, TAIL, pad=6000), now=NOW).record
        assert redact_outbox(db, record, "result") is False  # nothing disclosed under it
        assert redact_outbox(db, "no-such-record", "args") is None
        assert redact_outbox(db, record, "args") is True
        (row,) = outbox.store.first(party.identifier.digest, 1)
        assert row.disclosures is None
        assert outbox.store.usage() == (1, row.size)
        assert left_in(tmp_path, HEAD, TAIL) == {}
        assert outbox.claim()
        batch = outbox.next_batch(NOW)
        assert batch is not None
        outbox.answered(service.submit(batch.submission, party), now=NOW)
        assert outbox.pending() == 0
        assert service.log.disclosures(record) == {}
        assert verify_log(service.log).disclosures == 0
    finally:
        outbox.close()
        db.close()


def queued_record(home: Path) -> str:
    """Node `agent` with one record queued in its outbox (HEAD and TAIL in its args)."""
    run("node", "create", "agent")
    now = int(time.time())
    with open_node("agent", home=home) as node:
        identities = node.identities
        agent = Identifier(identities.find("agent").identifier)
        outbox = TraceOutbox(node.db, agent, lambda now: identities.signer("agent", now=now))
        record = outbox.add(content(HEAD, TAIL, pad=6000), now=now).record
        outbox.close()
    return record


troth = troth_process


def test_the_points_are_declared() -> None:
    assert set(POINTS) <= set(CRASH_POINTS)


@pytest.mark.parametrize("point", POINTS)
def test_a_queued_redaction_killed_at_any_step_is_completed(troth_home: Path, point: str) -> None:
    """`troth trace redact` of a record still queued, killed before or after its commit:
    either the value is still queued, or the node's next opening of its outbox leaves none of
    its bytes in the node's directory; a redo completes it (`nothing to redact` once the value
    is gone)."""
    record = queued_record(troth_home)
    directory = troth_home / "nodes" / "agent"
    assert left_in(directory, HEAD, TAIL)
    redact = ("trace", "redact", record, "--field", "args", "--node", "agent", "--json")
    troth(*redact, crash=point)
    with open_node("agent", home=troth_home) as node:
        store = OutboxStore(node.db)
        (row,) = store.db.fetch_all("SELECT disclosures FROM trace_outbox")
        disclosed = row[0] is not None
        if point.endswith("before-commit"):
            assert disclosed
        else:
            assert not disclosed
            identities = node.identities
            agent = Identifier(identities.find("agent").identifier)
            TraceOutbox(node.db, agent, lambda now: identities.signer("agent", now=now)).close()
            assert left_in(directory, HEAD, TAIL) == {}  # the node's next opening scrubbed
    again = json.loads(troth(*redact).stdout)
    assert again == {
        "record": record,
        "field": "args",
        "redacted": disclosed,
        "outbox": disclosed,
    }
    assert left_in(directory, HEAD, TAIL) == {}
