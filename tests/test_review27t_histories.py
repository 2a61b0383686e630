"""Review 27t, collection 3: a member's refused trace records leave its throwaway delegates'
histories in the node's store.

The trace collector checks the chain a submitted record names with `NodeTrust.verifier`, which
stores (or extends) every issuer history in it (store-or-extend) as soon as the chain verifies,
before the log has taken the record. A member that delegates through fresh intermediate
identities to an identity of its own, and submits as that identity records the log then
refuses (here: resolutions of no escalation), made the node store each fresh delegate's history
per submission, with no record left to show for it and no bound but the byte rate: the flood
review 23a ("histories 1") closed at the handshake (a refused peer leaves no history behind,
its delegators' neither), reopened through the trace service.

Was a strict xfail until the collector's chain verifier stored only the issuer histories that
extend a stored copy (a rotation: that protects) and judged new ones without storing them, and
the collector stored the issuer histories of a chain once a record under it was appended
(`NodeTrust.verifier`, `TraceCollector`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.parties import ChannelParty, make_channel_party
from tests.test_review23a_histories import Desk
from tests.test_trust_scope import NOW
from troth.clock import FixedClock
from troth.identity import Signer
from troth.node import init_node, open_node
from troth.trace import Authority, Decision, Kind, Links, RecordContent, ToolCall, TraceLog
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.submit import Receipts, Status


@pytest.fixture
def desk(troth_home: Path) -> Iterator[Desk]:
    init_node("desk")
    with open_node("desk") as node:
        yield Desk(node)


def _always(signer: Signer) -> Callable[[int], Signer]:
    return lambda now: signer


class Hub:
    """The desk's trace collector, over a log of its own, wired as its trace service wires it
    (`TraceService.collector`)."""

    def __init__(self, desk: Desk, path: Path) -> None:
        self.desk = desk
        self.log = TraceLog.open(path, clock=FixedClock(NOW))
        trust = desk.trust
        self.collector = TraceCollector(
            self.log,
            verifier=lambda: trust.verifier,
            feeds=lambda: trust.feeds,
            observe=desk.node.identities.observe,
            vouched=trust.vouchers.of,
        )

    def submit(self, who: ChannelParty, content: RecordContent, chain: bytes) -> Receipts:
        batcher = TraceBatcher(_always(who.party.signer))
        batcher.set_head(self.collector.head(who.party.identifier).head)
        batcher.add(content, chain=chain, now=NOW)
        batch = batcher.next_batch(NOW)
        assert batch is not None
        return self.collector.submit(batch.submission, submitter=who.party.identifier, now=NOW)


def _resolution(chain: bytes, n: int) -> RecordContent:
    """A resolution of no escalation (the log refuses it), under `chain`."""
    return RecordContent(
        Kind.RESOLUTION,
        decision=Decision("approve"),
        links=Links(parent=f"{n:032x}"),
        authority=Authority.from_chain(chain),
    )


def test_a_refused_records_chain_leaves_no_history_behind(desk: Desk, tmp_path: Path) -> None:
    hub = Hub(desk, tmp_path / "trace.db")
    mallory = make_channel_party(desk.vault, now=NOW)  # alice's own end of her delegations
    _claim, chain = desk.flood_chain(mallory)
    (first,) = hub.submit(mallory, _resolution(chain, 0), chain).results
    assert first.status is Status.REFUSED
    before = desk.stored_histories()  # mallory's own history is stored: it signs its batches
    for n in range(1, 11):
        _claim, chain = desk.flood_chain(mallory)  # three fresh delegates each time
        (result,) = hub.submit(mallory, _resolution(chain, n), chain).results
        assert result.status is Status.REFUSED
        assert "is not an escalation in the log" in result.detail
    assert hub.log.size() == 0
    assert desk.stored_histories() == before


def test_an_appended_records_chain_is_stored(desk: Desk, tmp_path: Path) -> None:
    """The issuer histories of a chain a record is appended under are stored (the node can
    then judge later copies of them against these)."""
    hub = Hub(desk, tmp_path / "trace.db")
    mallory = make_channel_party(desk.vault, now=NOW)
    _claim, chain = desk.flood_chain(mallory)
    content = RecordContent(
        Kind.TOOL_INVOCATION, tool=ToolCall("lookup"), authority=Authority.from_chain(chain)
    )
    (result,) = hub.submit(mallory, content, chain).results
    assert (result.status, result.index) == (Status.APPENDED, 0)
    stored = desk.node.identities.stored_changes
    verified = desk.trust.verifier
    assert verified is not None
    credential = verified.verify(
        chain, presenter=mallory.party.identifier, feeds=desk.trust.feeds, now=NOW
    )
    assert all(stored(issuer.identifier) == 1 for issuer in credential.issuers)
