"""Review 48a: trace collection on a node, attacked as an enrolled member would.

1. (windows) A batch whose signer history and history windows verified, and whose record the
   log then refused for a reason found after it took the signer's history (a resolution of
   no escalation, a key the log holds retired, a chain it does not hold), left the log's copy
   of the signer moved on and the windows stored: the log took verified state from a batch
   it refused (review 47l's "windows stored with later-refused batch"). The log now keeps a
   signer's history and windows only with a record it admits (`troth.trace.log_histories`).
2. (held) The client took any error answer to `held` for a service without it: its batch went
   without windows and its records were set aside (test below).
3. (queries) `head` and `held` cost a member nothing (review 47l's "held/head uncharged"):
   now TRACE_QUERY_CHARGE each; `prove` neither (2): now its answer's bytes.
4. (resend) A batch sent again after its agent rotated was refused whole as an invalid signer
   by the node's store ("history is older than the stored copy"): its records were set aside,
   even those in the log.
5. (resend) The same after a rotation the agent announced: refused whole as superseded by its
   authority's feed.

Each was a strict xfail, seen failing for its reason, until its fix.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.support.traces import Held, tool_call
from tests.test_identity_observe import observer
from tests.test_review46a_traces import _service
from tests.test_review47i_collector import _long_collector, _rotate, _to_hub
from tests.test_review47l_windows import LATE, _client, _Silent
from tests.test_trace_node import step
from troth import limits
from troth.channel.verification import VerifiedPeer
from troth.clock import FixedClock
from troth.errors import Busy, RemoteError, TraceFailure, Unreachable
from troth.node.access import Decision as Allowed
from troth.node.access import LocalCaller, PeerCaller
from troth.node.services.base import RequestContext
from troth.node.services.trace import TraceClient
from troth.trace import Decision, Kind, Links, RecordContent
from troth.trace.batcher import TraceBatcher
from troth.trace.signing import open_envelope
from troth.trace.stored import history_windows


def _refused_resolution(silent: _Silent) -> RecordContent:
    """A resolution of an escalation the log does not hold: refused by the log's append-time
    checks (LINK_INVALID), after its signer's history is taken."""
    links = Links(parent="0" * 32, parent_agent=Held().identifier)
    return RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "x", "reasoning": "y"},
        decision=Decision("allow"),
        links=links,
    )


def test_windows_sent_with_a_batch_the_log_refuses_are_not_kept(tmp_path: Path) -> None:
    """150 silent rotations, then a batch with the windows that bridge the gap and one record
    the log refuses (a resolution of no escalation): refused, and the log's copy of the agent
    is as it was, no window kept. A later batch with the same windows is appended and keeps
    them."""
    silent = _Silent(tmp_path / "trace.db", 150)
    who = silent.agent.identifier
    before = silent.log.history(who)
    batcher = TraceBatcher(lambda now: silent.agent.signer(LATE))
    batcher.set_head(silent.collector.head(who).head)
    batcher.add(_refused_resolution(silent), now=LATE)
    batch = batcher.next_batch(LATE)
    assert batch is not None
    bad = dataclasses.replace(batch.submission, windows=silent.bridging())
    (result,) = silent.collector.submit(bad, submitter=who, now=LATE).results
    assert result.reason is TraceFailure.LINK_INVALID, result
    assert history_windows(silent.log.store) == {}
    assert silent.log.history(who) == before
    good = silent.submit(silent.bridging())
    assert good.delivered, good.detail
    assert len(history_windows(silent.log.store)[who]) == 3
    silent.log.close()


@pytest.mark.parametrize(
    "error",
    [
        Busy("busy: too many requests in progress, send it again later"),
        RemoteError("StorageError: disk I/O error"),
    ],
    ids=["busy", "failed"],
)
def test_a_held_answered_busy_is_asked_again_not_taken_for_a_service_without_it(
    tmp_path: Path, error: RemoteError
) -> None:
    """Review 48a, held 1: the client took any error answer to `held` (busy, a failure on the
    node) for a service that knows no `held`, marked the history as needing no windows, and
    sent its batch without them: refused ("the stored copy ends at change 0"), the record set
    aside for good. Only an answer that the service has no such method means that; any other
    error is a failed request, sent again after a backoff."""
    silent = _Silent(tmp_path / "trace.db", 150)
    client, calls = _client(silent, knows_held=True)
    answer = client.send
    failed: list[str] = []

    async def send(method: str, arguments: Any) -> Any:
        if method == "held" and not failed:
            failed.append(method)
            raise error
        return await answer(method, arguments)

    client.send = send

    async def main() -> int:
        queued = client.record(step(1))
        await client.flush(10)
        await client.stop()
        return queued.result()

    assert asyncio.run(main()) == 1
    assert calls == ["head", "held", "submit"]  # (the failed `held` never reached it)
    assert client.failures == 1
    assert len(history_windows(silent.log.store)[silent.agent.identifier]) == 3
    silent.log.close()


@pytest.mark.parametrize("method", ["head", "held"])
def test_a_members_head_and_held_are_charged_to_its_trace_budget(
    tmp_path: Path, method: str
) -> None:
    """Review 48a, queries 1: `head` and `held` (each a read on the node's storage thread,
    `held` parsing the stored history) cost a member nothing, bounded only by its requests in
    progress, so a member asked them without end. Each now costs its trace byte budget
    TRACE_QUERY_CHARGE (a read, no commit): past its burst, `busy`; a local caller is not
    charged."""
    silent = _Silent(tmp_path / "trace.db", 10)
    service = _service(silent.collector)
    peer = VerifiedPeer(silent.agent.identity, ())
    context = RequestContext(PeerCaller(peer, "channel-1"), (), Allowed(True), LATE)
    ask = getattr(service, method)
    most = limits.TRACE_SUBMIT_BURST_BYTES // limits.TRACE_QUERY_CHARGE
    for _ in range(most):
        asyncio.run(ask([], context))
    with pytest.raises(RemoteError, match="trace byte rate"):
        asyncio.run(ask([], context))
    local = RequestContext(LocalCaller(), (), Allowed(True), LATE)
    for _ in range(3):
        asyncio.run(ask([str(silent.agent.identifier)], local))
    silent.log.close()


def _resent_across_a_rotation(tmp_path: Path, *, appended: bool) -> tuple[_Silent, Any]:
    """An agent at change 0 with a record in the log, the node's store holding its history
    (its channel); its client's next batch is sent, and lost (before the service took it, or
    after: `appended`); meanwhile the agent rotates once and the node's store learns the new
    history (the agent's channel again). The client sends the batch again, byte for byte."""
    silent = _Silent(tmp_path / "trace.db", 0)
    store = observer(tmp_path / "node.db")
    store.observe(silent.agent.identity)
    silent.collector._observe = store.observe
    rotated: list[bool] = []

    def lose() -> None:
        rotated.append(True)
        silent.rotate(1, LATE + 1)
        silent.clock.advance(2)
        store.observe(silent.agent.identity)

    client, _calls = _client(silent, knows_held=True)
    answer = client.send

    async def send(method: str, arguments: Any) -> Any:
        if method != "submit" or rotated:
            return await answer(method, arguments)
        if appended:
            await answer(method, arguments)
        lose()
        raise Unreachable("the answer was lost")

    client.send = send

    async def main() -> Any:
        queued = client.record(step(1))
        await client.flush(10)
        await client.stop()
        return queued

    return silent, asyncio.run(main())


@pytest.mark.parametrize("appended", [False, True], ids=["lost request", "lost answer"])
def test_a_batch_sent_again_after_its_agent_rotated_is_delivered(
    tmp_path: Path, appended: bool
) -> None:
    """Review 48a, resend 1: a batch sent again byte for byte after its agent rotated (its
    history one change behind the node's stored copy, which the agent's channel moved on)
    was refused whole, `signer identity invalid` (the node's store: "history is older than
    the stored copy"), a refusal the client does not sign again for: the record was set
    aside, though it was signed before the rotation (and, when only the answer was lost, was
    in the log). Now records of a history the node's copy extends (an older prefix, no fork)
    are answered `already` when in the log byte for byte, else refused ATTESTATION_STALE (the
    node holds a later change): the client signs them again with its newest key."""
    silent, queued = _resent_across_a_rotation(tmp_path, appended=appended)
    assert queued.error is None, queued.error
    assert queued.result() == 1
    assert silent.log.size() == 2
    silent.log.close()


def test_a_batch_sent_again_after_an_announced_rotation_is_delivered(tmp_path: Path) -> None:
    """Review 48a, resend 2: as resend 1, the agent's rotation announced to its authority (the
    hub) meanwhile: the hub's feed supersedes the history the batch carries, and the batch
    was refused whole (`signer identity invalid`, "superseded"), its record set aside. A feed
    that supersedes (not revokes) the signer's history now refuses its records
    ATTESTATION_STALE, those in the log answered with their index: signed again with the
    newest key, the record is appended."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent = await net.node("agent-a", prepare=_to_hub)
        await agent.enroll(net.ticket(), "agent-a")
        client = agent.traces.recorder()
        assert isinstance(client, TraceClient)
        first = client.record(step(0))
        await client.flush(20)
        assert first.result() == 0
        answer = client.send
        lost: list[str] = []

        async def send(method: str, arguments: Any) -> Any:
            if method != "submit" or lost:
                return await answer(method, arguments)
            lost.append(method)
            await _rotate(net, agent, "agent-a", 1)
            await hub.refresh_feeds()
            raise Unreachable("the request was lost")

        client.send = send
        later = client.record(step(1))
        await client.flush(20)
        assert lost
        assert later.error is None, later.error
        assert later.result() == 1

    run_memnet(test, tmp_path / "home", budget=120)


def test_a_members_proofs_are_charged_their_answers_bytes(tmp_path: Path) -> None:
    """Review 48a, queries 2: a member's `prove` (its proof bundle read and built on the
    storage thread, an answer of up to 1 MiB for a request of a few dozen bytes) cost it
    nothing: a member asking for the proof of its largest record without end had the node
    send it 1 MiB answers as fast as its channel took them. Each now costs the answer's
    bytes of its trace byte budget (TRACE_QUERY_CHARGE before it is made, the rest after):
    past its burst, `busy` until it refills."""
    agent = Held()
    collector = _long_collector(tmp_path / "trace.db", None, FixedClock(LATE))
    batcher = TraceBatcher(lambda now: agent.signer(LATE))
    batcher.set_head(None)
    batcher.add(tool_call(args="x" * 200_000), now=LATE)
    batch = batcher.next_batch(LATE)
    assert batch is not None
    (result,) = collector.submit(batch.submission, submitter=None, now=LATE).results
    assert result.delivered, result.detail
    record = open_envelope(batch.submission.records[0].envelope)[0].id
    service = _service(collector)
    peer = VerifiedPeer(agent.identity, ())
    context = RequestContext(PeerCaller(peer, "channel-1"), (), Allowed(True), LATE)
    size = len(asyncio.run(service.prove([record], context)).encode())
    assert size > 200_000
    most = (limits.TRACE_SUBMIT_BURST_BYTES - size - limits.TRACE_QUERY_CHARGE) // size + 1
    served = 0
    with pytest.raises(RemoteError, match="trace byte rate"):
        for _ in range(most + 1):
            asyncio.run(service.prove([record], context))
            served += 1
    assert served == most
    collector.log.close()
