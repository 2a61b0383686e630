"""Review 59m (short adversarial review of review 59i's rotation 1, `troth.trace.signed_until`):
a node's rotation of an identity is dated no earlier than the newest delegation link it issued
of a chain its trace log keeps, found by a byte search of the `chains` table.

1. The read was unbounded, inside the rotation's write lock on node.db: every kept chain
   holding the identity's digest was decoded (and every link it issued kept in a list) before
   the newest was verified. An authority node whose log keeps the chains of its members (each
   holds the authority's link; a member can sub-delegate to as many subjects as it likes,
   each chain new) paid for all of them: measured here, 10,000 kept chains of 9 links (6 KB)
   took 2.0 s of the rotation's lock, 10,000 of one link 0.28 s, and it grows with the log.
   Now only the newest MAX_ROTATION_CHAINS kept chains are read (the table's insertion
   order), and at most that many links verified: a link that can date a rotation after its
   clock is dated after it, so was kept within MAX_CLOCK_SKEW_SECONDS (and any step back of
   the clock) before, among the newest; one kept before MAX_ROTATION_CHAINS newer ones dates
   nothing (the rotation then dated at the clock, as before review 59i).
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.traces import node_trace_db
from tests.test_review59b_trace import _changes, _record, _rotate
from troth.clock import SystemClock
from troth.credentials import CredentialChain, issue_credential
from troth.credentials import format as credential_format
from troth.limits import MAX_ROTATION_CHAINS
from troth.node import open_node, troth_home

ROWS = 600


def boss_chain(at: int) -> bytes:
    """A chain of one link "boss" issued to "agent" at `at`, signed by boss's current key."""
    with open_node("default", home=troth_home()) as node:
        boss = node.identities.signer("boss", now=at)
        agent = node.identities.get("agent", now=at).identity
        link = issue_credential(
            boss, subject=agent.identifier, attributes=SUPPORT, now=at, ttl=DAY, depth=3
        )
        return CredentialChain((link,), (boss.identity.history,)).encode()


def keep(*chains: bytes) -> None:
    """`chains` kept in the node's trace log, in order (as its appends keep them)."""
    rows = [(hashlib.sha256(c + i.to_bytes(4, "big")).digest(), c) for i, c in enumerate(chains)]
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        conn.executemany("INSERT INTO chains VALUES (?, ?)", rows)


def decodes(monkeypatch: Any) -> list[int]:
    """The sizes of the chains decoded from now on (`signed_until` decodes each it reads)."""
    seen: list[int] = []
    real = credential_format.CredentialChain.decode

    def counted(data: bytes) -> CredentialChain:
        seen.append(len(data))
        return real(data)

    monkeypatch.setattr(credential_format.CredentialChain, "decode", staticmethod(counted))
    return seen


def test_rotation1_the_read_of_kept_chains_is_bounded(monkeypatch: Any) -> None:
    run("identity", "create", "boss")
    run("identity", "create", "agent")
    now = SystemClock().now()
    _record("agent", now)  # the log exists
    keep(*[boss_chain(now)] * ROWS, boss_chain(now + 200))  # the newest kept last
    seen = decodes(monkeypatch)
    _rotate(now, "boss")
    assert _changes("boss", now)[1:] == [now + 200]  # the newest still dates it
    assert len(seen) == MAX_ROTATION_CHAINS  # of the newest, all naming boss
