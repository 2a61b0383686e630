"""Review 46f: an adversarial review of the code merged in session 46 (the trace log's
crash-safe redaction, derived revocation record ids, the outbox's redaction, the secrets
broker's chain pruning and sweep budget, the control socket and private-file reads, CLI stdin,
and the authority/runtime mixin refactor). Each finding here was a strict xfail first; the
attacks that failed are in tests/test_review46f_refuted.py."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fds import DescriptorLedger
from tests.test_review46e_outbox_redaction import (
    HEAD,
    TAIL,
    content,
    default_off,
    queued_record,
)
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    Service,
    service,
)
from troth.clock import SystemClock
from troth.errors import ConfigError
from troth.faults import CRASH_ENV
from troth.node import open_node
from troth.node.home import read_private_file
from troth.node.traces import traced_as
from troth.storage import SqliteDatabase
from troth.trace import open_node_log
from troth.trace.outbox import TraceOutbox, redact_outbox


def test_an_unanswered_batch_is_not_sent_again_with_a_value_redacted_since(
    tmp_path: Path,
    service: Service,  # noqa: F811
) -> None:
    """Outbox 1. The node reads a batch and sends it; the trace service does not answer (down
    for hours: the outbox keeps the batch in memory and sends the same one again until it is
    answered). The operator runs `troth trace redact` on the queued record meanwhile: it
    reports the value deleted from the outbox. The resend carried the value as first read,
    and the service's log took it: a redaction that reported success while the value went on
    to be delivered. The batch sent again is now read again where a row changed since.

    Was a strict xfail until the fix (troth.trace.outbox, `TraceOutbox.next_batch`: an
    unanswered batch is read again when a row's size changed since it was read)."""
    party = service.world.support
    db = SqliteDatabase(tmp_path / "node.db")
    default_off(db)
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    try:
        record = outbox.add(content(HEAD, TAIL, pad=6000), now=NOW).record
        assert outbox.claim()
        first = outbox.next_batch(NOW)
        assert first is not None  # sent; no answer comes
        assert redact_outbox(db, record, "args") is True
        again = outbox.next_batch(NOW + 30)
        assert again is not None
        (sent,) = again.submission.records
        assert "args" not in sent.disclosures
        outbox.answered(service.submit(again.submission, party), now=NOW + 30)
        assert outbox.pending() == 0
        assert service.log.disclosures(record) == {}
    finally:
        outbox.close()
        db.close()


def test_a_private_file_that_is_a_directory_is_a_config_error_and_leaks_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home 1. `read_private_file` (node.json, the vault's key file, the books) opens the
    path without waiting and checks it is a regular file (review 46b), but it wrapped the
    descriptor in a file object before that check: a directory there (`node.json/`) raised
    IsADirectoryError ("Is a directory: 16", naming a descriptor, not the path), an untyped
    error where its contract and its callers (`open_node`: ConfigError, exit 3) expect a
    ConfigError, and the descriptor stayed open (each `list_nodes` leaked one).

    Was a strict xfail until the fix (troth.node.home: the checks before the file object, the
    descriptor closed on every failure)."""
    folder = tmp_path / "node.json"
    folder.mkdir(mode=0o700)
    ledger = DescriptorLedger(monkeypatch)
    for _ in range(5):
        with pytest.raises(ConfigError, match="not a regular file"):
            read_private_file(folder)
    assert ledger.opens == 5
    assert not ledger.held


def test_a_busy_node_db_does_not_stop_the_logs_redaction(troth_home: Path) -> None:
    """Trace 1. `troth trace redact` of a record in the node's log (delivered long ago: the
    outbox holds no copy) first redacts the outbox, which truncates node.db's write-ahead
    log, and failed the command when that truncation did not complete ("the outbox's value is
    deleted, but a reader holds the write-ahead log": it held none) before the log was
    touched. Any reader of node.db on an older snapshot (the running node's, a CLI command's;
    the checkpoint waits 50 ms) did that: the value the operator asked to delete stayed in
    trace.db, however often the command was run while the node was busy. The outbox's
    scrub is best effort when the outbox holds no copy of the record, and the log's redaction
    is done whatever node.db's state.

    Was a strict xfail until the fix (troth.trace.outbox `redact_outbox`, troth.cli.trace_cmds
    `redact`)."""
    queued_record(troth_home)  # node `agent`, its outbox made (a record queued)
    clock = SystemClock()
    with open_node("agent", home=troth_home) as node, traced_as(node, "agent", clock=clock) as rec:
        record = rec.record(content(HEAD, TAIL, pad=6000)).record
    db_path = troth_home / "nodes" / "agent" / "node.db"
    reader = sqlite3.connect(db_path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()  # its snapshot
        with sqlite3.connect(db_path) as writer:  # the WAL grows past the reader's snapshot
            writer.execute("CREATE TABLE review46f (a)")
        redact = ("trace", "redact", record, "--field", "args", "--node", "agent", "--json")
        result = subprocess.run(
            [sys.executable, "-m", "troth.cli.main", *redact],
            capture_output=True,
            text=True,
            timeout=90,
            env={k: v for k, v in os.environ.items() if k != CRASH_ENV},
        )
        assert result.returncode == 0, result
        assert json.loads(result.stdout)["redacted"] is True
    finally:
        reader.close()
    with open_node("agent", home=troth_home) as node, open_node_log(node, clock=clock) as log:
        assert "args" not in log.disclosures(record)
