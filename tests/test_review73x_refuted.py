"""Review 73x, refuted: attacks on review 73u's set-aside for a member behind a node at the
node's cap on open channels (`troth.node.channel_cap`) and on 73v's xid check of a lease's
prepared transaction (`troth.secrets.engines.postgres_locks`) that did not work (each passes
on the code as it is; PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

import random
from contextlib import ExitStack

import pytest

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _FIRST, _LEASES, _REVOKED, _alive, _lease, _roles
from tests.test_review73o_refuted import _opener
from tests.test_review73u_cap4 import _without
from tests.test_review73x_last import table
from troth.node.channel_cap import OpenChannels, Opener
from troth.node.shares import LOCAL
from troth.secrets.engines import postgres_locks as locks

A0 = frozenset({b"a0"})
_WHO = (None, None, A0, frozenset({b"a1"}), frozenset({b"a0", b"a1"}), frozenset({LOCAL}))


@pytest.mark.parametrize(
    "layout",
    [
        (("b", "nb", 3), ("c", "nb", 1), ("d", "nd", 1)),  # b's network: b's own and one
        (("c", "nb", 1), ("b", "nb", 3), ("d", "nd", 1)),  # ... that one the oldest
        (("b", "nb", 3), ("d", "nd", 1), ("e", "nd", 1)),  # b's network b's own only
        (("d", "nd", 1), ("b", "nb", 3), ("c", "nb", 1), ("e", "ne", 1)),  # ties of one
        (("b", "nb", 3), ("c", "nb", 2), ("d", "nd", 2), ("e", "ne", 2)),  # ties of two
        (("b", "nb", 5),),  # b's own the only strangers' channels: refused
    ],
)
def test_set_aside_edges_are_the_shadows(layout: tuple[tuple[str, str, int], ...]) -> None:
    """73x refuted 1 (area last, 73u's `_set_aside`): b's network holding b's own and one
    (the oldest or not), b's own the only channels of b's network, ties between networks of
    one and of two (the oldest's network first), b's own the only strangers' channels: no
    exception (`next` on an empty walk, `most` on no heap), and the victim for a member behind
    b is the one a member from elsewhere gets were b's own not held (none: refused, as
    `admits` says)."""
    cap = table(layout, 12)
    member = Opener(stranger=False, source="b", network="nb", authorities=A0, behind=True)
    shadow = _without(cap, "b")
    expected = shadow._victim(False, "far", "far", False) if shadow.strangers else None
    place = cap.place(**member)
    assert place.victim == expected
    assert cap.admits(**member) == place.admitted == (expected is not None)


def test_admits_agrees_with_place_with_two_authorities_and_local_callers() -> None:
    """73x refuted 2 (area last: 73u refuted 3's walk widened): strangers, members of a0, a1
    or both, local callers, own and behind a node, over three networks, two authorities
    trusted, channels opened and closed at random. In every state `admits` agrees with
    `place`, and neither raises (no StopIteration out of `_set_aside`'s walk, no KeyError)."""
    for seed in range(40):
        rng = random.Random(seed)
        cap: OpenChannels[int] = OpenChannels(rng.randrange(2, 10), lambda: 2)
        for end in range(120):
            if cap._held and rng.random() < 0.2:
                cap.discard(rng.choice(sorted(cap._held)))
                continue
            where = _opener(
                rng.choice(_WHO), rng.randrange(3), rng.randrange(3), rng.random() < 0.4
            )
            admits, place = cap.admits(**where), cap.place(**where)
            assert admits == place.admitted
            if place.victim is not None:
                cap.discard(place.victim)
            if place.admitted:
                cap.add(end, **where)
            assert len(cap) <= cap.limit


_GID = "g73x_refuted"


def test_each_read_gives_a_prepared_transaction_s_xid_in_one_text_form(
    pg_server: PgServer,
) -> None:
    """73x refuted 3 (area last, 73v prepared2 1): `roll_back_prepared` matches
    `p.transaction::text` against the xid as read by `PREPARED_BY`, `LOCK_HOLDERS` and
    `ROLE_LOCKERS` (and `WAITED_ON`): a cast of another type in one of them (xid8, a
    transactionid lock's column) read a form that matched nothing, the transaction never
    rolled back? No: each reads the same `p.transaction::text`, pg_prepared_xacts' xid. And a
    session's row (its pid) carries its vxid, never passed as an xid: the prepared one's
    rollback is the prepared one's, the session holding the same table ended as one."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            prepared = _lease(pg_server, _FIRST, stack)
            prepared.execute("SELECT lo_create(0)")  # and the role locked (pg_authid)
            prepared.execute(f"PREPARE TRANSACTION '{_GID}'")
            session = _lease(pg_server, _FIRST, stack)  # a session holding the table too
            su = stack.enter_context(pg_server.connect())
            (xid,) = su.execute(
                "SELECT transaction::text FROM pg_prepared_xacts WHERE gid = %s", (_GID,)
            ).fetchone()
            by = su.execute(locks.PREPARED_BY, (_FIRST,)).fetchall()
            holders = su.execute(locks.lock_holders(su), (_REVOKED, _LEASES)).fetchall()
            lockers = su.execute(locks.ROLE_LOCKERS, (_FIRST, _LEASES)).fetchall()
            assert [row[2] for row in by] == [xid]
            assert [row[3] for row in holders if row[0] is None] == [xid]
            assert [row[4] for row in lockers if row[0] is None] == [xid]
            sessions = [row[3] for row in holders if row[0] is not None]
            assert len(sessions) == 1
            assert "/" in sessions[0]  # its vxid
            locks.end_lock_holders(su, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GID)
            assert not _alive(session)  # ended as the session read (`terminate`)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)
