"""Review 59i: attacks on review 59b's rotation dating (`troth.node.rotation`) that did not
work (tests/test_review59i_rotation.py has the findings)."""

from __future__ import annotations

import hashlib
import os
import sqlite3

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.traces import node_trace_db
from tests.test_review59b_trace import _changes, _record, _rotate
from troth.clock import SystemClock
from troth.credentials import CredentialChain, issue_credential
from troth.credentials.format import SignedCredential
from troth.identity import verify_history
from troth.limits import MAX_CLOCK_SKEW_SECONDS
from troth.node import open_node, troth_home


def test_a_planted_row_far_ahead_dates_the_rotation_at_most_the_skew_ahead() -> None:
    """trace.db is not authenticated at this read: a row planted (or edited) far ahead for the
    identity dates its rotation no more than MAX_CLOCK_SKEW_SECONDS after the clock, a history
    the node (a verifier whose clock agrees) still takes, at the edge included."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _record("support", now)
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        conn.execute("UPDATE agents SET time = ?", (2**62,))
    _rotate(now)
    assert _changes("support", now)[1:] == [now + MAX_CLOCK_SKEW_SECONDS]
    with open_node("default", home=troth_home()) as node:
        history = node.identities.get("support", now=now).identity.history
    verify_history(history, now=now)


def test_a_fifo_for_trace_db_neither_hangs_nor_refuses_the_rotation() -> None:
    """A FIFO in trace.db's place (opening one for reading blocks until a writer comes): the
    rotation is not kept waiting inside its write lock, and is dated at the clock."""
    run("identity", "create", "support")
    now = SystemClock().now()
    os.mkfifo(node_trace_db(troth_home()))
    _rotate(now)
    assert _changes("support", now)[1:] == [now]


def test_a_log_locked_by_a_writer_neither_hangs_nor_refuses_the_rotation() -> None:
    """trace.db held by a writer that keeps readers out (an exclusive lock, as a process of
    another program might hold it): the read gives up after its short wait, the rotation is
    dated at the clock."""
    run("identity", "create", "support")
    now = SystemClock().now()
    _record("support", now + 200)
    writer = sqlite3.connect(node_trace_db(troth_home()), isolation_level=None)
    try:
        writer.execute("PRAGMA locking_mode = EXCLUSIVE")
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("UPDATE agents SET seq = seq")
        _rotate(now)
    finally:
        writer.close()
    assert _changes("support", now)[1:] == [now]


def test_a_forged_link_kept_in_the_log_does_not_date_the_rotation() -> None:
    """review 59i, rotation 1 reads the chains the log keeps, which a log written before
    their check (review 56f) kept as a member sent them: a link naming the node's identity as
    its issuer, dated ahead, its signature not the identity's, dates nothing (each link is
    verified under the identity's current change before it counts)."""
    run("identity", "create", "boss")
    run("identity", "create", "agent")
    now = SystemClock().now()
    with open_node("default", home=troth_home()) as node:
        boss = node.identities.signer("boss", now=now)
        agent = node.identities.get("agent", now=now).identity
        real = issue_credential(
            boss, subject=agent.identifier, attributes=SUPPORT, now=now + 250, ttl=DAY, depth=3
        )
        forged = SignedCredential(real.body, bytes(64), real.attestation)
        chain = CredentialChain((forged,), (boss.identity.history,)).encode()
    _record("agent", now)  # the log exists, and boss has no record in it
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        conn.execute("INSERT INTO chains VALUES (?, ?)", (hashlib.sha256(chain).digest(), chain))
    _rotate(now, "boss")
    assert _changes("boss", now)[1:] == [now]
