"""Review 55l: attacks on this session's trace pipeline, export and revocation fixes that did
not work. Each is a real attempt and fails if the defence it met breaks: an agent flooding the
log with fresh identities so that another agent's head falls out of the log's cache
(`remember_agents`, review 55b, log 1), then a fork and a replay of that agent's records; an
honest log's growth through sizes that are powers of two and one past them, and a log
restored and grown again by the same records, each moving the accepted
checkpoint (55b, accepted 1: no false ROLLED_BACK); a service answering every send of a record
`the chain the record names was not sent` (55b, chains 1: the chain is sent again once, not
forever); a due mark standing for good over an MCP session's and a local gate's credential
(55i, mcp 1 and 2: the node's next sync of the feed clears it, and both decide again)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.backups import copy_db, restore_db
from tests.support.nodes import MemNet, run_memnet
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_review55i_revoked import _desk_and_agent, _helper_of
from tests.test_review55l_chains import outbox_keeping_the_chain
from tests.test_trace_outbox import (  # noqa: F401 - `outboxes` is a fixture
    Outboxes,
    outboxes,
)
from tests.test_trace_service import NOW as SERVICE_NOW
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    Service,
    service,
    tool,
)
from troth import limits
from troth.clock import FixedClock
from troth.errors import CredentialError, TraceError, TraceFailure
from troth.node.services.node_policies import PeerCredential
from troth.storage import SqliteDatabase
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.log import TraceLog
from troth.trace.signing import VerifiedRecord, sign_next
from troth.trace.submit import Receipts, Status, SubmitResult

F = TraceFailure


def _chain(held: Held, count: int, after: VerifiedRecord | None = None) -> list[VerifiedRecord]:
    """`count` records of `held`, each chained on the one before (the first on `after`)."""
    made: list[VerifiedRecord] = []
    for n in range(count):
        last = made[-1] if made else after
        head = None if last is None else (last.record.seq, last.hash, last.record.time)
        made.append(
            sign_next(
                held.signer(NOW),
                tool_call(args={"n": n}),
                head,
                now=NOW,
                epoch=None,
                random=os.urandom,
            )
        )
    return made


def _size(log: TraceLog) -> int:
    return sum(1 for _ in log.stored())


def test_a_flood_of_fresh_agents_does_not_let_a_fork_of_another_agent_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "TRACE_LOG_KNOWN_CACHE", 2)
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    victim = Held()
    first, second = _chain(victim, 2)
    log.append(first)
    log.append(second)
    for _ in range(6):  # fresh identities, a record each: the caches start again past 2
        recorder(log, Held(), clock).record(tool_call())
    assert victim.identifier.digest not in log._heads  # white box: the victim's head forgotten
    for fork in (_chain(victim, 1)[0], _chain(victim, 1, first)[0]):  # another seq 0, seq 1
        with pytest.raises(TraceError) as raised:
            log.append(fork)
        assert raised.value.reason is F.CHAIN_BROKEN
    with pytest.raises(TraceError) as raised:  # the victim's last record again
        log.append(second)
    assert raised.value.reason is F.REPLAYED
    assert _size(log) == 8
    log.close()


def test_an_honest_logs_growth_moves_the_accepted_checkpoint_at_every_size(
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    path, owner = tmp_path / "trace.db", Held()
    log = open_log(path, clock, owner)
    records = _chain(Held(), 9)
    accepted = AcceptedCheckpoints(SqliteDatabase(tmp_path / "node.db"))
    kept = None
    appended = 0
    for size in (1, 2, 3, 4, 5, 8, 9):  # powers of two and one past them
        while appended < size:
            log.append(records[appended])
            appended += 1
        clock.advance(1)
        note = log.checkpoint()
        kept = accepted.keep(kept, note, proof=log.consistency_proof)
        assert (kept.size, kept.root, kept.time) == (size, note.root, note.time)
        if size == 4:
            log.close()
            copy_db(path, tmp_path / "backup.db")
            log = open_log(path, clock, owner)
    log.close()  # restored to 4 records, then the same 5 appended again: the same tree
    restore_db(path, tmp_path / "backup.db")
    log = open_log(path, clock, owner)
    for record in records[4:]:
        log.append(record)
    clock.advance(1)
    note = log.checkpoint()
    kept = accepted.keep(kept, note, proof=log.consistency_proof)
    assert (kept.size, kept.time) == (9, note.time)
    log.close()


def test_a_service_refusing_a_chain_as_not_sent_forever_gets_it_sent_again_once(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
) -> None:
    chain = service.world.support_chain
    outbox = outbox_keeping_the_chain(service, outboxes)
    made = outbox.add(tool("refund", chain, n=1), chain=chain, now=SERVICE_NOW).record
    lie = SubmitResult(Status.REFUSED, reason=F.CHAIN_MISMATCH, detail="not sent (nor kept)")
    carried = []
    for _ in range(6):
        batch = outbox.next_batch(SERVICE_NOW)
        if batch is None:
            break
        carried.append(batch.submission.chains)
        outbox.answered(Receipts((lie,), None), now=SERVICE_NOW)
    assert carried == [(), (chain,)]  # taken for kept, then sent again with it: once
    (refused,) = outbox.store.refused()
    assert (refused.record, refused.reason) == (made, F.CHAIN_MISMATCH.value)


def test_a_due_mark_over_a_sessions_and_a_local_gates_credential_clears_at_the_next_sync(
    tmp_path: Path,
) -> None:
    async def scene(net: MemNet) -> None:
        desk, peer = await _desk_and_agent(net)
        node, now, hub = desk.node, net.clock.now(), net.authority.identifier
        sources = (
            PeerCredential(lambda: peer, desk.trust.standing, desk.policies),
            _helper_of(desk, now),
        )
        node.wallet.store.mark_sync_due(hub.digest, "/tcp/away:4000", now)  # out of reach
        desk.trust.read_due()
        for source in sources:
            with pytest.raises(CredentialError, match="due a sync"):
                source.current(now=now)
        await desk.refresh_feeds()  # the node's next sync of the hub's feed
        assert not node.wallet.sync_due(hub, now=now)
        for source in sources:
            assert source.current(now=now).authority == hub

    run_memnet(scene, tmp_path)
