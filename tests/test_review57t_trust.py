"""Review 57t: the lead's change to `NodeTrust._extend_known` (review 57p, policies 2: an
extension a trust anchor's held feed refutes is not stored), attacked.

Trust 1: the refusal holds for the chain's verification only. The trace collector then
appends the record (the chain is judged by its root's feed, which does not know of the
rotation) and `TraceCollector._keep_issuers` stores each issuer history of a chain a record
was appended under with the node's plain `identities.observe` (troth/node/services/trace.py
wires it so): the thief's fork that `_extend_known` left out is stored anyway, one record
later, and the owner's real history (what the other anchor's feed names) is a FORK on the
node from then on, as before 57p's fix."""

from __future__ import annotations

from pathlib import Path

from tests.support.gates import T
from tests.test_review57p_policies import forked
from troth.clock import FixedClock
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust
from troth.trace import Authority, Kind, RecordContent, ToolCall, TraceLog
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.submit import Status

NOW = T + 30


def test_a_record_under_a_fork_an_anchors_feed_refutes_does_not_store_the_fork(
    troth_home: Path, tmp_path: Path
) -> None:
    f = forked()
    signer = f.admin.signer
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(f.issuer.identity)  # as stored when it enrolled
        for authority in f.feeds:
            node.wallet.trust(authority, f"node:{authority.digest.hex()[:8]}", now=T)
        trust = NodeTrust(node, None)
        trust.reload(NOW)
        for authority, feed in f.feeds.items():
            trust.set_feed(authority, feed)
        collector = TraceCollector(  # as the node's trace service makes it
            TraceLog.open(tmp_path / "trace.db", clock=FixedClock(NOW), signer=lambda now: signer),
            verifier=lambda: trust.verifier,
            feeds=lambda: trust.feeds,
            observe=node.identities.observe,
            vouched=trust.vouchers.of,
            checkpoints=trust.checkpoints,
            due=lambda: trust.due,
            observe_issuer=trust.observe_unrefuted,
        )
        batcher = TraceBatcher(lambda now: signer)
        batcher.set_head(collector.head(signer.identity.identifier).head)
        content = RecordContent(
            Kind.TOOL_INVOCATION,
            tool=ToolCall("lookup_order"),
            authority=Authority.from_chain(f.chain.encode()),
        )
        batcher.add(content, chain=f.chain.encode(), now=NOW)
        batch = batcher.next_batch(NOW)
        assert batch is not None
        (result,) = collector.submit(batch.submission, submitter=None, now=NOW).results
        if result.status is Status.APPENDED:  # refusing the record is fine; storing is not
            assert node.identities.stored_changes(f.issuer.identifier) == 1
            node.identities.check_known(f.owners)  # the owner's history is no fork here
