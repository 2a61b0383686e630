"""Review 61l, enrollment 1: the enroll-with-a-second-ticket sequence killed anywhere (a real
kill as a SQLite statement starts, over both nodes, and at each enrollment crash point:
tests/support/killed.py). The first ticket's enrollment was redeemed, its answer lost (acme
made the member); whatever the second ticket's enrollment and the kill, the holder ends with a
credential or with the first enrollment still pending, and resuming what is pending (newest
first, as the node does) always gets the member its credential.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.support.backups import node_db
from tests.support.enroll import (
    acme_and_agent,
    acme_ticket,
    enroll_answer_lost,
    enroll_in_process,
    resume_in_process,
)
from tests.support.killed import KILLS, killed_after
from tests.support.pending import enroll_unreachable, made_up, old_pending_schema
from troth.clock import FixedClock
from troth.errors import AuthorityError, TrothError
from troth.faults import CRASH_EXIT_CODE, CRASH_POINTS
from troth.identity import Identifier
from troth.node import open_node

NOW = 1_800_000_000
CLOCK = FixedClock(NOW + 100)
PENDING = {"holder.enroll.before-pending", "holder.enroll.after-pending"}
COMMITS = ("before-commit", "after-commit")
ENROLLING = PENDING | {f"{side}.enroll.{c}" for side in ("authority", "holder") for c in COMMITS}


def _sweep(home: Path, work: Callable[[], None], reaching: set[str]) -> set[str]:
    """Kill `work` at 9 statements over its run and at each enrollment crash point, from the
    state saved in `home`; after each, the invariant, then what is pending resumed until the
    member holds its credential. What each kill left: done, or the first still pending.
    `reaching`: the crash points `work` passes (73m blind 3: one not reached exits 0 and
    was taken as a kill, so a point renamed or moved off the path went unseen)."""
    saved = home.parent / f"{home.name}-saved"
    shutil.copytree(home, saved)
    assert killed_after(0, work) == 0
    total = KILLS[-1]
    points: list[tuple[int, str | None]] = [
        (n, None) for n in sorted({1 + (total - 1) * i // 8 for i in range(9)})
    ]
    points += [(0, name) for name in CRASH_POINTS if ".enroll." in name]
    ends: set[str] = set()
    crashed: set[str] = set()
    for point, crash_at in points:
        shutil.rmtree(home)
        shutil.copytree(saved, home)
        code = killed_after(point, work, crash_at)
        assert code in (CRASH_EXIT_CODE, 0), (point, crash_at)  # a crash point not reached: 0
        if crash_at is not None and code == CRASH_EXIT_CODE:
            crashed.add(crash_at)
        with open_node("acme", home=home) as acme, open_node("agent", home=home) as agent:
            wallet = agent.wallet
            pending = wallet.pending_enrollments("agent")
            held = bool(wallet.held("agent"))
            assert held or len(pending) >= 1, ("stranded", point, crash_at)
            ends.add("done" if held else f"{len(pending)} pending")
            for record in reversed(pending):  # newest first, as the node resumes them
                if record not in wallet.pending_enrollments("agent"):
                    continue  # cleared by a newer one's completion
                with contextlib.suppress(AuthorityError):  # a made-up ticket: forgotten
                    resume_in_process(agent, record, acme.authority(), CLOCK)
            assert wallet.held("agent"), ("stranded", point, crash_at)
            assert wallet.pending_enrollments("agent") == [], (point, crash_at)
            assert acme.authority().member(Identifier(agent.identities.find("agent").identifier))
    shutil.rmtree(saved)
    assert crashed == reaching
    return ends


def test_a_second_tickets_enrollment_killed_anywhere_strands_no_member(tmp_path: Path) -> None:
    """`troth enroll` with another ticket T2 (it completes, clearing T1's record with it)."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, first):
        enroll_answer_lost(agent, "agent", authority, first, FixedClock(NOW))
        second = acme_ticket(authority, NOW)

    def work() -> None:
        with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
            enroll_in_process(agent, "agent", acme.authority(), second, FixedClock(NOW + 10))

    assert _sweep(tmp_path, work, ENROLLING) >= {"done", "1 pending", "2 pending"}


def test_a_resumed_refusal_killed_anywhere_strands_no_member(tmp_path: Path) -> None:
    """The node's resumption of a made-up T2 (it failed for a passing reason first), refused
    for good and forgotten: T1's record stays whatever the kill."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, first):
        enroll_answer_lost(agent, "agent", authority, first, FixedClock(NOW))
        other = made_up(first)
        enroll_unreachable(agent, "agent", other, FixedClock(NOW + 10))
        assert len(agent.wallet.pending_enrollments("agent")) == 2

    def work() -> None:
        with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
            (record,) = (
                p for p in agent.wallet.pending_enrollments("agent") if p.ticket == str(other)
            )
            with contextlib.suppress(TrothError):  # refused for good
                resume_in_process(agent, record, acme.authority(), FixedClock(NOW + 50))

    # a refusal completes no enrollment: no enrollment crash point on its path
    assert _sweep(tmp_path, work, set()) >= {"1 pending", "2 pending"}


def test_an_older_node_db_is_rebuilt_keeping_its_record_killed_anywhere(tmp_path: Path) -> None:
    """A node.db made before review 61l, its T1 pending: the first open rebuilds the table
    (killed anywhere: the old table or the new, T1 in it), then T2 leaves T1 pending."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, first):
        enroll_answer_lost(agent, "agent", authority, first, FixedClock(NOW))
        second = acme_ticket(authority, NOW)
    old_pending_schema(node_db(tmp_path, "agent"))

    def work() -> None:
        with open_node("agent", home=tmp_path) as agent:  # the table rebuilt
            assert len(agent.wallet.pending_enrollments("agent")) == 1
        with open_node("agent", home=tmp_path) as agent:
            enroll_unreachable(agent, "agent", second, CLOCK)
            assert len(agent.wallet.pending_enrollments("agent")) == 2

    assert _sweep(tmp_path, work, PENDING) >= {"1 pending", "2 pending"}
