"""Review 27t, collection 1-2: what a member's submission leaves in the log, and what its
answer tells of records that are not the member's.

Collection 1: a refused record left its key and its chain in the log.

The log admits a record in steps (troth.trace.log, `_admit`): replay, chain and time checks,
the signer's history (store-or-extend), the key's change, then it wrote the record's
attestation and the delegation chain it names to the log's tables, and only then checked that
a resolution resolves an escalation addressed to its signer. A refused resolution's rows stayed
in the committed transaction. A member with a valid credential could so submit, again and
again, resolutions of no escalation, each signed by a fresh key of its own: every one refused
(LINK_INVALID), every one leaving an attestation row (and its chain) that no record needs,
which exports and verifiers then carry. What a refused record brings must not stay.

Was a strict xfail until the log stored a record's attestation and chain only once every
check admitted it (`TraceLog._admit`: the chain is checked by `_chain_to_keep`, stored after
the resolution check).

Collection 2: the collector answered a record already in the log byte for byte with its index
(`already in the log`, delivered) before it checked whose record it was. A member that holds
another agent's envelope (a record id and index are what `prove` hides from it: "NotFound, as
for an id the log does not hold") submitted it in a batch of its own and was told the record is
in the log, at which index, and counted it as delivered. A member submits only the records it
signed (docs/traces.md, "Who may submit what"): another agent's record is refused as it would
be were it not in the log.

Was a strict xfail until `TraceCollector` refused a record naming another agent than the
batch's signer before looking it up in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tests.support.gates import GatesWorld, T, make_world
from tests.support.parties import make_party, signer_as
from troth.channel.verification import remember_nothing
from troth.clock import FixedClock
from troth.errors import TraceFailure
from troth.identity import Signer
from troth.trace import (
    Authority,
    Decision,
    Kind,
    Links,
    RecordContent,
    ToolCall,
    TraceLog,
    verify_log,
)
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.submit import Status, Submission

NOW = T + 10


def _always(signer: Signer) -> Callable[[int], Signer]:
    return lambda now: signer


def _collector(tmp_path: Path) -> tuple[GatesWorld, TraceLog, TraceCollector]:
    """A gates world and a collector over a log of its own, as a node's trace service runs
    it (tests/test_trace_service.py)."""
    world = make_world()
    owner = make_party(world.vault, now=T)
    log = TraceLog.open(
        tmp_path / "trace.db", clock=FixedClock(NOW), signer=lambda now: owner.signer
    )
    collector = TraceCollector(
        log,
        verifier=lambda: world.verifier,
        feeds=world.feeds,
        observe=lambda identity: None,
        vouched=remember_nothing,
    )
    return world, log, collector


def _batch(collector: TraceCollector, signer: Signer, content: RecordContent) -> Submission:
    batcher = TraceBatcher(_always(signer))
    batcher.set_head(collector.head(signer.identity.identifier).head)
    batcher.add(content, now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    return batch.submission


def test_a_refused_record_leaves_no_key_nor_chain_in_the_log(tmp_path: Path) -> None:
    world, log, collector = _collector(tmp_path)
    support, chain = world.support, world.support_chain
    named = Authority.from_chain(chain)
    for attempt in range(5):  # each with a fresh key of its own: a new attestation each time
        signer = signer_as(world.vault, support.primary, support.identity, now=T)
        batcher = TraceBatcher(_always(signer))
        batcher.set_head(collector.head(support.identifier).head)
        batcher.add(
            RecordContent(
                Kind.RESOLUTION,
                decision=Decision("approve"),
                links=Links(parent=f"{attempt:032x}"),
                authority=named,
            ),
            chain=chain,
            now=NOW,
        )
        batch = batcher.next_batch(NOW)
        assert batch is not None
        receipts = collector.submit(batch.submission, submitter=support.identifier, now=NOW)
        (result,) = receipts.results
        assert (result.status, result.reason) == (Status.REFUSED, TraceFailure.LINK_INVALID)
        assert "is not an escalation in the log" in result.detail
    assert log.size() == 0
    assert log.attestations() == {}  # no record was signed by any of those keys
    assert log.chain(named.chain) is None  # nor names that chain
    assert verify_log(log).size == 0


def test_a_member_is_not_told_where_another_agents_record_is(tmp_path: Path) -> None:
    world, log, collector = _collector(tmp_path)
    lookup = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("lookup_order"))
    theirs = _batch(collector, world.sub.signer, lookup)  # the sub-agent's, sent by the node
    (appended,) = collector.submit(theirs, submitter=None, now=NOW).results
    assert (appended.status, appended.index) == (Status.APPENDED, 0)
    mine = _batch(collector, world.support.signer, lookup)
    relayed = replace(mine, records=theirs.records)  # the support agent's batch, sub's record
    receipts = collector.submit(relayed, submitter=world.support.identifier, now=NOW)
    (result,) = receipts.results
    assert (result.status, result.index) == (Status.REFUSED, None)
    assert (result.reason, result.detail) == (
        TraceFailure.SIGNER_INVALID,
        "the record names another agent",
    )
    assert receipts.head is None  # the support agent has no record in the log
    assert log.size() == 1
