"""Review 60b (closing review 59o's "chain window flood", `troth.trace.signed_until`): a node's
rotation of an identity it holds is dated no earlier than the newest delegation link it issued
of a chain its trace log keeps (review 59i, rotation 1).

1. To bound the read (review 59m, rotation 1), only the newest MAX_ROTATION_CHAINS kept chains
   were searched for the identity's links. Any member of the log can push an identity's link
   out of that window by having that many chains of its own kept (each signed by itself
   alone); a rotation of the identity by a clock stepped back (NTP) since it issued the link
   was then dated at the clock, before the link, and every later `troth trace verify` named
   the record under the link's chain CREDENTIAL_INVALID. Now the append that keeps a chain
   notes each of its links in trace.db's `issued_links` (the newest per issuer, under its
   newest change), and the dating reads the identity's row (`troth.trace.issued_links`).
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.traces import node_trace_db, under_chain
from tests.test_review59b_trace import _changes
from troth import Node
from troth.clock import FixedClock, SystemClock
from troth.credentials import CredentialChain, issue_credential
from troth.limits import MAX_CLOCK_SKEW_SECONDS, MAX_ROTATION_CHAINS
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log
from troth.trace.issued_links import MARK
from troth.trace.signing import sign_next


def boss_link(at: int, *, clock: FixedClock) -> None:
    """ "boss" delegates to "agent" at `at` (its clock ahead then), and "agent" records under
    that chain, kept in the node's log (whose clock is `clock`)."""
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        signer = node.identities.signer
        boss = signer("boss", now=at)
        agent = node.identities.get("agent", now=clock.now()).identity
        link = issue_credential(
            boss, subject=agent.identifier, attributes=SUPPORT, now=at, ttl=DAY, depth=3
        )
        chain = CredentialChain((link,), (boss.identity.history,)).encode()
        recorder = TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock)
        recorder.record(under_chain(chain), chain=chain)


def flood(count: int, *, clock: FixedClock) -> None:
    """ "member" delegates to "aide" `count` times, each chain new, and "aide" records under
    each: `count` chains of the member's own kept after everything before (in one commit)."""
    now = clock.now()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        member = node.identities.signer("member", now=now)
        aide = node.identities.signer("aide", now=now)
        head = log.head(aide.identity.identifier)
        pending = []
        for second in range(count):
            own = issue_credential(
                member,
                subject=aide.identity.identifier,
                attributes=SUPPORT,
                now=now - second,
                ttl=DAY,
                depth=3,
            )
            chain = CredentialChain((own,), (member.identity.history,)).encode()
            signed = sign_next(
                aide, under_chain(chain), head, now=now, epoch=None, random=os.urandom
            )
            head = (signed.record.seq, signed.hash, signed.record.time)
            pending.append(log.enqueue(signed, chain=chain))
        for each in pending:
            log.wait(each)
            each.result()


def rotate(at: int) -> None:
    with Node.open(home=troth_home(), clock=FixedClock(at)) as node:
        node.identities.rotate("boss")


def start() -> FixedClock:
    for name in ("boss", "agent", "member", "aide"):
        run("identity", "create", name)
    return FixedClock(SystemClock().now())


def issued_rows() -> list[tuple[bytes, int, int]]:
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        rows = conn.execute("SELECT issuer, change, made_at FROM issued_links").fetchall()
    return sorted(rows)


def as_before_the_table() -> None:
    """The node's log as a troth before review 60b left it: no `issued_links`, no mark."""
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        conn.execute("DROP TABLE issued_links")
        conn.execute("DELETE FROM meta WHERE name = ?", (MARK,))


def test_rotation1_a_members_chains_do_not_push_the_link_out_of_the_dating() -> None:
    clock = start()
    now = clock.now()
    ahead = now + 250  # boss delegated while its clock was ahead (stepped back since)
    boss_link(ahead, clock=clock)
    flood(MAX_ROTATION_CHAINS + 1, clock=clock)
    rotate(now)
    run("trace", "verify")  # exit 0: the record under boss's link, signed before its rotation
    assert _changes("boss", now)[1:] == [ahead]
    # one row per issuer, however many chains the member keeps
    assert sorted(row[1:] for row in issued_rows()) == [(0, now), (0, ahead)]


def test_rotation1_a_log_kept_before_the_table_is_noted_by_the_next_appends(
    monkeypatch: Any,
) -> None:
    """A log whose chains were kept before review 60b (no `issued_links`, no mark): the next
    appends that keep chains note the older ones, so the flood that keeps them misses too."""
    clock = start()
    now = clock.now()
    boss_link(now + 250, clock=clock)
    as_before_the_table()
    monkeypatch.setattr("troth.limits.MAX_ROTATION_CHAINS", 2)  # (a small window: fast)
    flood(3, clock=clock)
    rotate(now)
    assert _changes("boss", now)[1:] == [now + 250]


def test_rotation1_a_link_of_a_later_change_replaces_one_dated_far_ahead(
    monkeypatch: Any,
) -> None:
    """A link dated far ahead (its issuer's clock, or its choice) dates a rotation no further
    than MAX_CLOCK_SKEW_SECONDS past the clock; the row then holds it under the retired change,
    and the first link of the new change kept replaces it, however much older."""
    clock = start()
    now = clock.now()
    boss_link(now + 3000, clock=clock)
    rotate(now)
    assert _changes("boss", now)[1:] == [now + MAX_CLOCK_SKEW_SECONDS]
    boss_link(now + 400, clock=clock)  # under change 1
    monkeypatch.setattr("troth.limits.MAX_ROTATION_CHAINS", 1)  # the search misses it
    flood(2, clock=clock)
    rotate(now + 110)  # a clock stepped back since the link
    assert _changes("boss", now + 110)[1:] == [now + MAX_CLOCK_SKEW_SECONDS, now + 400]


def test_rotation1_the_catch_up_of_older_chains_is_bounded_per_append(monkeypatch: Any) -> None:
    """Chains kept before the table are noted ISSUED_LINKS_CATCH_UP at a time, the oldest
    first, by each append that keeps a chain; the mark moves past a chain once every one
    before it is noted."""
    clock = start()
    flood(3, clock=clock)
    as_before_the_table()
    monkeypatch.setattr("troth.limits.ISSUED_LINKS_CATCH_UP", 2)
    marks = []
    for _ in range(2):
        flood(1, clock=clock)
        with sqlite3.connect(node_trace_db(troth_home())) as conn:
            (mark,) = conn.execute("SELECT value FROM meta WHERE name = ?", (MARK,)).fetchone()
        marks.append(mark)
    assert marks == [2, 5]  # chains 1 and 2, then 3 and 4 (chains 4 and 5 noted as kept)
