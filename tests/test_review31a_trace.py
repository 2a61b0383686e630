"""Review 31a, trace 1: does a co-trusted authority's copy made up after a gap lock an agent's
trace records out? Trace signers are still bound by every stored copy (the collector's
`observe` is given no `Binds`: docs/formats.md, "A stored copy from a checkpoint").

Desk trusts acme and globex; globex connects as acme's alice with a change 5 it made up after
a gap and its own chain, and desk stores that copy. Alice then submits a batch of her records
to desk's trace service. The service is open to members only, over a secure channel, and her
channel's handshake judged her full history with desk's `Binds` (acme, the root of her chain,
has standing over it; globex has none) and replaced globex's copy when it admitted her
(`NodeTrust._remember`), before any request of hers. So the collector finds her history
stored and appends her records: the lock-out does not arise on the served path, and nothing
was changed (a guard: it passes on review 30a's code). A collector used without that
handshake (another embedding) still refuses her, as documented.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.traces import tool_call
from tests.test_review23a_lockout import Desk, gap_desk  # noqa: F401  (the fixture)
from tests.test_review27h_gap import restart
from tests.test_trust_scope import NOW
from troth.channel import verify_peer
from troth.clock import FixedClock
from troth.identity import Signer
from troth.trace import TraceLog
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.submit import Status


def _always(signer: Signer) -> Callable[[int], Signer]:
    return lambda now: signer


def test_a_gap_copy_does_not_lock_a_members_records_out(
    gap_desk: Desk,  # noqa: F811
    tmp_path: Path,
) -> None:
    desk, two = gap_desk, gap_desk.two
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)  # globex's copy stored
    alice = two.alice.identifier
    assert desk.node.identities.stored_changes(alice) == 6
    peer = verify_peer(desk.trust, desk.alice(), (two.chain(two.acme),), NOW)  # her channel
    node_trust = restart(desk.node)
    log = TraceLog.open(tmp_path / "trace.db", clock=FixedClock(NOW))
    collector = TraceCollector(  # as the node's trace service wires it
        log,
        verifier=lambda: node_trust.verifier,
        feeds=lambda: node_trust.feeds,
        observe=desk.node.identities.observe,
        vouched=node_trust.vouchers.of,
    )
    batcher = TraceBatcher(_always(two.alice.party.signer))
    batcher.set_head(collector.head(alice).head)
    batcher.add(tool_call(), now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    receipts = collector.submit(
        batch.submission, submitter=alice, now=NOW, credentials=peer.credentials
    )
    assert [r.status for r in receipts.results] == [Status.APPENDED]
    assert desk.node.identities.stored_changes(alice) == 1  # her history, since her handshake
