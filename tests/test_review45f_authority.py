"""Review 45f, crash consistency of an authority's revocations and tickets: real `troth`
processes killed (TROTH_CRASH_AT) at each commit of the operation, then the stores reopened.

A revocation (`troth revoke identity`) is two commits in two files: the feed entry in the
authority's node.db (`authority.revoke.*`), then the record of it in the node's trace log
(`trace.append.*`). A ticket (`troth authority ticket create`) is one commit, then the code
printed once (`authority.ticket.*`)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.support.forked import troth_forked
from troth.credentials.revocation_entry import RevocationKind
from troth.faults import CRASH_EXIT_CODE, CRASH_POINTS
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.storage import SqliteAuthorityStore

POINTS = (
    "authority.revoke.before-commit",
    "authority.revoke.after-commit",
    "authority.ticket.before-commit",
    "authority.ticket.after-commit",
    "trace.append.before-commit",
    "trace.append.after-commit",
)


troth = troth_forked


def acme(*names: str) -> dict[str, Identifier]:
    """Node `acme` hosting authority `acme`, and local identities `names` (to revoke)."""
    now = int(time.time())
    init_node("acme")
    with open_node("acme") as node:
        node.create_authority("acme", now=now)
        return {n: node.identities.create(now=now, name=n).identifier for n in names}


def revoked(who: Identifier) -> int | None:
    """The seq of `who`'s identity revocation in acme's feed, if any."""
    with open_node("acme") as node:
        store = SqliteAuthorityStore(node.db)
        return store.find_revocation(int(RevocationKind.IDENTITY), who.digest)


def trace_records(home: Path) -> int:
    """How many records acme's trace log holds (none when it was never opened)."""
    path = home / "nodes" / "acme" / "trace.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM leaves").fetchone()[0])


def tickets(home: Path) -> int:
    with sqlite3.connect(home / "nodes" / "acme" / "node.db") as conn:
        return int(conn.execute("SELECT count(*) FROM tickets").fetchone()[0])


def revoke(name: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    return troth(
        "revoke", "identity", name, "--authority", "acme", "--json",
        crash=crash, code=0 if crash is None else CRASH_EXIT_CODE,
    )  # fmt: skip


def test_the_points_are_declared() -> None:
    assert set(POINTS) <= set(CRASH_POINTS)


def test_a_revocation_killed_at_each_commit_is_whole_or_absent_and_redone(
    troth_home: Path,
) -> None:
    """Killed before the feed's commit: nothing revoked, nothing recorded. After it, before
    the trace's: revoked (and the member removed), not recorded; `troth revoke` again answers
    the same feed entry and records it once. Killed after the trace's commit: both; the redo
    answers the same entry and does not record it again (review 46c: the record id comes from
    the feed entry; before, the log said it twice). The log verifies throughout."""
    ids = acme("a", "b", "c")
    assert trace_records(troth_home) == 0

    assert revoke("a", "authority.revoke.before-commit").stdout == ""
    assert revoked(ids["a"]) is None
    assert trace_records(troth_home) == 0

    assert revoke("a", "authority.revoke.after-commit").stdout == ""
    seq = revoked(ids["a"])
    assert seq is not None
    assert trace_records(troth_home) == 0  # revoked, not yet recorded
    assert json.loads(revoke("a").stdout)["seq"] == seq  # the same entry, now recorded
    assert revoked(ids["a"]) == seq
    assert trace_records(troth_home) == 1

    assert revoke("b", "trace.append.before-commit").stdout == ""
    assert revoked(ids["b"]) is not None
    assert trace_records(troth_home) == 1  # the record rolled back

    assert revoke("c", "trace.append.after-commit").stdout == ""
    seq_c = revoked(ids["c"])
    assert seq_c is not None
    assert trace_records(troth_home) == 2
    assert json.loads(revoke("c").stdout)["seq"] == seq_c
    assert trace_records(troth_home) == 2  # not recorded again (review 46c)
    with open_node("acme") as node:
        assert SqliteAuthorityStore(node.db).revocation_tip()[0] >= 3  # a, b, c: once each
    troth("trace", "verify", "--node", "acme")


def test_a_ticket_killed_around_its_commit_leaves_nothing_redeemable(troth_home: Path) -> None:
    """Killed before its commit: no ticket. After it: a ticket row, its code printed nowhere
    (only its hash is stored: no one can redeem it; it expires); the next `ticket create`
    prints a ticket that works."""
    acme()
    create = ("authority", "ticket", "create", "--authority", "acme", "--attr", "team.name=x")
    killed = troth(*create, crash="authority.ticket.before-commit", code=CRASH_EXIT_CODE)
    assert killed.stdout == ""
    assert tickets(troth_home) == 0
    killed = troth(*create, crash="authority.ticket.after-commit", code=CRASH_EXIT_CODE)
    assert killed.stdout == ""
    assert tickets(troth_home) == 1
    ticket = troth(*create).stdout.strip()
    assert tickets(troth_home) == 2
    init_node("agent")
    with open_node("agent") as agent:
        agent.identities.create(now=int(time.time()), name="agent")
    troth("enroll", "-", "--as", "agent", "--node", "agent", input_text=ticket)
