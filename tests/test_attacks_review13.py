"""Review 13's attacks: the newest fixes (a checkpointed ticket's authority key confirmed out of
band, its history stored before the handshake; a trace log's history windows and the bridge
across 64 silent rotations; listeners that cannot bind).

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

# Held (tried, no test kept):
# - check_ticket: a key in upper case or with surrounding whitespace is the same key (strip,
#   lower); any other spelling, or "", is refused (compared with the exact hex). A ticket for an
#   authority with a stored copy needs no key, and its checkpoint must be a change the stored
#   copy holds (attested_by_store; ticket_vouches only on a first sight). A full-history
#   ticket binds its identifier (the hash of change 0). accept_ticket runs after find(ref) and
#   check_ticket, before the pending record, so every pending enrollment made by this code had
#   its history checked and stored: resumption (resume_locally, credential refresh's remote
#   pendings through the enroll op) finds the stored copy. A pending record left by older code
#   with a forged checkpointed ticket: remote resumption is refused (first sight, no key);
#   local resumption reaches the real local authority, which refuses the unknown code.
# - an attacker at the ticket's address with acme's confirmed key but not its private key: the
#   channel pins acme's identifier (expect=) and the handshake needs acme's key.
# - the enroll control op: every argument must be text or null (Operation.parse).
# - history windows from a remote submitter: collect.py verifies the batch's history in full
#   (no checkpoints), so a remote signer's new history never starts after the stored one and
#   _observe keeps no window for it; the bridge needs the node's own change rows (local
#   identities only). A record under a key older than the agent's previous record is refused
#   (epoch.change < state.change), so swapping which history is newest cannot revive an old
#   key once a later key signed; a window whose last change is the key's falls through to the
#   next window or the newest for the retirement time, and a missing one is refused.
# - schema 1 -> 2: the migration runs on an old file (user_version 2, the table added, seen);
#   what it does not do: the schema-1 test below.
# - a listener that cannot bind: ConfigError, exit 3 (tests/test_cli_network.py ran); the
#   API's serve() stops the runtime in its finally; "failed to start" reads node.log from this
#   start's offset.

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.enroll import enroll_in_process
from tests.support.traces import tool_call
from tests.test_attacks_review11 import _past_64
from tests.test_attacks_review12 import _long_lived
from tests.test_resilience_enrollment import now
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.errors import IdentityError, IdentityFailure, TraceError
from troth.identity import Identifier
from troth.identity.change import Checkpoint, UnverifiedHistory, encode_history
from troth.node import Node, init_node, open_node
from troth.node.traces import traced_as
from troth.trace import open_node_log
from troth.trace import verify as trace_verify
from troth.trace.export import export_jsonl
from troth.trace.log import TraceLog
from troth.trace.verify import verify_log

# -- 1. a confirmed key binds the key, not the identifier the ticket names ----------------------


def test_a_confirmed_key_does_not_let_a_ticket_name_another_identifier() -> None:
    """acme (past 64 changes) hands out checkpointed tickets; newbie's operator confirmed acme's
    current key with acme's operator. An attacker takes acme's public history (any peer sees
    it), keeps its changes and their signatures, and re-labels the checkpoint with beta's
    identifier (beta: another authority newbie has not met yet). check_ticket sees a history
    whose current key is the one confirmed and passes it; enrollment then stores it as beta's
    (accept_ticket, before anything is sent). Whatever happens to the enrollment, newbie now
    holds "beta" = acme's keys: beta's own genuine ticket is refused as a fork for good, and
    acme's key holder is taken for beta."""
    start = now()
    _, key, ticket, at = _past_64(start)
    init_node("beta")
    clock = FixedClock(at)
    with open_node("beta") as beta_node:
        beta = beta_node.create_authority("beta", now=at)
        beta_id = beta.identifier
        genuine = beta.create_ticket(
            creator=beta_id, attributes=Attributes(), address="node:beta", now=at
        )
    decoded = UnverifiedHistory.decode(ticket.authority_history)
    assert decoded.checkpoint is not None
    relabelled = encode_history(
        list(decoded.changes), Checkpoint(beta_id.digest, beta_id.digest, decoded.checkpoint.index)
    )
    forged = Ticket(ticket.code, relabelled, ticket.address)
    with open_node("acme") as acme_node, open_node("newbie") as newbie:
        authority = acme_node.authority()
        newbie.identities.create(now=at, name="newbie")
        with pytest.raises(IdentityError) as raised:  # with acme's pin, truly confirmed
            enroll_in_process(newbie, "newbie", authority, forged, clock, pin=key)
        assert raised.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
        assert newbie.identities.stored_changes(beta_id) is None  # on main: 71 (acme's)
    with open_node("beta") as beta_node, open_node("newbie") as newbie:
        enrolled = enroll_in_process(newbie, "newbie", beta_node.authority(), genuine, clock)
        assert enrolled.authority == beta_id


# -- 2. the trace log's history windows ---------------------------------------------------------


def _windows(node: Node) -> int:
    with sqlite3.connect(node.path / "trace.db") as conn:
        count: int = conn.execute("SELECT count(*) FROM history_windows").fetchone()[0]
    return count


def test_a_log_with_many_windows_verifies_each_window_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node that rotates (say daily) past 64 changes and signs after each rotation keeps one
    window per rotation and one retired key per change: `troth trace verify` verified every
    window once per retired key (70 rotations: 50 history verifications for 7 windows; 100
    rotations: 1333, 14 s here; 160: ~9400), so a year of daily rotations takes the better
    part of an hour. Each kept history should be verified once."""
    init_node("acme")
    with open_node("acme") as acme:
        at = _long_lived(acme, int(time.time()), record_each=True)
        windows = _windows(acme)
    assert windows > 1
    calls: list[Identifier] = []
    counted = trace_verify.verify_identity

    def counting(identifier: Identifier, *args: Any) -> Any:
        calls.append(identifier)
        return counted(identifier, *args)

    monkeypatch.setattr(trace_verify, "verify_identity", counting)
    with open_node("acme") as acme, open_node_log(acme, clock=FixedClock(at)) as log:
        identities = acme.identities
        report = trace_verify.verify_log(
            log, known=identities.check_no_fork, checkpoints=identities.attested_by_store
        )
    assert report.size == 71
    assert len(calls) <= windows + 1  # the newest history and each window, once (main: 50)


def _rows_not_windows(node_name: str) -> Path:
    """acme's identity past 64 changes, silent, then a record: the bridged window deleted (what
    review 12's test does), so nothing the log kept shows when change 0's key retired."""
    init_node(node_name)
    with open_node(node_name) as node:
        at = _long_lived(node, int(time.time()), record_each=False)
        with traced_as(node, node_name, clock=FixedClock(at + 1)) as late:
            late.record(tool_call("after-rotations"))
        trace_db = node.path / "trace.db"
    with sqlite3.connect(trace_db) as conn:
        assert conn.execute("DELETE FROM history_windows WHERE last > 0").rowcount == 1
    return trace_db


def test_an_export_does_not_pass_a_key_the_log_refuses_as_unretired(tmp_path: Path) -> None:
    """Deny when in doubt, both ways, and agree: with the bridged window gone, nothing the log
    kept shows when change 0's key retired. On the node its own rows do (change 1): `troth
    trace verify` and the export (record 0 bundled with those rows) both pass. Without the rows
    (the log alone), verification refuses the key, and so does an export made from the log
    alone (its bundle would present the key as current)."""
    trace_db = _rows_not_windows("acme")
    run("trace", "verify", "--node", "acme")
    run("trace", "checkpoint", "--node", "acme")
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "acme")
    run("trace", "verify", "--file", str(export), "--node", "acme")
    clock = FixedClock(int(time.time()))
    with TraceLog.open(trace_db, clock=clock) as alone, open_node("acme") as node:
        attests = node.identities.attested_by_store
        with pytest.raises(TraceError, match="which retired this key"):
            verify_log(alone, checkpoints=attests)
    with open_node("acme") as node, open_node_log(node, clock=clock) as log:
        log.bridge = None  # the log alone: no rows to bundle
        with pytest.raises(TraceError, match="no history the log kept shows when it retired"):
            export_jsonl(log, io.StringIO())


def test_a_schema_1_log_past_64_changes_verifies_after_the_upgrade() -> None:
    """Before schema 2 the log kept only each signer's newest history, so a node whose
    identity rotated past 64 changes (signing all along) got `trace verify`: invalid (review
    12's finding 2). After the upgrade the migration adds the table and nothing else: the same
    log still answers "made under a change not in the history" for record 0, though the
    node's rows (what the bridge uses) hold changes 0 and 1. Simulated: the log as schema 2
    makes it, the windows table dropped and user_version set back to 1, as schema 1 left it."""
    init_node("acme")
    with open_node("acme") as acme:
        _long_lived(acme, int(time.time()), record_each=True)
        trace_db = acme.path / "trace.db"
    with sqlite3.connect(trace_db) as conn:
        conn.execute("DROP TABLE history_windows")
        conn.execute("PRAGMA user_version = 1")
    run("trace", "verify", "--node", "acme")  # main: exit 1, record 0
