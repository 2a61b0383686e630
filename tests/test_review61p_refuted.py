"""Review 61p, refuted: attacks on review 61l's pending enrollments (one per identity,
authority and ticket) that did not work.

Each test is a real attempt and fails if the defence breaks: one ticket spelled otherwise (or
too long) to be stored twice; the table's rebuild run twice (two processes opening an older
node.db at once: the second's first look stale), or failing at any of its statements; the
clock set back so the newer record starts before the older; one ticket refused for good
forgetting another's record; MAX_PENDING_PER_AUTHORITY giving up another identity's record;
`troth credential refresh --json` with several tickets pending; a node.db restored from before
the rebuild; the older ticket enrolled again to clear a newer one's record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.backups import copy_db, node_db
from tests.support.enroll import (
    acme_and_agent,
    acme_ticket,
    enroll_answer_lost,
    enroll_in_process,
    resume_in_process,
)
from tests.support.pending import enroll_unreachable, made_up, old_pending_schema
from troth import limits
from troth.authority.tickets import TICKET_PREFIX
from troth.cli.main import cli
from troth.clock import FixedClock
from troth.enrollment import enroll
from troth.errors import AuthorityError, DecodeError, StorageError
from troth.node import open_node
from troth.node.authorities import resume_locally
from troth.storage import PendingEnrollmentRecord, sqlite_credentials
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_credentials import SqliteCredentialStore

NOW = 1_800_000_000


def _tickets(store: SqliteCredentialStore, identifier: bytes) -> list[str]:
    return [p.ticket for p in store.list_pending(identifier)]


def test_a_ticket_spelled_otherwise_is_stored_once(tmp_path: Path) -> None:
    """The same ticket with spaces and a newline around it: one record, resumed; padded or
    past MAX_TICKET_BYTES: refused before any record."""
    with acme_and_agent(tmp_path, NOW) as (_authority, agent, _member, ticket):
        clock = FixedClock(NOW)
        enroll_unreachable(agent, "agent", ticket, clock)
        enroll_unreachable(agent, "agent", f"  {ticket}\n", clock)
        for text in (f"{ticket}=", TICKET_PREFIX + "A" * (4 * limits.MAX_TICKET_BYTES)):
            with pytest.raises(DecodeError):
                enroll(agent.identities, agent.wallet, "agent", text, clock=clock, send=bytes)
        assert [p.ticket for p in agent.wallet.pending_enrollments("agent")] == [str(ticket)]


def _older_node_db(tmp_path: Path) -> tuple[Path, bytes]:
    """agent's node.db as made before review 61l, its acme enrollment (answer lost) pending."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW + 100))
    old_pending_schema(node_db(tmp_path, "agent"))
    return node_db(tmp_path, "agent"), member.digest


def test_a_second_opener_does_not_rebuild_the_table_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes open an older node.db at once: the first rebuilds the table and records
    another ticket started earlier (the clock set back); the second, whose first look saw the
    old table, looks again in its transaction and rebuilds nothing (a second rebuild would
    reorder the records by start, the older one then taken for the newer)."""
    path, member = _older_node_db(tmp_path)
    first_db, second_db = SqliteDatabase(path), SqliteDatabase(path)
    try:
        first = SqliteCredentialStore(first_db)
        (t1,) = first.list_pending(member)
        t2 = PendingEnrollmentRecord(member, t1.authority, "troth-ticket:t2", t1.address, NOW)
        first.put_pending(t2)
        looks: list[bool] = []
        real = sqlite_credentials._keyed_by_ticket

        def stale(db: SqliteDatabase) -> bool:
            looks.append(real(db))
            return len(looks) > 1 and looks[-1]  # the first look: before the rebuild

        monkeypatch.setattr(sqlite_credentials, "_keyed_by_ticket", stale)
        second = SqliteCredentialStore(second_db)
        assert _tickets(second, member) == [t1.ticket, t2.ticket]
        assert looks == [True, True]
    finally:
        first_db.close()
        second_db.close()


@pytest.mark.parametrize("failing", range(len(sqlite_credentials._PENDING_BY_TICKET)))
def test_a_rebuild_failing_at_any_statement_keeps_the_old_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """A rebuild failing at each of its statements (as a crash there): the old table, its
    record in it, and no half-made one; the next open rebuilds it."""
    path, member = _older_node_db(tmp_path)
    statements = list(sqlite_credentials._PENDING_BY_TICKET)
    statements[failing] = "SELECT * FROM no_such_table"
    db = SqliteDatabase(path)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(sqlite_credentials, "_PENDING_BY_TICKET", tuple(statements))
            with pytest.raises(StorageError):
                SqliteCredentialStore(db)
        assert not sqlite_credentials._keyed_by_ticket(db)
        rows = db.fetch_all(
            "SELECT ticket FROM pending_enrollments WHERE identifier = ?", (member,)
        )
        assert len(rows) == 1
        tables = db.fetch_all("SELECT name FROM sqlite_master WHERE name LIKE 'pending%'")
        assert [r[0] for r in tables] == ["pending_enrollments"]
        assert _tickets(SqliteCredentialStore(db), member) == [rows[0][0]]
        assert sqlite_credentials._keyed_by_ticket(db)
    finally:
        db.close()


def test_the_clock_set_back_the_later_recorded_completes_first(tmp_path: Path) -> None:
    """T2 recorded after T1 but dated before it (the clock set back): resumed newest as
    recorded, T2 completes and clears T1, which is not sent (one credential)."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW + 100))
        second = acme_ticket(authority, NOW)
        enroll_unreachable(agent, "agent", second, FixedClock(NOW))
        resumed, remote, failed = resume_locally(agent, "agent", clock=FixedClock(NOW + 200))
        assert (len(resumed), remote, failed) == (1, [], [])
        assert resumed[0].resumed is not None
        assert resumed[0].resumed.ticket == str(second)
        assert len(agent.wallet.held("agent")) == 1
        assert agent.wallet.pending_enrollments("agent") == []


def test_a_ticket_refused_for_good_forgets_no_other_tickets_record(tmp_path: Path) -> None:
    """Three records of one authority, the middle one refused for good when resumed: the
    first (acme made the member) and the last stay, in their order."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        middle, last = made_up(ticket), made_up(ticket)
        for i, other in enumerate((middle, last)):
            enroll_unreachable(agent, "agent", other, FixedClock(NOW + i + 1))
        (record,) = [
            p for p in agent.wallet.pending_enrollments("agent") if p.ticket == str(middle)
        ]
        with pytest.raises(AuthorityError):
            resume_in_process(agent, record, authority, FixedClock(NOW + 50))
        pending = [p.ticket for p in agent.wallet.pending_enrollments("agent")]
        assert pending == [str(ticket), str(last)]


def test_the_bound_gives_up_no_other_identitys_record(tmp_path: Path) -> None:
    """MAX_PENDING_PER_AUTHORITY + 1 tickets of acme for agent: agent's oldest given up,
    reader's acme record (recorded before all of them) kept."""
    with acme_and_agent(tmp_path, NOW) as (_authority, agent, _member, ticket):
        agent.identities.create(now=NOW, name="reader")
        enroll_unreachable(agent, "reader", ticket, FixedClock(NOW))
        for i in range(limits.MAX_PENDING_PER_AUTHORITY + 1):
            enroll_unreachable(agent, "agent", made_up(ticket), FixedClock(NOW + i + 1))
        assert len(agent.wallet.pending_enrollments("agent")) == limits.MAX_PENDING_PER_AUTHORITY
        assert [p.ticket for p in agent.wallet.pending_enrollments("reader")] == [str(ticket)]


def test_refresh_json_with_several_pending(troth_home: Path) -> None:
    """`troth credential refresh --json`: the member's enrollment completed, the two made-up
    tickets dropped (both listed, none pending), exit 0."""
    now = int(time.time())
    with acme_and_agent(troth_home, now) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(now))
        for _ in range(2):
            enroll_unreachable(agent, "agent", made_up(ticket), FixedClock(now))
    result = CliRunner().invoke(
        cli, ["credential", "refresh", "agent", "--node", "agent", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["pending"] == []
    assert len(data["dropped"]) == 2
    assert all("refused" in d["error"] or "unknown" in d["error"] for d in data["dropped"])


def test_a_node_db_restored_from_before_the_rebuild_is_rebuilt_again(tmp_path: Path) -> None:
    """node.db rebuilt, another ticket recorded, then the copy from before the rebuild put
    back (a backup restored): the node opens it, rebuilds the table again and resumes the
    member's enrollment (the one record the copy holds)."""
    path, member = _older_node_db(tmp_path)
    before = tmp_path / "before.db"
    copy_db(path, before)
    with open_node("agent", home=tmp_path) as agent:  # rebuilt
        (t1,) = agent.wallet.pending_enrollments("agent")
        t2 = PendingEnrollmentRecord(member, t1.authority, "troth-ticket:t2", t1.address, NOW)
        agent.wallet.store.put_pending(t2)
    path.unlink()
    copy_db(before, path)
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        assert sqlite_credentials._keyed_by_ticket(agent.db)
        (record,) = agent.wallet.pending_enrollments("agent")
        resume_in_process(agent, record, acme.authority(), FixedClock(NOW + 200))
        assert len(agent.wallet.held("agent")) == 1


def test_the_older_ticket_enrolled_again_clears_no_newer_record(tmp_path: Path) -> None:
    """`troth enroll` with the older ticket T1 again while T2 is pending: T1's record resumed
    in its place (an upsert keeps the order recorded), so its completion leaves T2's."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        second = acme_ticket(authority, NOW)
        enroll_unreachable(agent, "agent", second, FixedClock(NOW + 10))
        done = enroll_in_process(agent, "agent", authority, ticket, FixedClock(NOW + 20))
        assert done.resumed is not None
        assert done.replaced is None
        assert [p.ticket for p in agent.wallet.pending_enrollments("agent")] == [str(second)]
