"""Review 71h (area: wave2a): a review of 71e (the members one ticket of many uses enrolled share
its revocation quota: schema 21's `members.quota_ticket` and `tickets.uses`) and 71d (the
outbox's bound counted before signing, the collector's key check on a record signed again).

1. (a damaged row read bare, low) The two columns schema 21 added were read as `int()` /
   `bytes()` of whatever SQLite returned, as review 71c (rows 1-11) stopped doing for node.db's
   other rows: a ticket whose `uses` was TEXT failed its redemption bare (ValueError), a BLOB
   (TypeError); a REAL 1.5 was truncated to 1, so that ticket's members each got a quota of
   their own (70q feeds 2 again), and a `uses` of 0, a negative or a huge one was taken as
   uses; a member whose `quota_ticket` was TEXT failed every request that
   reads its row (TypeError), an INTEGER n made n zero bytes (MemoryError for a large n: each
   refresh, revoke, rotated request and enrollment of the member), a 1 MiB BLOB was fetched
   whole at each. Both are now read typed and bounded in SQL (troth.storage.row_types: a
   `uses` a whole number 1 to MAX_TICKET_USES, a `quota_ticket` a BLOB within a digest's
   bound, NULL as before) and anything else refused with StorageError saying node.db is
   damaged (the redemption rolled back with its use).
2. (a retired key's resigning acknowledged under a history the log outgrew, low) 71d made the
   collector's ALREADY answer to a record signed again ask for a key current in the history
   sent, and 70x refused one sent under a history behind the node's copy (node.db). The log's
   append judges by its own copy (trace.db), which the node's may lag (the two files apart: a
   node.db restored from a copy taken before the agent's rotation, its row of the agent lost):
   the thief of the retired key, sending its resigning of a logged record under the older
   history, was answered ALREADY where the append of a new record of that key is refused
   ATTESTATION_STALE; and under a fork of its own (from a backup of the agent's vault: a
   rotation the older node copy does not refute) where the append is refused SIGNER_INVALID.
   The ALREADY check now reads the log's copy of the signer's history too: a later change held
   there is ATTESTATION_STALE, another change at its last index SIGNER_INVALID.
3. (a ticket's members each a feed-page budget, low; fixed by review 71p, pools 1) 71e made a
   ticket of many uses one account for its members' revocations, but at the authority service
   each of its members still had a feed-page budget and a free walk of its own: N members of
   one ticket spent the members' pool of page signings (FEED_PAGE_SIGNS_PER_NODE, 20/s) as N
   members would, 10 of them all of it. Now each keeps its own budget and the ticket's members
   together take at most a quarter of the pool (FEED_PAGE_SIGNS_PER_TICKET; tests in
   test_review71p_pools.py). Their enroll and refresh request budgets draw on no shared pool
   (test_review71p_refuted.py).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_identity_observe import observer
from tests.test_review34b_feed_pages import ENTRIES, page
from tests.test_review47i_collector import _batch
from tests.test_review47l_windows import EARLY
from tests.test_review71d_outbox import Logged
from tests.test_trace_service import F
from troth import limits
from troth.credentials import Attributes
from troth.errors import RemoteError, StorageError
from troth.identity import Signer
from troth.limits import FEED_PAGE_SIGNS_PER_CALLER_BURST
from troth.storage import MemberRecord, SqliteAuthorityStore, SqliteDatabase
from troth.trace.submit import Status, SubmittedRecord

_CODE = b"\x07" * 32
_MEMBER = b"\x01" * 32


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[SqliteDatabase, SqliteAuthorityStore]]:
    """A fresh node.db with an authority store holding one ticket of 3 uses and one member
    that shares it (closed after the test)."""
    db = SqliteDatabase(tmp_path / "node.db")
    authority = SqliteAuthorityStore(db)
    with db.transaction():
        authority.put_ticket(_CODE, b"\xa0", 3, 1000, b"\x02" * 32, 5)
        authority.put_member(MemberRecord(_MEMBER, b"\xa0", b"\x02" * 32, 5, _CODE))
    yield db, authority
    db.close()


_USES = {
    "text": "'abc'",
    "blob": "x'01'",
    "real": "1.5",
    "zero": "0",
    "negative": "-3",
    "past the bound": str(limits.MAX_TICKET_USES + 1),
}


@pytest.mark.parametrize("what", sorted(_USES))
def test_a_damaged_ticket_uses_is_refused_at_its_redemption(
    store: tuple[SqliteDatabase, SqliteAuthorityStore], what: str
) -> None:
    """71h wave2a 1: a ticket whose `uses` is TEXT, a BLOB, a REAL, 0, negative or past
    MAX_TICKET_USES (no troth writes one) is refused at its redemption with StorageError
    (node.db damaged), not failed bare nor taken as some number of uses."""
    db, authority = store
    db.execute(f"UPDATE tickets SET uses = {_USES[what]}")  # noqa: S608
    with pytest.raises(StorageError, match="is damaged: its ticket's uses"):
        authority.redeem_ticket(_CODE, 10)


_QUOTA_TICKET = {"text": "'abc'", "integer": "1 << 50", "huge": "zeroblob(1 << 20)"}


@pytest.mark.parametrize("what", sorted(_QUOTA_TICKET))
def test_a_damaged_quota_ticket_is_refused(
    store: tuple[SqliteDatabase, SqliteAuthorityStore], what: str
) -> None:
    """71h wave2a 1: a member whose `quota_ticket` is TEXT, an INTEGER (n zero bytes to
    `bytes()`) or a 1 MiB BLOB is refused with StorageError (node.db damaged) at each read of
    its row (get_member: every quota holder looked up; list_members), not failed bare."""
    db, authority = store
    db.execute(f"UPDATE members SET quota_ticket = {_QUOTA_TICKET[what]}")  # noqa: S608
    with pytest.raises(StorageError, match="is damaged: its member's quota ticket"):
        authority.get_member(_MEMBER)
    with pytest.raises(StorageError, match="is damaged: its member's quota ticket"):
        authority.list_members()


def test_a_sound_ticket_and_member_read_as_written(
    store: tuple[SqliteDatabase, SqliteAuthorityStore],
) -> None:
    """The fix reads what troth writes: a ticket's uses (a NULL one, of a ticket made before
    schema 21, as None), a member's quota ticket (NULL: its own quota, None)."""
    db, authority = store
    redeemed = authority.redeem_ticket(_CODE, 10)
    assert redeemed is not None
    assert redeemed[3] == 3
    db.execute("UPDATE tickets SET uses = NULL")
    redeemed = authority.redeem_ticket(_CODE, 10)
    assert redeemed is not None
    assert redeemed[3] is None
    found = authority.get_member(_MEMBER)
    assert found is not None
    assert found.quota_ticket == _CODE
    db.execute("UPDATE members SET quota_ticket = NULL")
    found = authority.get_member(_MEMBER)
    assert found is not None
    assert found.quota_ticket is None


def _outgrown(logged: Logged, tmp_path: Path) -> None:
    """`logged`'s agent rotates and the log appends a record of its new key (the log's copy of
    its history the rotated one, trace.db), while the node's copy is the older history
    (node.db restored from a copy taken before, or its row for the agent lost: the two files
    are apart)."""
    logged.agent.rotate(EARLY + 10)
    newest = logged.agent.signer(EARLY + 20)
    (later,) = _batch(logged.collector, newest, EARLY + 20).records
    assert [r.status for r in logged.send(later, signer=newest)] == [Status.APPENDED]
    behind = observer(tmp_path / "restored.db")
    behind.observe(logged.stolen.identity)
    logged.collector._observe = behind.observe


def _refused(logged: Logged, signer: Signer, resigned: SubmittedRecord) -> set[object]:
    """Why a new record of `signer` (what the log's append says) and `resigned` are refused,
    each sent alone at EARLY + 20 under `signer`'s history with its attestation."""
    fresh = _batch(logged.collector, signer, EARLY + 20).records[0]
    reasons: set[object] = set()
    for item in (fresh, resigned):
        submission = dataclasses.replace(
            logged.submission,
            history=signer.identity.history,
            records=(item,),
            attestations=(signer.attestation,),
        )
        (answer,) = logged.collector.submit(submission, submitter=None, now=EARLY + 20).results
        assert answer.status is Status.REFUSED, answer
        reasons.add(answer.reason)
    return reasons


def test_a_retired_keys_resigning_under_a_history_the_log_outgrew_is_refused(
    tmp_path: Path,
) -> None:
    """71h wave2a 2: the agent's record is in the log; the agent rotates and the log appends
    a record of its new key; the node's copy of the history is the older one (`_outgrown`).
    The thief of the retired key signs the log's first record again (dated before the
    rotation) and sends it under the older history: refused ATTESTATION_STALE, as the log's
    append of a new record of that key is (the log holds a later change of the signer), not
    answered ALREADY."""
    logged = Logged(tmp_path, rotate=False)
    try:
        _outgrown(logged, tmp_path)
        thiefs = logged.again(logged.stolen, logged.submission.records[0])
        assert _refused(logged, logged.stolen, thiefs) == {F.ATTESTATION_STALE}
    finally:
        logged.collector.log.close()


def test_a_resigning_under_a_fork_of_the_logs_copy_is_refused(tmp_path: Path) -> None:
    """71h wave2a 2 (the same, a fork): as above, but the thief, from a backup of the agent's
    vault taken before its rotation, rotates the history its own way (a fork of the log's
    copy at change 1, which the node's older copy does not refute) and signs the log's first
    record again with its fork's key: refused SIGNER_INVALID, as the log's append of a new
    record of that key is (the history forks from the log's copy), not answered ALREADY."""
    logged = Logged(tmp_path, rotate=False)
    try:
        backup = copy.copy(logged.agent)
        _outgrown(logged, tmp_path)
        backup.rotate(EARLY + 15)  # the thief's fork
        forked = backup.signer(EARLY + 20)
        assert forked.identity.current_change_hash != logged.agent.identity.current_change_hash
        thiefs = logged.again(forked, logged.submission.records[0], time=EARLY + 20)
        assert _refused(logged, forked, thiefs) == {F.SIGNER_INVALID}
    finally:
        logged.collector.log.close()


def test_the_members_of_one_ticket_share_one_feed_page_budget(tmp_path: Path) -> None:
    """71h wave2a 3: two members of one ticket of two uses; the first spends its budget's
    burst of pages signed on request, then the second gets the rest of the ticket's share
    (FEED_PAGE_SIGNS_PER_TICKET, burst 2 s of it: review 71p, pools 1) and no more, its own
    budget unspent: 71e made that ticket one account for its members' revocations, and the
    pages signed for its members are one share of the pool (each had a budget of its own
    only, drawing on the pool as a member of its own: signed)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        ticket = net.authority.create_ticket(
            creator=net.authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address=HUB,
            now=net.clock.now(),
            uses=2,
        )
        members = []
        for name in ("t0", "t1"):
            runtime = await net.node(name)
            await runtime.enroll(str(ticket), name)
            members.append(runtime)
        for _ in range(ENTRIES):
            net.authority.revoke_credential(os.urandom(32), now=net.clock.now())
        await hub.refresh_feeds()
        for since in range(FEED_PAGE_SIGNS_PER_CALLER_BURST):  # t0 spends its burst
            await page(members[0], since)
        share = 2 * limits.FEED_PAGE_SIGNS_PER_TICKET
        for since in range(FEED_PAGE_SIGNS_PER_CALLER_BURST, share):  # the share's rest
            await page(members[1], since)
        for runtime in members:  # t0's own is spent; the ticket's, for t1 too
            with pytest.raises(RemoteError, match="busy"):
                await page(runtime, share)

    run_memnet(test, tmp_path / "home", budget=60)
