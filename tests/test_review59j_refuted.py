"""Review 59j (short adversarial review of the lead's late fixes): attacks on a ticket made by a
clock since set back (review 59d, tickets 1) and on the restore release dated per authority
(review 59f, restore 1) that did not work (each a real attempt that fails if the defence
breaks)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.support.enroll import acme_and_agent, acme_ticket, enroll_in_process
from tests.test_review57i_restore import _refused
from tests.test_review58b_release import _release, _remote_acme, restored_member
from troth import limits
from troth.authority.tickets import code_hash
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.identity.restored import copy_feed_issued
from troth.node import open_node
from troth.node.authorities import sync_from
from troth.storage import SqliteDatabase
from troth.storage.sqlite_authority import SqliteAuthorityStore

NOW = 1_800_000_000
DAY = 86_400
SKEW = limits.MAX_CLOCK_SKEW_SECONDS


@pytest.mark.parametrize("back", [SKEW - 1, SKEW + 1], ids=["within", "beyond"])
def test_a_clock_stepped_back_after_a_ticket_redeems_it_within_the_skew_only(
    tmp_path: Path, back: int
) -> None:
    """An honest ticket, the authority's clock stepped back `back` seconds after making it
    (its round swept since): within the skew it redeems; beyond, it is the typed
    TICKET_UNKNOWN docs/credentials.md describes (deleted: make a new one), no member made."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        authority.forget_expired_tickets(now=NOW - back)
        clock = FixedClock(NOW - back + 1)
        if back < SKEW:
            enroll_in_process(agent, "agent", authority, ticket, clock)
            assert len(authority.members()) == 1
            return
        with pytest.raises(AuthorityError) as caught:
            enroll_in_process(agent, "agent", authority, ticket, clock)
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert authority.members() == []


def test_a_multi_use_ticket_made_ahead_and_used_leaves_no_use_once_corrected(
    tmp_path: Path,
) -> None:
    """A three-use ticket made and used once while the clock ran a year ahead: once corrected,
    its other uses are gone (its redemption of the first kept: no path through
    `find_redemption` or `redeemed` answers another identity)."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _ticket):
        ahead = NOW + 365 * DAY
        ticket = acme_ticket(authority, ahead, uses=3, ttl=600)
        enroll_in_process(agent, "agent", authority, ticket, FixedClock(ahead))
        agent.identities.create(now=NOW, name="aide")
        hashed = code_hash(ticket.code)  # no sweep first: the redemption's own condition
        with authority.store.transaction():
            assert authority.store.redeem_ticket(hashed, NOW + 60) is None
        with pytest.raises(AuthorityError) as caught:
            enroll_in_process(agent, "aide", authority, ticket, FixedClock(NOW + 60))
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert len(authority.members()) == 1
        again = enroll_in_process(agent, "agent", authority, ticket, FixedClock(NOW + 60))
        assert again.identity == "agent"  # its repeat answered, no use taken
        assert len(authority.members()) == 1


def test_the_tickets_made_index_is_made_on_a_node_db_made_before_it(tmp_path: Path) -> None:
    """A node.db whose tickets have no index of their making (made before review 59d) gets it
    when its authority store is opened."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        SqliteAuthorityStore(db)
        with db.transaction():
            db.execute("DROP INDEX tickets_made")
        SqliteAuthorityStore(db)
        names = {name for (name,) in db.fetch_all("SELECT name FROM sqlite_master")}
        assert "tickets_made" in names
    finally:
        db.close()


def test_no_copy_feed_before_a_restore_is_found(troth_home: Path) -> None:
    """A node.db made before identity_restore_feeds (or no restore found): no copy's feed, and
    a release of an identity not held does nothing."""
    run("node", "create", "agent")
    with open_node("agent") as agent:
        assert copy_feed_issued(agent.db, b"\x01" * 32) is None
        assert agent.identities.restore_held("agent") is None
    assert _release("agent")["held_at"] is None


def test_a_find_rolled_back_keeps_neither_its_holds_nor_its_feeds(
    troth_home: Path, tmp_path: Path
) -> None:
    """The restore found in a caller's transaction that fails: the holds and the copy's feed
    dates are undone together, and the restore is found again, both written."""
    now = restored_member(troth_home, tmp_path)
    with open_node("agent") as agent:
        acme = next(iter(agent.wallet.trusted()))
        with pytest.raises(RuntimeError), agent.db.transaction():
            assert agent.identities.check_restored(now) is not None
            raise RuntimeError("killed")
        assert copy_feed_issued(agent.db, acme.digest) is None
    with open_node("agent") as agent:
        assert agent.identities.check_restored(now) is not None
        assert agent.identities.restore_held("agent") == now
        assert copy_feed_issued(agent.db, acme.digest) is not None


def test_a_second_restore_dates_by_its_own_copy_and_an_honest_feed_releases(
    troth_home: Path, tmp_path: Path
) -> None:
    """A first restore released on a feed pulled after it; node.db copied again, another
    identity rotated, that copy put back and found with the clock behind: the kept feed date
    is the second copy's (the first's merged by max), so a page no later than it is no
    evidence, and one pulled after it releases (no lockout)."""
    now = restored_member(troth_home, tmp_path)
    _remote_acme(held_at=now, pulled_at=now + 60)
    assert _release("agent")["released"] is True
    copy_db(node_db(troth_home, "agent"), tmp_path / "second.db")
    run("identity", "create", "carl", "--node", "agent")
    run("identity", "rotate", "carl", "--node", "agent")
    restore_db(node_db(troth_home, "agent"), tmp_path / "second.db")
    with open_node("agent") as agent:
        acme = next(iter(agent.wallet.trusted()))
        assert agent.identities.check_restored(now - 3600) is not None
        assert copy_feed_issued(agent.db, acme.digest) == now + 60
    refused = _release("agent", code=1)["message"]
    assert "not after the restored copy's own feed of it" in refused
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("agent", now=int(time.time())))
    with open_node("acme") as acme_node, open_node("agent") as agent:
        sync_from(agent, acme_node.authority(), now=now + 120)
    assert _release("agent")["released"] is True
