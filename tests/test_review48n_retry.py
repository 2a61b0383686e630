"""Review 48n: records a node refuses for now are sent again, not set aside for good.

Review 48a found that a trace batch refused whole for a passing condition (the node's copy
of an authority's feed not fresh yet, so a checkpointed signer history is "not attested"; a
delegation chain's feed stale or not fetched yet; a change dated ahead of the node's clock)
had the agent's client set its records aside, never sent again: signed records of what an
agent did never reached the node's log. The service now refuses those `not accepted yet`
(TraceFailure.NOT_YET, a reason on the wire as any other: an older client takes it for an
unknown reason, `malformed`, and sets the record aside as before), and the client keeps such
a record queued as signed and sends it again after a backoff, at most
TRACE_TRANSIENT_RETRIES times (then it is set aside, with the reason, as a refusal for good).

1. (stale) A real node whose word on the agent's checkpointed history is stale when the batch
   arrives, then fresh: the record ends up in its log.
2. (sigkill) The agent's process SIGKILLed while its records wait to be sent again: nothing
   is lost; the next process delivers them.
3. (classes) The collector answers NOT_YET for a stale or missing feed, a node that trusts no
   authority yet and an unattested checkpoint; SIGNER_INVALID etc. stay refusals for good.
4. (bound) A record refused for now more than TRACE_TRANSIENT_RETRIES times is set aside.
5. (classes 3) In a batch, a record refused for now and those after it go again as signed.

Each was a strict xfail, seen failing for its reason, until its fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.nodes import MemNet, run_memnet
from tests.support.traces import NOW, Held, bare_collector, open_log
from tests.test_review47i_collector import ROUNDS, _rotate, _to_hub
from tests.test_trace_node import step
from tests.test_trace_service import NOW as SERVICE_NOW
from tests.test_trace_service import F, Service, service, tool  # noqa: F401 - a fixture
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Checkpoints, Identifier
from troth.node import open_node
from troth.node.services.trace import TraceClient
from troth.storage import SqliteDatabase
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_store import OutboxStore
from troth.trace.signing import open_envelope
from troth.trace.submit import Receipts

ROOT = Path(__file__).resolve().parent.parent
NOT_YET_TEXT = "not accepted yet"
"""The reason's text on the wire (docs/protocols.md, "Trace service")."""


def test_a_record_refused_while_the_nodes_word_is_stale_reaches_its_log_once_fresh(
    tmp_path: Path,
) -> None:
    """Review 48n, stale 1: agent-a, past 64 changes, presents its history from a checkpoint;
    the first batch after its last rotations reaches the hub while the hub's word on that
    checkpoint is stale (its feed copy does not name it yet: "checkpointed history not
    attested"), the next ones once it is fresh. The record was set aside for good (SIGNER
    INVALID); now it is refused for now, kept in the agent's outbox, sent again after a
    backoff and appended."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent = await net.node("agent-a", prepare=_to_hub)
        await agent.enroll(net.ticket(), "agent-a")
        client = agent.traces.recorder()
        assert isinstance(client, TraceClient)
        queued = [client.record(step(0))]
        await client.flush(20)
        collector = hub.host.services["trace"].collector()  # type: ignore[attr-defined]
        fresh = collector._checkpoints
        asked: list[bool] = []

        def stale_once(now: int) -> Checkpoints:
            asked.append(not asked)
            if asked[-1]:  # the first batch: the node's word is stale
                return lambda _checkpoint, _hash: False
            attests: Checkpoints = fresh(now)
            return attests

        for n, times in enumerate(ROUNDS, start=1):
            await _rotate(net, agent, "agent-a", times)
            if n == len(ROUNDS):  # the agent now presents a checkpointed history
                collector._checkpoints = stale_once
            queued.append(client.record(step(n)))
            await client.flush(30)
        presented = agent.node.identities.get("agent-a", now=net.clock.now()).identity
        assert presented.first_index > 0
        assert asked[:2] == [True, False]  # refused once while stale, then fresh
        assert queued[-1].error is None, queued[-1].error
        assert [q.result() for q in queued] == [0, 1, 2, 3]
        assert client.status()["refused"] == 0

    run_memnet(test, tmp_path / "home", budget=120)


_CHILD = """
import json, os, signal, sys
from pathlib import Path
from tests.test_trace_service import NOW as SERVICE_NOW
from tests.test_trace_service import F, Service, service, tool  # noqa: F401 - a fixture
from troth.encoding import cbor
from troth.identity import Identifier
from troth.node import open_node
from troth.trace.outbox import TraceOutbox
from troth.trace.submit import Receipts

home, now = Path(sys.argv[1]), int(sys.argv[2])
with open_node("agent", home=home) as node:
    identities = node.identities
    agent = Identifier(identities.find("agent").identifier)
    outbox = TraceOutbox(node.db, agent, lambda t: identities.signer("agent", now=t))
    for n in range(3):
        outbox.add(tool("refund", n=n), now=now)
    batch = outbox.next_batch(now)
    assert batch is not None and len(batch.submission.records) == 3
    result = [2, sys.argv[3], "the node's copy of the feed is not fresh yet"]
    answer = ["troth.trace.receipts", 1, [result] * 3, None, None]
    outbox.answered(Receipts.from_cbor(cbor.decode(cbor.encode(answer)), expected=3), now=now)
    print(json.dumps(outbox.status()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_records_waiting_to_be_sent_again_survive_a_sigkill(troth_home: Path) -> None:
    """Review 48n, sigkill 1: the agent's process is answered `not accepted yet` for its three
    records (as a node whose feed copy is stale answers) and SIGKILLed at once: the records
    are still queued, none set aside, and the next process delivers them, each once."""
    run("node", "create", "agent")
    now = int(time.time())
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(troth_home), str(now), NOT_YET_TEXT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    status = json.loads(child.stdout.splitlines()[-1])
    assert (status["queued"], status["refused"]) == (3, 0), status
    log = open_log(troth_home / "trace.db", FixedClock(now))
    collector = bare_collector(log, None)
    with open_node("agent", home=troth_home) as node:
        identities = node.identities
        agent = Identifier(identities.find("agent").identifier)
        outbox = TraceOutbox(node.db, agent, lambda t: identities.signer("agent", now=t))
        while outbox.pending():
            batch = outbox.next_batch(now)
            assert batch is not None
            receipts = collector.submit(batch.submission, submitter=None, now=now)
            outbox.answered(receipts, now=now)
        assert OutboxStore(node.db).counts() == []  # none queued, none set aside
        outbox.close()
    assert log.size() == 3
    log.close()


class _StaleVerifier:
    """A chain verifier whose feeds are stale (or missing): what `ChainVerifier.verify`
    raises then."""

    def __init__(self, reason: CredentialFailure) -> None:
        self.reason = reason

    def verify(self, chain: bytes, **_: Any) -> Any:
        raise CredentialError(self.reason, "the feed held here is not fresh")


@pytest.mark.parametrize(
    ("verifier", "reason"),
    [
        (None, "not accepted yet"),
        (_StaleVerifier(CredentialFailure.STALE_FEED), "not accepted yet"),
        (_StaleVerifier(CredentialFailure.NO_FEED), "not accepted yet"),
    ],
    ids=["no trust yet", "stale feed", "no feed yet"],
)
def test_a_chain_the_node_cannot_judge_yet_is_refused_for_now(
    tmp_path: Path, verifier: Any, reason: str
) -> None:
    """Review 48n, classes 1: a record's chain refused because the node's feed copy is stale
    or not fetched yet, or because it trusts no authority yet, was CREDENTIAL_INVALID (set
    aside for good by the client); now NOT_YET (a revoked or expired chain stays
    CREDENTIAL_INVALID: tests/test_review48n_refuted.py)."""
    log = open_log(tmp_path / "trace.db", FixedClock(0))
    collector = bare_collector(log, verifier)
    outcome = collector._credential(b"chain", Held().identity, 0)
    assert not isinstance(outcome, CredentialError)
    assert getattr(outcome, "reason", None) is not None
    assert outcome.reason.value == reason  # type: ignore[union-attr]
    log.close()


def test_a_record_refused_for_now_too_often_is_set_aside(tmp_path: Path) -> None:
    """Review 48n, bound 1: a record refused `not accepted yet` is kept and sent again as
    signed, byte for byte, TRACE_TRANSIENT_RETRIES times at most (here 3); the next refusal
    sets it aside, its reason kept: the outbox does not retry a node that never accepts."""
    party = Held()
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(
        db,
        party.identifier,
        lambda now: party.signer(now),
        transient_retries=3,
    )
    queued = outbox.add(tool("refund"), now=NOW)
    sent: list[bytes] = []
    for _ in range(4):
        batch = outbox.next_batch(NOW)
        assert batch is not None
        sent.append(cbor.encode(batch.submission.to_cbor()))
        answer = ["troth.trace.receipts", 1, [[2, NOT_YET_TEXT, "stale"]], None, None]
        outbox.answered(Receipts.from_cbor(answer, expected=1), now=NOW)
        if outbox.pending():
            assert not queued.done
    assert len(set(sent)) == 1  # the same bytes each time
    assert queued.done
    assert queued.error is not None
    assert queued.error.reason.value == NOT_YET_TEXT
    assert outbox.status()["refused"] == 1
    outbox.close()
    db.close()


def test_the_in_memory_batcher_keeps_a_record_refused_for_now(tmp_path: Path) -> None:
    """Review 48n, classes 2: the in-memory batcher (a client without an outbox) keeps a
    record refused `not accepted yet` queued, and its head: a batch refused whole reports
    none, and the record is sent again chained where it was."""
    party = Held()
    batcher = TraceBatcher(lambda now: party.signer(now))
    batcher.set_head(None)
    queued = batcher.add(tool("refund"), now=NOW)
    first = batcher.next_batch(NOW)
    assert first is not None
    answer = ["troth.trace.receipts", 1, [[2, NOT_YET_TEXT, "stale"]], None, None]
    batcher.answered(Receipts.from_cbor(answer, expected=1))
    assert not queued.done
    assert batcher.pending() == 1
    again = batcher.next_batch(NOW + 1)
    assert again is not None
    record = open_envelope(again.submission.records[0].envelope)[0]
    assert (record.id, record.seq) == (queued.record, 0)  # signed again where it was


class _StaleOnce:
    """The world's chain verifier, its feeds stale for the first chain it is asked to verify
    (the node's feed refresh comes between two batches)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.policy = real.policy
        self.asked = 0

    def verify(self, chain: bytes, **kwargs: Any) -> Any:
        self.asked += 1
        if self.asked == 1:
            raise CredentialError(CredentialFailure.STALE_FEED, "the feed held here is stale")
        return self.real.verify(chain, **kwargs)


def test_a_record_refused_for_now_in_a_batch_goes_again_with_those_after_it(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Review 48n, classes 3: a batch of three records, the second under a chain whose feed
    the node holds stale: the first is appended, the second refused for now, the third
    refused `per-agent chain broken` (its predecessor is not in the log). The second was set
    aside for good (`delegation chain does not verify`) and the third signed again after
    it; now both stay queued as signed and go again, byte for byte, once the feed is fresh."""
    world = service.world
    stale = _StaleOnce(world.verifier)
    verifier: Any = stale
    service.collector._verifier = lambda: verifier
    sub = world.sub
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, sub.identifier, lambda now: sub.signer)
    chain = world.sub_chain
    queued = [
        outbox.add(tool("lookup_order"), now=SERVICE_NOW),
        outbox.add(tool("lookup_order", chain, n=1), chain=chain, now=SERVICE_NOW),
        outbox.add(tool("lookup_order", n=2), now=SERVICE_NOW),
    ]
    first = outbox.next_batch(SERVICE_NOW)
    assert first is not None
    receipts = service.submit(first.submission, sub)
    assert [r.reason for r in receipts.results] == [None, F.NOT_YET, F.CHAIN_BROKEN]
    outbox.answered(receipts, now=SERVICE_NOW)
    again = outbox.next_batch(SERVICE_NOW)
    assert again is not None
    assert again.submission.records == first.submission.records[1:]  # as signed
    outbox.answered(service.submit(again.submission, sub), now=SERVICE_NOW)
    assert [q.result() for q in queued] == [0, 1, 2]
    assert (outbox.pending(), outbox.status()["refused"]) == (0, 0)
    assert service.log.size() == 3
    outbox.close()
    db.close()
