"""Review 47l, windows 1: an agent past 64 changes that rotates 64 or more times without
sending a record to a log was refused there for good. The log holds the agent's history up to
its last record; the agent presents a suffix that does not reach back to it ("the stored copy
ends at change N": nothing shows the suffix descends from the log's copy), its client dropped
the batch, and every later batch too. Only a node's own identities had stored change rows to
fill the gap (`SignerBridge`, the log's node).

The client now asks the service where the log's copy of it ends (`trace.held`) when it presents
a checkpointed history, and sends with its batch the history windows its own node holds that
bridge the gap (at most MAX_TRACE_SUBMIT_WINDOWS); the collector verifies that they chain from
the log's copy to the presented history, change by change, and the log keeps them
(`history_windows`), as it does for its own identities (docs/traces.md, "Signer histories").
The first test was a strict xfail until the client sent windows and the collector took them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.nodes import MemNet, run_memnet
from tests.support.traces import NOW, Held
from tests.test_review46a_traces import _service
from tests.test_review47i_collector import (
    _batch,
    _long_collector,
    _to_hub,
    _verify_on,
)
from tests.test_trace_node import send_to_hub, step
from troth import limits
from troth.channel.verification import VerifiedPeer
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import DecodeError, RemoteError, TraceError, TraceFailure, Unreachable
from troth.identity import (
    Checkpoint,
    SignedChange,
    UnverifiedHistory,
    encode_history,
    indexed_hashes,
)
from troth.node.access import Decision, PeerCaller
from troth.node.runtime import NodeRuntime
from troth.node.services.base import RequestContext
from troth.node.services.trace import TraceClient
from troth.trace import TraceLog, verify_log
from troth.trace.batcher import SUBMIT_ROOM, TraceBatcher
from troth.trace.bridge import AgentWindows, window_spans
from troth.trace.collect import TraceCollector
from troth.trace.export import verify_bundle
from troth.trace.stored import history_windows
from troth.trace.submit import Submission, SubmitResult, SubmittedRecord, windows_size

ROUNDS = (20,) * 8  # 160 rotations, no record between: the gap is 2 windows wide


def test_an_agent_back_after_160_silent_rotations_is_bridged_by_its_windows(
    tmp_path: Path,
) -> None:
    """Agent `agent-a` records once (change 0), rotates 160 times in announced rounds without
    a record, records again (its history from a change past 64): the record is appended, the log
    keeps the windows between, and the hub's log verifies (`troth trace verify`), as does the
    old record's proof with the agent's rows. (A JSONL export of the log did not verify on
    the hub, `--file`: a bundle carried one history per record, and the old record's ended
    before the hub's copy of the agent began; review 47o, bundles 1, made bundles carry the
    log's windows: tests/test_review47o_bundlewin.py.)"""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent, client, first = await recorded_then_rotated(net)
        presented = agent.node.identities.get("agent-a", now=net.clock.now()).identity
        assert presented.first_index > 64  # no change in common with the log's copy (0)
        later = client.record(step(1))
        await client.flush(20)
        assert later.result() == 1
        who = net.identifier(agent)
        kept = await hub.worker.run(lambda: hub.traces.log().history(who))
        assert kept is not None
        assert indexed_hashes(kept)[0] == presented.first_index
        windows = await hub.worker.run(lambda: history_windows(hub.traces.log().store))
        spans = [indexed_hashes(w) for w in windows[who]]
        assert [(f, f + len(h) - 1) for f, h in spans] == [
            (0, 0),  # the log's copy the newest drops
            (0, 63),  # the windows sent: from the log's copy's last change
            (63, presented.first_index),  # to the newest's first
        ]
        report = await hub.worker.run(_verify_on, hub)
        assert (report.size, report.agents) == (2, 1)
        text = await send_to_hub(agent, hub)("prove", [first.record])  # signed at change 0
        mine = agent.node.identities.attested_by_store
        assert verify_bundle(text.encode(), checkpoints=mine).index == 0

    run_memnet(test, tmp_path / "home", budget=180)
    run("trace", "verify", "--node", "hub")


async def recorded_then_rotated(net: MemNet) -> tuple[NodeRuntime, TraceClient, Any]:
    """Agent `agent-a` (its node, its trace client and its first record's receipt) records
    once at the hub (change 0), then rotates through ROUNDS without a record."""
    agent = await net.node("agent-a", prepare=_to_hub)
    await agent.enroll(net.ticket(), "agent-a")
    client = agent.traces.recorder()
    assert isinstance(client, TraceClient)
    first = client.record(step(0))
    await client.flush(20)
    assert first.result() == 0
    for times in ROUNDS:
        await _rotate(net, agent, "agent-a", times)
    return agent, client, first


async def _rotate(net: MemNet, agent: NodeRuntime, name: str, times: int) -> None:
    """`times` rotations of `agent`'s identity `name`, then announced to its authority (the
    hub), as review 47i's set-up does (`_long_lived_agent` there), its feed synced after."""

    def rotate() -> None:
        for _ in range(times):
            net.clock.advance(10)  # the feeds stay fresh (FEED_STALENESS) with no record between
            agent.node.identities.rotate(name, now=net.clock.now())

    await agent.worker.run(rotate)
    (row,) = await agent.announce_rotations(name)
    assert row["announced"] is True, row.get("error")
    await agent.refresh_feeds()  # its checkpoint, before it rotates again (no record between)


# -- the collector and the log, without a network ----------------------------------------------

EARLY = NOW + 30
LATE = NOW + 400  # after the silent rotations (one a second from NOW + 60)


class _Silent:
    """An agent with a record at change 0 in a log, then `times` rotations without a record
    (presented from a checkpoint past 60 changes, as its node does); `changes` keeps every
    signed change, as its node's rows do."""

    def __init__(self, path: Path, times: int) -> None:
        self.agent = Held()
        self.changes: list[SignedChange] = [self.agent.identity.changes[0].signed]
        self.clock = FixedClock(EARLY)
        self.collector = _long_collector(path, lambda _c, _h: True, self.clock)
        early = _batch(self.collector, self.agent.signer(EARLY), EARLY)
        (result,) = self.collector.submit(early, submitter=None, now=EARLY).results
        assert result.delivered, result.detail
        self.rotate(times, NOW + 60)
        self.clock.advance(LATE - self.clock.now())

    def rotate(self, times: int, at: int) -> None:
        """`times` rotations, one a second from `at`, presented from a checkpoint at the
        current change once the history holds 60."""
        for number in range(times):
            self.agent.rotate(at + number)
            identity = self.agent.identity
            self.changes.append(identity.changes[-1].signed)
            if len(identity.changes) >= 60:
                digest = identity.identifier.digest
                cut = identity.from_checkpoint(Checkpoint(digest, digest, identity.current.index))
                self.agent.held = self.agent.held._replace(identity=cut)

    def window(self, first: int, last: int) -> bytes:
        digest = self.agent.identifier.digest
        checkpoint = Checkpoint(digest, digest, first) if first else None
        return encode_history(self.changes[first : last + 1], checkpoint)

    def bridging(self) -> tuple[bytes, ...]:
        spans = window_spans(0, self.agent.identity.first_index)
        assert spans
        return tuple(self.window(first, last) for first, last in spans)

    def submit(self, windows: tuple[bytes, ...]) -> SubmitResult:
        late = _batch(self.collector, self.agent.signer(LATE), LATE)
        late = dataclasses.replace(late, windows=windows)
        (result,) = self.collector.submit(late, submitter=None, now=LATE).results
        return result

    @property
    def log(self) -> TraceLog:
        return self.collector.log


def test_the_windows_sent_bridge_a_gap_and_the_log_verifies_on_their_own(tmp_path: Path) -> None:
    """150 silent rotations: the history presented starts at change 118, the log's copy ends
    at change 0. Without windows the batch is refused ("the stored copy ends at change 0");
    with the two its node holds (0-63, 63-118) it is appended, the log keeps them, and the
    log verifies with no stored copy at all: its windows anchor the checkpoint."""
    silent = _Silent(tmp_path / "trace.db", 150)
    assert silent.agent.identity.first_index == 118
    refused = silent.submit(())
    assert refused.reason is TraceFailure.SIGNER_INVALID
    assert "the stored copy ends at change 0" in refused.detail
    windows = silent.bridging()
    assert len(windows) == 2
    result = silent.submit(windows)
    assert result.delivered, result.detail
    kept = history_windows(silent.log.store)[silent.agent.identifier]
    assert kept[1:] == list(windows)  # after the log's copy of change 0 the newest drops
    report = verify_log(silent.log)
    assert (report.size, report.agents) == (2, 1)
    silent.log.close()


def _forged(silent: _Silent) -> dict[str, tuple[bytes, ...]]:
    """Windows that must not bridge the gap, by what is wrong with them."""
    good = silent.bridging()
    digest = silent.agent.identifier.digest
    other = Held()
    for number in range(5):
        other.rotate(NOW + 60 + number)
    return {
        "skips a change": (good[0], silent.window(70, 118)),
        "not from the log's copy": (silent.window(1, 63), *good[1:]),
        "another identity's": (other.identity.history, *good),
        "ends before the history": good[:1],
        "a change reordered": (
            good[0],
            encode_history(
                [*silent.changes[63:70], *silent.changes[71:69:-1], *silent.changes[72:119]],
                Checkpoint(digest, digest, 63),
            ),
        ),
        "adds nothing": (good[0], good[0], good[1]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "skips a change",
        "not from the log's copy",
        "another identity's",
        "ends before the history",
        "a change reordered",
        "adds nothing",
    ],
)
def test_windows_that_do_not_chain_are_refused_and_leave_nothing(tmp_path: Path, case: str) -> None:
    """Windows that do not bridge the log's copy to the history, change by change, each from a
    change the one before holds, refuse the batch (SIGNER_INVALID, never appended on their
    word) and leave nothing in the log: no window, its copy of the agent as it was."""
    silent = _Silent(tmp_path / "trace.db", 150)
    before = silent.log.history(silent.agent.identifier)
    result = silent.submit(_forged(silent)[case][: limits.MAX_TRACE_SUBMIT_WINDOWS])
    assert result.reason is TraceFailure.SIGNER_INVALID, result
    assert history_windows(silent.log.store) == {}
    assert silent.log.history(silent.agent.identifier) == before
    silent.log.close()


def test_windows_sent_with_no_gap_to_bridge_are_ignored(tmp_path: Path) -> None:
    """A history that reaches back to the log's copy needs no windows: sent anyway (a client
    that asked before a concurrent batch bridged it), they are neither checked nor kept."""
    silent = _Silent(tmp_path / "trace.db", 10)
    result = silent.submit((b"not a history",))
    assert result.delivered, result.detail
    assert history_windows(silent.log.store) == {}
    silent.log.close()


def test_window_spans_bridge_up_to_the_limit() -> None:
    """The windows between a log's copy ending at change `held` and a history starting at
    `first`: none when it starts at most one change later, each of at most 64 changes and
    starting where the one before ends, None past MAX_TRACE_SUBMIT_WINDOWS."""
    assert window_spans(5, 3) == window_spans(5, 6) == []
    assert window_spans(0, 2) == [(0, 2)]
    assert window_spans(0, 100) == [(0, 63), (63, 100)]
    most = limits.MAX_TRACE_SUBMIT_WINDOWS * (limits.MAX_IDENTITY_CHANGES - 1)
    assert window_spans(0, most) is not None
    assert window_spans(0, most + 1) is None


# -- the request format -------------------------------------------------------------------------


def _submission(windows: tuple[bytes, ...]) -> Submission:
    record = SubmittedRecord(b"{}")
    return Submission(b"history", (b"key",), (), (record,), windows)


def test_a_submission_without_windows_is_version_1_byte_for_byte() -> None:
    """No windows: the 6 fields of version 1 as before (an older service takes it); windows:
    version 2 with a seventh field, which decodes back to them."""
    plain = _submission(()).to_cbor()
    assert (plain[1], len(plain)) == (1, 6)
    carried = _submission((b"w1", b"w2")).to_cbor()
    assert (carried[1], len(carried)) == (2, 7)
    assert carried[:1] + carried[2:6] == plain[:1] + plain[2:]
    assert Submission.from_cbor(carried).windows == (b"w1", b"w2")
    assert Submission.from_cbor(plain).windows == ()


@pytest.mark.parametrize(
    "change",
    ["version 1 with windows", "version 2 without", "no window", "too many", "one too big"],
)
def test_a_malformed_windows_field_is_refused(change: str) -> None:
    """The windows field only with version 2, 1 to MAX_TRACE_SUBMIT_WINDOWS windows of at
    most MAX_IDENTITY_HISTORY_BYTES each."""
    value = _submission((b"w",)).to_cbor()
    if change == "version 1 with windows":
        value[1] = 1
    elif change == "version 2 without":
        value = value[:6]
    elif change == "no window":
        value[6] = []
    elif change == "too many":
        value[6] = [b"w"] * (limits.MAX_TRACE_SUBMIT_WINDOWS + 1)
    else:
        value[6] = [bytes(limits.MAX_IDENTITY_HISTORY_BYTES + 1)]
    with pytest.raises(DecodeError):
        Submission.from_cbor(value)


def test_a_full_batch_with_its_maximal_windows_fits_a_service_message() -> None:
    """A batch packed with MAX_TRACE_SUBMIT_WINDOW_BYTES kept free, then carrying the most
    windows at their largest, is within MAX_SERVICE_MESSAGE with the request frame
    (SUBMIT_ROOM): `size()` bounds its encoding."""
    windows = tuple(
        bytes(limits.MAX_IDENTITY_HISTORY_BYTES) for _ in range(limits.MAX_TRACE_SUBMIT_WINDOWS)
    )
    assert windows_size(windows) <= limits.MAX_TRACE_SUBMIT_WINDOW_BYTES
    record = SubmittedRecord(bytes(limits.MAX_TRACE_ENVELOPE_BYTES))
    history = bytes(limits.MAX_IDENTITY_HISTORY_BYTES)
    room = limits.MAX_SERVICE_MESSAGE - SUBMIT_ROOM - limits.MAX_TRACE_SUBMIT_WINDOW_BYTES
    records: list[SubmittedRecord] = []
    while Submission(history, (b"k" * 300,), (), (*records, record)).size() <= room:
        records.append(record)
    full = Submission(history, (b"k" * 300,), (), tuple(records), windows)
    encoded = cbor.encode(full.to_cbor())
    assert len(encoded) <= full.size() <= limits.MAX_SERVICE_MESSAGE - SUBMIT_ROOM


# -- the client and the service -----------------------------------------------------------------


def _client(
    silent: _Silent, *, knows_held: bool, lose: Callable[[], None] | None = None
) -> tuple[TraceClient, list[str]]:
    """A client of `silent`'s agent (its node's windows from `silent.changes`) sending to its
    collector through a service that knows `held` (else one of before review 47l: no such
    method, and only version 1 submissions); the methods it was asked, in order. With
    `lose`, the first submission is lost (after `lose` runs)."""
    calls: list[str] = []
    agent = silent.agent.identifier
    held = TraceCollector.held

    async def send(method: str, arguments: Any) -> Any:
        calls.append(method)
        if method == "head":
            return silent.collector.head(agent).to_cbor()
        if method == "held":
            if not knows_held:
                raise RemoteError("service trace has no method 'held'")
            found = held(silent.collector, agent)
            return None if found is None else list(found)
        if lose is not None and calls.count("submit") == 1:
            lose()
            raise Unreachable("the request was lost")
        if not knows_held and len(arguments) != 6:
            raise RemoteError("not a submission: expected 6 elements")
        submission = Submission.from_cbor(cbor.decode(cbor.encode(arguments)))
        receipts = silent.collector.submit(submission, submitter=agent, now=silent.clock.now())
        return receipts.to_cbor()

    batcher = TraceBatcher(lambda now: silent.agent.signer(LATE))
    windows = AgentWindows(
        lambda now: silent.agent.identity, lambda _d, first, last: silent.window(first, last)
    )
    client = TraceClient(
        send, batcher, clock=silent.clock, flush_seconds=0.01, jitter=lambda: 0.0, windows=windows
    )
    return client, calls


def test_the_client_asks_where_the_logs_copy_ends_once_and_sends_the_windows(
    tmp_path: Path,
) -> None:
    """Two records after 150 silent rotations, one batch each: the client asks `held` before
    the first (its history is checkpointed) and sends the windows with it; both are
    appended, and it does not ask again for the same history."""
    silent = _Silent(tmp_path / "trace.db", 150)
    client, calls = _client(silent, knows_held=True)

    async def main() -> list[int]:
        done = []
        for n in range(2):
            queued = client.record(step(n))
            await client.flush(10)
            done.append(queued.result())
        await client.stop()
        return done

    assert asyncio.run(main()) == [1, 2]
    assert calls == ["head", "held", "submit", "submit"]
    assert len(history_windows(silent.log.store)[silent.agent.identifier]) == 3
    silent.log.close()


def test_a_batch_sent_again_after_a_rotation_carries_the_windows_to_its_own_history(
    tmp_path: Path,
) -> None:
    """The first send of a batch (history from change 118) is lost, and the agent rotates
    27 times meanwhile (now presented from change 177): the batch sent again carries the
    windows to the history it carries (0-63, 63-118), not to the one presented now (whose
    last window, 126-177, the batch's history does not start in: refused), and is appended."""
    silent = _Silent(tmp_path / "trace.db", 150)

    def rotate() -> None:
        silent.rotate(27, LATE - 100)

    client, calls = _client(silent, knows_held=True, lose=rotate)

    async def main() -> int:
        queued = client.record(step(1))
        await client.flush(10)
        await client.stop()
        return queued.result()

    assert asyncio.run(main()) == 1
    assert silent.agent.identity.first_index == 177
    assert calls == ["head", "held", "submit", "held", "submit"]
    assert client.failures == 1  # the lost request, nothing else
    kept = history_windows(silent.log.store)[silent.agent.identifier]
    assert [indexed_hashes(w)[0] for w in kept] == [0, 0, 63]
    silent.log.close()


def test_a_client_sends_no_windows_to_a_service_that_knows_no_held(tmp_path: Path) -> None:
    """A service of before review 47l has no `held`: the client sends its batches as version
    1, never a version 2 one that service would refuse as not a submission (and the client
    send again without end); the batch is refused as before, and `held` is not asked again
    for the same history."""
    silent = _Silent(tmp_path / "trace.db", 150)
    client, calls = _client(silent, knows_held=False)

    async def main() -> list[str]:
        refusals = []
        for n in range(2):
            queued = client.record(step(n))
            await client.flush(10)
            with pytest.raises(TraceError) as refused:
                queued.result()
            refusals.append(refused.value.detail)
        await client.stop()
        return refusals

    refusals = asyncio.run(main())
    assert all("the stored copy ends at change 0" in refusal for refusal in refusals)
    assert calls == ["head", "held", "submit", "submit"]
    assert client.failures == 0
    silent.log.close()


def test_each_window_costs_a_submission_charge(tmp_path: Path) -> None:
    """A submission carrying the most windows costs its member's byte budget at least
    TRACE_SUBMIT_CHARGE for itself and as much for each window (each may take 64 signatures
    to verify), whatever its bytes: at most the burst's share of such submissions at once,
    then `busy`."""
    silent = _Silent(tmp_path / "trace.db", 10)
    service = _service(silent.collector)
    peer = VerifiedPeer(silent.agent.identity, ())
    context = RequestContext(PeerCaller(peer, "channel-1"), (), Decision(True), LATE)
    windows = (b"w",) * limits.MAX_TRACE_SUBMIT_WINDOWS
    cost = limits.TRACE_SUBMIT_CHARGE * (1 + limits.MAX_TRACE_SUBMIT_WINDOWS)
    history = _batch(silent.collector, silent.agent.signer(LATE), LATE).history
    changes = len(UnverifiedHistory.decode(history).changes)  # its history too, in proportion
    cost += limits.TRACE_SUBMIT_CHARGE * (changes - 1) // limits.MAX_IDENTITY_CHANGES  # (55b)
    most = limits.TRACE_SUBMIT_BURST_BYTES // cost
    served, refusal = 0, ""
    for _ in range(most + 1):
        batch = _batch(silent.collector, silent.agent.signer(LATE), LATE)
        submission = dataclasses.replace(batch, windows=windows)
        try:
            asyncio.run(service.submit(submission.to_cbor(), context))
        except RemoteError as exc:
            refusal = str(exc)
            break
        served += 1
    assert served == most
    assert "busy" in refusal
    silent.log.close()
