"""The durable trace outbox (troth.trace.outbox; docs/traces.md, "Where records go";
docs/storage.md, "Trace outbox"): a record is committed before `record()` returns; batches are
read from the outbox in order and resent byte for byte after a crash, delivered exactly once;
a refused record is set aside with its reason and the records after it are signed again on the
head; records made after a restart chain onto those still queued; the outbox is bounded and
refuses the next record rather than drop one. The SIGKILL test with real node processes is
tests/test_trace_outbox_processes.py."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.gates import T
from tests.support.parties import Party
from tests.support.traces import NOW as TRACES_NOW
from tests.support.traces import Held, open_log
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    FlakyService,
    Service,
    revoke_subs_chain,
    service,
    tool,
)
from troth.channel.verification import remember_nothing
from troth.clock import FixedClock
from troth.credentials import RevocationKind
from troth.crypto import sha256
from troth.errors import TraceError, TraceFailure, Unreachable
from troth.identity import Identifier
from troth.node import open_node
from troth.node.services.trace import TraceClient
from troth.storage import SqliteDatabase
from troth.trace import verify_log
from troth.trace.collect import TraceCollector
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_rotation import resign_for_rotation
from troth.trace.signing import open_envelope

F = TraceFailure


class Outboxes:
    """Outboxes over one node database, each as a new process would open it (its own
    connections and lock); `crash()` drops the current one without sending anything."""

    def __init__(self, path: Path, party: Party, **options: Any) -> None:
        self.path, self.party, self.options = path, party, options
        self.opened: list[tuple[SqliteDatabase, TraceOutbox]] = []

    def open(self) -> TraceOutbox:
        db = SqliteDatabase(self.path)
        party = self.party
        outbox = TraceOutbox(db, party.identifier, lambda now: party.signer, **self.options)
        self.opened.append((db, outbox))
        return outbox

    def crash(self) -> None:
        """The process holding the latest outbox is gone: its lock and connections with it
        (what it had in memory, a batch in flight, is lost)."""
        db, outbox = self.opened.pop()
        outbox.close()
        db.close()

    def close(self) -> None:
        while self.opened:
            self.crash()


@pytest.fixture
def outboxes(tmp_path: Path, service: Service) -> Iterator[Outboxes]:  # noqa: F811
    made = Outboxes(tmp_path / "node.db", service.world.support)
    yield made
    made.close()


def client_for(flaky: FlakyService, outbox: TraceOutbox) -> TraceClient:
    return TraceClient(
        flaky.send, outbox, clock=flaky.service.clock, flush_seconds=0.01, jitter=lambda: 0.0
    )


def logged(collector: Service) -> list[tuple[str, int, bytes]]:
    """The log's records in order: id, seq, envelope."""
    entries = []
    for entry in collector.log.stored():
        record = open_envelope(entry.envelope)[0]
        entries.append((record.id, record.seq, entry.envelope))
    return entries


def test_a_record_is_committed_before_record_returns(
    service: Service,  # noqa: F811
    outboxes: Outboxes,
) -> None:
    outbox = outboxes.open()
    queued = outbox.add(tool("refund"), now=NOW)
    reader = sqlite3.connect(outboxes.path)  # another connection sees it: committed
    rows = reader.execute("SELECT record, seq, envelope FROM trace_outbox").fetchall()
    reader.close()
    assert [(row[0], row[1]) for row in rows] == [(queued.record, 0)]
    assert not queued.done
    outboxes.crash()  # nothing was sent

    again = outboxes.open()
    assert again.pending() == 1
    flaky = FlakyService(service, service.world.support, loss=0.0)
    asyncio.run(_flush(client_for(flaky, again)))
    assert logged(service) == [(queued.record, 0, bytes(rows[0][2]))]  # the bytes committed
    assert again.pending() == 0


async def _flush(client: TraceClient) -> None:
    await client.flush(20)
    await client.stop()


def test_a_batch_in_flight_at_a_crash_is_sent_again_byte_for_byte(
    service: Service,  # noqa: F811
    outboxes: Outboxes,
) -> None:
    """The collector appended the batch, its answer was lost, the process died: the next one
    sends the same envelopes, answered `already` with the same indices; none is appended
    twice."""
    party = service.world.support
    outbox = outboxes.open()
    made = [outbox.add(tool("refund", n=n), now=NOW).record for n in range(3)]
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    assert batch is not None
    first = service.submit(batch.submission, party)
    assert [r.index for r in first.results] == [0, 1, 2]
    outboxes.crash()  # the answer never reached the outbox

    again = outboxes.open()
    assert again.claim()
    resent = again.next_batch(NOW + 1)
    assert resent is not None
    assert resent.submission.records == batch.submission.records  # byte for byte
    receipts = service.submit(resent.submission, party)
    assert [(r.status.name, r.index) for r in receipts.results] == [
        ("ALREADY", 0),
        ("ALREADY", 1),
        ("ALREADY", 2),
    ]
    again.answered(receipts, now=NOW + 1)
    assert again.pending() == 0
    assert [entry[0] for entry in logged(service)] == made
    assert again.next_batch(NOW + 1) is None


@pytest.mark.parametrize("seed", [1, 2])
def test_exactly_once_in_order_across_crashes(
    service: Service,  # noqa: F811
    outboxes: Outboxes,
    seed: int,
) -> None:
    """A link that loses 20 % of requests and 20 % of answers, and the process killed twice
    while records are made and sent: every record acknowledged is in the log once, in the
    order made, and the agent's chain verifies."""
    flaky = FlakyService(service, service.world.support, seed)
    made: list[str] = []

    async def life(count: int, start: int) -> None:
        client = client_for(flaky, outboxes.open())
        client.start()
        for n in range(start, start + count):
            made.append(client.record(tool("refund", n=n)).record)
            if n % 7 == 0:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)
        await client.stop()  # the pump dies where it is (a batch may be in flight)
        outboxes.crash()

    async def main() -> None:
        await life(50, 0)
        await life(50, 50)
        client = client_for(flaky, outboxes.open())
        await client.flush(30)
        await client.stop()

    asyncio.run(main())
    assert flaky.lost > 0
    entries = logged(service)
    assert [entry[0] for entry in entries] == made  # each once, in order
    assert [entry[1] for entry in entries] == list(range(100))
    seen = [service.log.disclosures(record)["args"].value for record in made]
    assert seen == [f'{{"n":{n}}}'.encode() for n in range(100)]
    report = verify_log(service.log)
    assert (report.size, report.agents) == (100, 1)


def test_records_made_after_a_restart_chain_onto_those_still_queued(
    service: Service,  # noqa: F811
    outboxes: Outboxes,
) -> None:
    """Nothing reaches the collector; the process restarts and records more: their seq
    continues from the outbox (3, 4), so once the collector answers, all five are appended
    as first signed, none signed again."""
    outbox = outboxes.open()
    for n in range(3):
        outbox.add(tool("refund", n=n), now=NOW)
    outboxes.crash()
    outbox = outboxes.open()
    for n in range(3, 5):
        outbox.add(tool("refund", n=n), now=NOW)
    stored = [
        (row.record, row.seq, row.envelope)
        for row in outbox.store.first(service.world.support.identifier.digest, 10)
    ]
    assert [row[1] for row in stored] == [0, 1, 2, 3, 4]

    flaky = FlakyService(service, service.world.support, loss=0.0)
    asyncio.run(_flush(client_for(flaky, outbox)))
    assert logged(service) == stored  # the same bytes, in order


def test_a_refused_record_is_set_aside_and_the_rest_is_signed_again(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """b names a revoked chain: the collector refuses it (and c, d chained after it). b is set
    aside with its reason, reported, never sent again; c and d are signed again on the head
    the answer reports (same ids, other bytes) and delivered."""
    world = service.world
    chain = revoke_subs_chain(world)
    flaky = FlakyService(service, world.sub, loss=0.0)
    outboxes = Outboxes(tmp_path / "node.db", world.sub)
    outbox = outboxes.open()
    client = client_for(flaky, outbox)
    queued = [
        client.record(tool("a")),
        client.record(tool("b", chain), chain=chain),
        client.record(tool("c")),
        client.record(tool("d")),
    ]
    first_signed = {
        row.record: row.envelope for row in outbox.store.first(world.sub.identifier.digest, 10)
    }
    asyncio.run(_flush(client))

    with pytest.raises(TraceError) as refused:
        queued[1].result()
    assert refused.value.reason is F.CREDENTIAL_INVALID
    assert [q.result() for q in (queued[0], queued[2], queued[3])] == [0, 1, 2]
    entries = logged(service)
    assert [entry[0] for entry in entries] == [queued[n].record for n in (0, 2, 3)]
    assert entries[0][2] == first_signed[queued[0].record]  # sent as signed
    assert entries[1][2] != first_signed[queued[2].record]  # signed again: seq 1, not 2
    assert [entry[1] for entry in entries] == [0, 1, 2]
    assert verify_log(service.log).size == 3

    status = outbox.status()
    assert (status["queued"], status["refused"]) == (0, 1)
    (shown,) = status["recent_refusals"]
    assert (shown["record"], shown["reason"]) == (queued[1].record, F.CREDENTIAL_INVALID.value)
    assert "revoked" in shown["detail"]
    assert outbox.pending() == 0  # set aside: not retried, not blocking
    outboxes.close()


def test_records_that_waited_past_the_logs_window_are_signed_again(
    service: Service,  # noqa: F811
    outboxes: Outboxes,
) -> None:
    """The node was down for 10 minutes: its queued records are older than the log's 300 s
    window. The first is refused (time out of range), the others with it (chained); all are
    signed again dated within the window and delivered, none set aside."""
    outbox = outboxes.open()
    made = [outbox.add(tool("refund", n=n), now=NOW).record for n in range(3)]
    outboxes.crash()
    service.clock.advance(600)
    outbox = outboxes.open()
    flaky = FlakyService(service, service.world.support, loss=0.0)
    asyncio.run(_flush(client_for(flaky, outbox)))
    assert [entry[0] for entry in logged(service)] == made
    times = [open_envelope(service.log.find(record).envelope)[0].time for record in made]
    assert all(NOW + 600 - 150 <= time <= NOW + 600 for time in times)
    assert outbox.status()["refused"] == 0


def test_a_full_outbox_refuses_the_next_record(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The bound counts the records queued and those set aside: past it, `add` raises
    TraceError OVER_LIMIT (not recorded, nothing dropped); discarding a record set aside makes
    room."""
    world = service.world
    chain = revoke_subs_chain(world)
    outboxes = Outboxes(tmp_path / "node.db", world.sub, max_records=3)
    outbox = outboxes.open()
    refused = outbox.add(tool("b", chain), chain=chain, now=NOW)
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    assert batch is not None
    outbox.answered(service.submit(batch.submission, world.sub), now=NOW)
    assert (outbox.pending(), outbox.status()["refused"]) == (0, 1)
    outbox.add(tool("a"), now=NOW)
    outbox.add(tool("a", n=1), now=NOW)
    with pytest.raises(TraceError) as full:
        outbox.add(tool("a", n=2), now=NOW)
    assert full.value.reason is F.OVER_LIMIT
    assert "TRACE_OUTBOX_RECORDS" in full.value.detail
    assert outbox.pending() == 2

    with outbox.store.transaction():
        assert outbox.store.discard([refused.record]) == [refused.record]
    outbox.add(tool("a", n=2), now=NOW)
    assert outbox.pending() == 3
    outboxes.close()

    tiny = Outboxes(tmp_path / "tiny.db", world.support, max_stored=2000)
    small = tiny.open()
    small.add(tool("a"), now=NOW)  # ~1.5 KB with its attestation
    with pytest.raises(TraceError) as over:
        small.add(tool("a", n=1), now=NOW)
    assert over.value.reason is F.OVER_LIMIT
    assert "TRACE_OUTBOX_BYTES" in over.value.detail
    assert small.pending() == 1
    tiny.close()


def test_one_process_at_a_time_sends_an_outbox(outboxes: Outboxes) -> None:
    first, second = outboxes.open(), outboxes.open()
    assert first.claim()
    assert not second.claim()
    first.close()
    assert second.claim()


def test_a_client_that_cannot_send_keeps_every_record(
    service: Service,  # noqa: F811
    outboxes: Outboxes,
) -> None:
    """The collector is unreachable: the client fails and backs off, and the records stay in
    the outbox (after its stop too), for the next process."""

    async def unreachable(method: str, arguments: Any) -> Any:
        raise Unreachable("no route to the collector")

    async def main() -> TraceClient:
        client = TraceClient(unreachable, outboxes.open(), clock=service.clock, flush_seconds=0.01)
        for n in range(5):
            client.record(tool("refund", n=n))
        client.start()
        with pytest.raises(TimeoutError):
            await client.flush(0.5)
        await client.stop()
        return client

    client = asyncio.run(main())
    assert client.failures > 0
    outboxes.crash()
    assert outboxes.open().pending() == 5
    assert service.log.size() == 0


def test_the_cli_shows_the_outbox_and_discards_a_record_set_aside(troth_home: Path) -> None:
    run("node", "create", "agent")
    now = int(time.time())
    with open_node("agent", home=troth_home) as node:
        identities = node.identities
        agent = Identifier(identities.find("agent").identifier)
        outbox = TraceOutbox(node.db, agent, lambda now: identities.signer("agent", now=now))
        kept = outbox.add(tool("refund"), now=now)
        refused = outbox.add(tool("refund", n=1), now=now)
        (_, row) = outbox.store.first(agent.digest, 2)
        with outbox.store.transaction():
            outbox.store.set_aside(
                agent.digest,
                row.pos,
                row.hash,
                reason="delegation chain does not verify",
                detail="revoked",
                now=now,
            )
        outbox.close()
    shown = run_json("trace", "outbox", "--node", "agent")
    assert shown["agents"] == [
        {
            "agent": str(agent),
            "queued": 1,
            "queued_bytes": shown["agents"][0]["queued_bytes"],
            "refused": 1,
            "refused_bytes": shown["agents"][0]["refused_bytes"],
        }
    ]
    assert [(r["record"], r["reason"], r["detail"]) for r in shown["refused"]] == [
        (refused.record, "delegation chain does not verify", "revoked")
    ]
    text = run("trace", "outbox", "--node", "agent").stdout
    assert "1 queued" in text
    assert "1 set aside" in text
    assert f"refused {refused.record}" in text
    shown_tree = run("trace", "show", "--node", "agent")
    assert "the trace outbox holds 1 record(s) for the trace service and 1 set aside" in (
        shown_tree.stderr
    )

    run("trace", "outbox", "--node", "agent", "--discard", kept.record, code=2)  # not set aside
    after = run_json("trace", "outbox", "--node", "agent", "--discard", refused.record)
    assert after["discarded"] == [refused.record]
    assert after["refused"] == []
    assert after["agents"][0]["refused"] == 0


def test_a_record_made_inside_a_transaction_commits_or_rolls_back_with_it(
    outboxes: Outboxes,
) -> None:
    """A broker appends its audit record inside its operation's transaction on the node's
    database: the record joins it (no second writer waiting on the first)."""
    outbox = outboxes.open()
    db = outbox.store.db
    with pytest.raises(RuntimeError, match=r"the operation failed"), db.transaction():
        outbox.add(tool("refund", n=0), now=NOW)
        raise RuntimeError("the operation failed")
    assert outbox.pending() == 0  # rolled back with the operation
    with db.transaction():
        kept = outbox.add(tool("refund", n=1), now=NOW)
    (row,) = outbox.store.first(outboxes.party.identifier.digest, 10)
    assert (row.record, row.seq) == (kept.record, 0)


def test_records_queued_before_a_rotation_are_signed_again_with_the_new_key(
    tmp_path: Path,
) -> None:
    """Two records wait in the outbox, signed with the agent's key; the agent rotates, and
    the rotation signs them again with the new key (troth.trace.outbox_rotation): the
    outbox signs them again, chained on the log's head, and delivers them, under the new
    key."""
    clock = FixedClock(TRACES_NOW)
    held = Held(now=TRACES_NOW)
    log = open_log(tmp_path / "trace.db", clock)
    collector = TraceCollector(
        log,
        verifier=lambda: None,
        feeds=dict,
        observe=lambda identity: None,
        vouched=remember_nothing,
    )
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, held.identifier, lambda now: held.signer(now))
    assert outbox.claim()

    def deliver(now: int) -> list[str | None]:
        clock.advance(now - clock.now())
        batch = outbox.next_batch(now)
        assert batch is not None
        receipts = collector.submit(batch.submission, submitter=None, now=now)
        outbox.answered(receipts, now=now)
        return [None if r.reason is None else r.reason.value for r in receipts.results]

    outbox.add(tool("refund", n=0), now=TRACES_NOW)
    assert deliver(TRACES_NOW) == [None]
    queued = [outbox.add(tool("refund", n=n), now=TRACES_NOW + 10) for n in (1, 2)]
    old_key = outbox.store.first(held.identifier.digest, 1)[0].attestation
    before, rotated = held.identity, TRACES_NOW + 20
    held.rotate(rotated)  # and, in its transaction, the node's hook (review 69a):
    assert resign_for_rotation(db, before, lambda: held.signer(rotated), rotated) == 2
    later = TRACES_NOW + 100  # past the outbox's signer refresh: it sends the new history
    assert deliver(later) == [None, None]
    assert [q.result() for q in queued] == [1, 2]
    keys = [open_envelope(entry.envelope)[0].key for entry in log.stored()]
    assert keys[1] == keys[2] != keys[0]
    assert keys[1] != sha256(old_key).hex()
    assert verify_log(log).size == 3
    outbox.close()
    db.close()
    log.close()


def test_a_batch_refused_whole_is_set_aside_and_the_head_kept(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The agent's identity is revoked after its first record was delivered: the next batch is
    refused whole (signer identity invalid), every record in it set aside, never retried; the
    head the outbox keeps is still the delivered record's (a refusal of the whole batch
    reports none), so a record made next chains onto it."""
    world = service.world
    outboxes = Outboxes(tmp_path / "node.db", world.sub)
    outbox = outboxes.open()
    assert outbox.claim()

    def deliver() -> list[TraceFailure | None]:
        batch = outbox.next_batch(NOW)
        assert batch is not None
        receipts = service.submit(batch.submission, world.sub)
        outbox.answered(receipts, now=NOW)
        return [r.reason for r in receipts.results]

    outbox.add(tool("a"), now=NOW)
    assert deliver() == [None]
    world.revoke(RevocationKind.IDENTITY, world.sub.identifier.digest, now=T + 5)
    refused = [outbox.add(tool("b", n=n), now=NOW) for n in range(2)]
    assert deliver() == [F.SIGNER_INVALID, F.SIGNER_INVALID]
    assert outbox.pending() == 0
    assert outbox.status()["refused"] == 2
    for queued in refused:
        with pytest.raises(TraceError) as error:
            queued.result()
        assert error.value.reason is F.SIGNER_INVALID
    outbox.add(tool("c"), now=NOW)
    (row,) = outbox.store.first(world.sub.identifier.digest, 10)
    assert row.seq == 1  # after the delivered record, seq 0
    outboxes.close()


def test_records_from_several_threads_are_chained_and_delivered_once(
    service: Service,  # noqa: F811
    outboxes: Outboxes,
) -> None:
    """Four threads record at once (gates on several threads) while the pump sends over a
    lossy link: one chain, every record once."""
    flaky = FlakyService(service, service.world.support, seed=5)

    async def main() -> list[list[str]]:
        client = client_for(flaky, outboxes.open())
        client.start()

        def produce(first: int) -> list[str]:
            return [client.record(tool("refund", n=n)).record for n in range(first, first + 40)]

        made = await asyncio.gather(*(asyncio.to_thread(produce, 100 * t) for t in range(4)))
        await client.flush(30)
        await client.stop()
        return list(made)

    made = asyncio.run(main())
    entries = logged(service)
    assert sorted(entry[0] for entry in entries) == sorted(r for mine in made for r in mine)
    assert [entry[1] for entry in entries] == list(range(160))
    place = {entry[0]: index for index, entry in enumerate(entries)}
    for mine in made:  # each thread's records in the order it made them
        assert [place[record] for record in mine] == sorted(place[record] for record in mine)
    assert verify_log(service.log).size == 160
