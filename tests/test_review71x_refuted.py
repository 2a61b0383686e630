"""Review 71x (wave4b): attacks on 71q's restore-hold release and collector cache that did not
work, kept as passing tests."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.test_review47i_collector import _batch
from tests.test_review47l_windows import EARLY
from tests.test_review71d_outbox import Logged
from tests.test_review71x_wave4b import _restored_member
from tests.test_trace_service import F
from troth.clock import FixedClock
from troth.errors import IdentityError, IdentityFailure
from troth.node import open_node
from troth.node.authorities import sync_from
from troth.node.release import release_restored
from troth.trace.submit import Status


def test_a_damaged_hold_is_not_released_by_a_feed_held_after_it(
    troth_home: Path, tmp_path: Path
) -> None:
    """71x refuted (wave4b 1): node `agent` restored, its identity a member of acme, acme's
    feed pulled a minute after the hold (by a running node's round: a held feed that releases a
    well-formed hold), acme then remote; the hold's time made TEXT, so that no floor can be
    read. Tried: the held feed counts against an unknown time. It does not: no feed node.db
    holds counts after a damaged hold (only a pull by the release itself, or the vouch)."""
    path = _restored_member(troth_home, tmp_path)
    now = int(time.time())
    with open_node("acme") as acme, open_node("agent") as agent:
        sync_from(agent, acme.authority(), now=now + 60)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE identity_restore_holds SET held_at = 'x'")
    with open_node("agent") as node:
        with pytest.raises(IdentityError) as refused:
            release_restored(node, "agent", clock=FixedClock(now + 120))
        assert refused.value.reason is IdentityFailure.ROLLBACK
        assert "damaged" in str(refused.value)


def test_a_batch_that_grows_the_logs_copy_still_refuses_a_retired_keys_resigning(
    tmp_path: Path,
) -> None:
    """71x refuted (wave4b 2): the log holds the agent's record and its history at change 0;
    the agent rotates (neither the node nor the log told). One batch under the new history: a
    new record signed by the new key (its append grows the log's copy to change 1) and the
    thief's resigning of the logged record by the retired key. Tried: the log's copy read once
    a batch (`_LogCopy`, 71q wave3a 2) is read before the append grows it, so the resigning
    is judged against change 0, where its key is current. It is not: the key is judged first
    against the sent history (an older change's: ATTESTATION_STALE), and a copy read before
    the batch's appends is never ahead of the history the batch sends."""
    logged = Logged(tmp_path, rotate=False)
    try:
        logged.agent.rotate(EARLY + 10)
        newest = logged.agent.signer(EARLY + 20)
        (item,) = _batch(logged.collector, newest, EARLY + 20).records
        thiefs = logged.again(logged.stolen, logged.submission.records[0])
        results = logged.send(item, thiefs, signer=newest)
        assert [r.status for r in results] == [Status.APPENDED, Status.REFUSED], results
        assert results[1].reason is F.ATTESTATION_STALE
        assert logged.collector.log.size() == 2
    finally:
        logged.collector.log.close()
