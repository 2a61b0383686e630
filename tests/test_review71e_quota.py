"""Review 71e, quota: the members one ticket enrolled share that ticket's revocation quota.

70q feeds 2 (tests/test_review70q_feeds.py) found the link revocations of the members one
multi-use ticket minted each charged to a quota of their own, so a ticket of many uses filled
the members' part of the feed for good. A member's other two budgets were the same:

71e quota 1: the delegates of each member of one ticket had an account of their own
(`delegates_of` the member), so a ticket of N uses gave its holder N delegates' budgets too.

71e quota 2: each member of one ticket published its rotations (kind-3 supersessions) on a
supersessions budget of its own, N budgets for a ticket of N uses.

71e quota 3: a member refreshing past its bound of credentials (a short credential TTL: each
refresh past MAX_RECENT_CREDENTIALS_PER_MEMBER revokes its oldest, `_issue_bounded`) wrote
entries charged to the member itself, a budget of its own for each member of a ticket.

Fixed in troth.authority: each member records the ticket of many uses that enrolled it (its
code hash, `members.quota_ticket`, schema 21), and every entry a member causes, its
delegates' and its supersessions are charged to that ticket's account (`quota_holder`): the
members one ticket enrolled share one quota of each kind. A single-use ticket's member (and a
member enrolled before schema 21) is its own holder, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import test_authority
from tests.conftest import NOW
from tests.test_authority import ORDERS, A, Setup
from tests.test_authority_feed import revoke_a_new_link
from troth import limits
from troth.authority import Ticket
from troth.authority.client import refresh_request, rotated_request
from troth.errors import AuthorityError
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.storage.sqlite import _MIGRATIONS

setup = test_authority.setup  # the fixture, shared


@pytest.fixture
def strict(setup: Setup, troth_home: Path) -> Iterator[Setup]:
    """An authority whose members may cause one feed entry an hour (each kind)."""
    init_node("strict")
    with open_node("strict") as node:
        yield Setup(
            node, setup.agents, node.create_authority("strict", now=NOW, revocation_quota=1)
        )


def member(strict: Setup, name: str, ticket: Ticket) -> None:
    """Enroll `name` with `ticket`, hold its chain, and make `name`-sub to delegate to."""
    strict.agents.wallet.hold(name, strict.enroll(name, ticket).encode(), now=NOW)
    strict.agents.identities.create(now=NOW, name=f"{name}-sub")


def refused(strict: Setup, name: str) -> bool:
    """Whether `name`'s revocation of a new link it issued is refused on its quota."""
    try:
        revoke_a_new_link(strict, name)
    except AuthorityError as exc:
        if exc.reason is not A.QUOTA_EXCEEDED:
            raise
        return True
    return False


def delegate_to(strict: Setup, name: str, delegate: str) -> None:
    """`name` delegates to a new identity `delegate`, which holds the chain (and a -sub)."""
    agents = strict.agents
    agents.identities.create(now=NOW, name=delegate)
    agents.identities.create(now=NOW, name=f"{delegate}-sub")
    chain = agents.wallet.delegate(
        name, to=strict.id(delegate), attributes=ORDERS, now=NOW, ttl=600, purpose="x"
    )
    agents.wallet.hold(delegate, chain, now=NOW)


def test_the_delegates_of_one_tickets_members_share_one_budget(strict: Setup) -> None:
    """71e quota 1: two members of one ticket each delegate to a throwaway identity, which
    revokes a link it issued: the second delegate is refused (QUOTA_EXCEEDED, naming the
    budget), its budget the one the delegates of that ticket's members share."""
    ticket = strict.ticket(uses=2)
    for n in range(2):
        member(strict, f"m{n}", ticket)
        delegate_to(strict, f"m{n}", f"d{n}")
    assert not refused(strict, "d0")
    with pytest.raises(AuthorityError) as caught:
        revoke_a_new_link(strict, "d1")
    assert caught.value.reason is A.QUOTA_EXCEEDED
    assert f"the delegates of the members of the ticket that enrolled {strict.id('m1')}" in str(
        caught.value
    )


def test_the_rotations_of_one_tickets_members_share_one_budget(strict: Setup) -> None:
    """71e quota 2: two members of one ticket rotate and announce it: the second announcement
    is refused (QUOTA_EXCEEDED, its history stored all the same), the supersessions of that
    ticket's members on one budget."""
    ticket = strict.ticket(uses=2)
    announces = []
    for name in ("r0", "r1"):
        member(strict, name, ticket)
        strict.agents.identities.rotate(name, now=NOW + 10)
        identities, authority = strict.agents.identities, strict.authority.identifier
        announces.append(rotated_request(identities, name, authority, now=NOW + 10))
    assert strict.authority.rotated(announces[0], now=NOW + 10) is not None
    with pytest.raises(AuthorityError) as caught:
        strict.authority.rotated(announces[1], now=NOW + 10)
    assert caught.value.reason is A.QUOTA_EXCEEDED
    assert "the members of the ticket that enrolled" in str(caught.value)
    changes = strict.authority.identities.stored_changes(strict.id("r1"))
    assert changes == 2  # learned, only not published


def refresh(short: Setup, name: str, times: int, first: int = 1) -> None:
    """`name` refreshes its credential `times` times, a second apart, from NOW + `first`."""
    for n in range(first, first + times):
        identities, authority = short.agents.identities, short.authority.identifier
        request = refresh_request(identities, name, authority, now=NOW + n)
        short.authority.refresh(request, now=NOW + n)


def test_the_refreshes_of_one_tickets_members_share_one_budget(
    setup: Setup, troth_home: Path
) -> None:
    """71e quota 3: under an authority whose credentials live 1 s, two members of one ticket
    each refresh until their bound of recent credentials: the first member's last refresh
    revokes its oldest (the ticket's quota spent), the second member's is refused
    (QUOTA_EXCEEDED)."""
    init_node("brief")
    with open_node("brief") as node:
        made = node.create_authority("brief", now=NOW, credential_ttl=1, revocation_quota=1)
        short = Setup(node, setup.agents, made)
        ticket = short.ticket(uses=2)
        short.enroll("f0", ticket)
        short.enroll("f1", ticket)
        bound = limits.MAX_RECENT_CREDENTIALS_PER_MEMBER  # the enrollment's is one of them
        length = short.feed_length()
        refresh(short, "f0", bound)
        assert short.feed_length() == length + 1
        refresh(short, "f1", bound - 1)
        with pytest.raises(AuthorityError) as caught:
            refresh(short, "f1", 1, first=bound)
        assert caught.value.reason is A.QUOTA_EXCEEDED


def test_a_single_use_tickets_member_keeps_its_own_quota(strict: Setup) -> None:
    """The fix: members of single-use tickets are charged as before, each to itself (the
    entry's account is the member's identifier), each its own quota."""
    for n in range(2):
        member(strict, f"s{n}", strict.ticket())
        assert not refused(strict, f"s{n}")
        row = strict.authority_node.db.fetch_one(
            "SELECT charged_to FROM revocations ORDER BY seq DESC LIMIT 1"
        )
        assert bytes(row[0]) == strict.id(f"s{n}").digest
    assert refused(strict, "s0")


def test_a_re_enrollment_never_moves_a_member_into_a_shared_quota(strict: Setup) -> None:
    """The fix: a member of a single-use ticket re-enrolled with a ticket of many uses keeps
    its own quota (that ticket's members cannot spend it); a member of a ticket of many uses
    re-enrolled with a single-use ticket gets one of its own (one ticket, one holder)."""
    shared = strict.ticket(uses=3)
    member(strict, "own", strict.ticket())
    member(strict, "spender", shared)
    member(strict, "mover", shared)
    assert not refused(strict, "spender")  # the shared quota spent
    assert refused(strict, "mover")
    strict.enroll("own", shared)
    assert not refused(strict, "own")
    strict.enroll("mover", strict.ticket())
    assert not refused(strict, "mover")


def test_a_store_from_before_the_migration(strict: Setup) -> None:
    """The fix, schema 21: a node.db from before it (no `members.quota_ticket`, no
    `tickets.uses`) migrates in place; the members it held keep their own quotas (as before),
    and a ticket it held, whose uses are not known, enrolls members that share its quota. Run
    again over a migrated store, the migration changes nothing."""
    ticket = strict.ticket(uses=4)
    member(strict, "old0", ticket)
    member(strict, "old1", ticket)
    db = strict.authority_node.db
    db.execute("ALTER TABLE members DROP COLUMN quota_ticket")
    db.execute("ALTER TABLE tickets DROP COLUMN uses")
    db.execute(f"PRAGMA user_version = {len(_MIGRATIONS) - 1}")
    SqliteDatabase(db.path).close()  # this troth opens it: migrated
    assert db.fetch_one("PRAGMA user_version")[0] == len(_MIGRATIONS)
    db.execute(f"PRAGMA user_version = {len(_MIGRATIONS) - 1}")
    SqliteDatabase(db.path).close()  # again: idempotent
    assert not refused(strict, "old0")
    assert not refused(strict, "old1")
    member(strict, "new0", ticket)
    member(strict, "new1", ticket)
    assert not refused(strict, "new0")
    assert refused(strict, "new1")
